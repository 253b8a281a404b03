"""Checks on single values (one line of text, a country, a language, a time zone,
an email, a web address), shared by the loader and `init`.
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from collections.abc import Iterable
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from fundraiser import countries


class Invalid(ValueError):
    """A value that cannot stand, with how to fix it (the loader's and `init`'s checks)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message}: {fix}")
        self.message = message
        self.fix = fix


MAX_LINE = 200
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# The co-op's own address, not a backer's identity: a syntax check is enough here.
_EMAIL = re.compile(r"^[^@\s<>,;\"'()\[\]\\]+@[^@\s<>,;\"'()\[\]\\]+\.[^@\s<>,;\"'()\[\]\\.]{2,}$")


def check_one_line(value: str) -> str:
    """Text printed in a page footer, on a certificate or in a mail header."""
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in value):
        raise Invalid("has a line break or a control character", "write it on one line")
    if len(value) > MAX_LINE:
        raise Invalid(f"is {len(value)} characters long", f"keep it to {MAX_LINE}")
    return value.strip()


def check_country(value: str) -> str:
    found = countries.normalize(value)
    if found is None:
        raise Invalid(f"{value!r} is not a country code", countries.suggest(value))
    return found


def check_language(value: str) -> str:
    text = value.strip()
    fix = 'use a language code such as "en", "fr", "de", "es" or "en-GB"'
    if "_" in text:
        raise Invalid(
            f"{text!r} is written with an underscore", f"write {text.replace('_', '-')!r}"
        )
    try:
        locale = Locale.parse(text, sep="-")
    except (UnknownLocaleError, ValueError, TypeError):
        raise Invalid(f"{text!r} is not a language Babel knows", fix) from None
    return str(locale).replace("_", "-")  # as HTML's lang wants it: "en-GB", "zh-Hant-TW"


def check_timezone(value: str) -> str:
    text = value.strip()
    try:
        ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(
            f"{text!r} is not a known time zone", 'use an IANA name such as "Europe/London"'
        ) from None
    return text


def check_email(value: str) -> str:
    text = check_one_line(value)
    if not _EMAIL.match(text):
        raise Invalid(
            f"{text!r} is not an email address", "write it as name@example.org, without a name"
        )
    return text


def check_website(value: str) -> str:
    text = check_one_line(value)
    parts = urlsplit(text)
    if parts.scheme not in ("https", "http") or not parts.hostname or " " in text:
        raise Invalid(
            f"{text!r} is not a web address", 'write it in full, e.g. "https://our-coop.org"'
        )
    return text


def did_you_mean(key: str, known: Iterable[str]) -> str | None:
    """The known key a misspelt one was most likely meant to be."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[close[0]] if close else None
