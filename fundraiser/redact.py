"""Secrets kept out of messages: a URL is shown without its password."""

from __future__ import annotations

from urllib.parse import urlsplit


def url(text: str) -> str:
    """`text` with the password of its user part replaced by ***, for messages and logs.

    Works for database URLs (postgresql://user:pw@host/db) and mail server URLs
    (smtp://user:pw@host:587) alike; a URL without a password is returned as is.
    """
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:  # e.g. a port that is not a number
        return "(unparseable URL)"
    if not password:
        return text
    user, _, host = parts.netloc.rpartition("@")
    name = user.partition(":")[0]
    return parts._replace(netloc=f"{name}:***@{host}").geturl()
