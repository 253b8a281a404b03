"""The connection to the co-op's mail server: SMTP_URL read and checked, a session opened.

smtp://user:password@host:587 (STARTTLS), smtps://host:465 (TLS), smtp://host:25
(plain, loopback only when there is a password). Every failure becomes a
MailError that says where and why, never with the password in it.
"""

from __future__ import annotations

import enum
import ipaddress
import smtplib
import socket
import ssl
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from fundraiser import redact
from fundraiser.documents import MailError, MailSettingsError


class Security(enum.StrEnum):
    PLAIN = "plain"
    STARTTLS = "starttls"
    TLS = "tls"  # implicit TLS (smtps://)


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    security: Security
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    cafile: str | None = None

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """smtp://user:pass@host:587 (STARTTLS on 587 or ?starttls=1), smtps://host:465.

        Options: ?starttls=1|0, ?timeout=SECONDS, ?cafile=PATH (a CA bundle
        to trust, e.g. a private relay's).
        """
        parts = urlsplit(url.strip())
        scheme = parts.scheme.lower()
        if scheme not in ("smtp", "smtps"):
            raise MailSettingsError(
                f"SMTP_URL {redact.url(url)!r} must start with smtp:// or smtps://, "
                "e.g. smtp://user:password@mail.example.org:587"
            )
        if not parts.hostname:
            raise MailSettingsError(
                "SMTP_URL has no host: write it as smtp://user:password@mail.example.org:587"
            )
        try:
            port = parts.port or (465 if scheme == "smtps" else 25)
        except ValueError:
            raise MailSettingsError(
                "SMTP_URL has a port that is not a number: e.g. smtp://mail.example.org:587"
            ) from None
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        unknown = set(query) - {"starttls", "timeout", "cafile"}
        if unknown:
            raise MailSettingsError(
                f"SMTP_URL has unknown option(s) {', '.join(sorted(unknown))}: "
                "use starttls, timeout or cafile"
            )
        if scheme == "smtps":
            security = Security.TLS
        else:
            flag = query.get("starttls", "1" if port == 587 else "0").lower()
            if flag not in ("1", "0", "true", "false", "yes", "no"):
                raise MailSettingsError("SMTP_URL: starttls must be 1 or 0")
            security = Security.STARTTLS if flag in ("1", "true", "yes") else Security.PLAIN
        try:
            timeout = float(query.get("timeout", "30"))
        except ValueError:
            raise MailSettingsError("SMTP_URL: timeout must be a number of seconds") from None
        cafile = query.get("cafile")
        if cafile and not Path(cafile).is_file():
            raise MailSettingsError(f"SMTP_URL: cafile {cafile} is not a file")
        username = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password is not None else None
        settings = cls(parts.hostname, port, security, username, password, timeout, cafile)
        if username and security is Security.PLAIN and not settings.loopback:
            raise MailSettingsError(
                "SMTP_URL has a password but no encryption: use port 587 (STARTTLS), "
                "?starttls=1, or smtps:// so the password is not sent in clear"
            )
        return settings

    @property
    def loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def describe(self) -> str:
        """Where we send, for messages: never the password."""
        user = f"{self.username}@" if self.username else ""
        return f"{user}{self.host}:{self.port} ({self.security.value})"

    def tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.cafile)

    def connect(self) -> smtplib.SMTP:
        """An open, authenticated connection; MailError says why not."""
        where = self.describe()
        smtp: smtplib.SMTP | None = None
        try:
            if self.security is Security.TLS:
                smtp = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=self.timeout, context=self.tls_context()
                )
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            smtp.ehlo()
            if self.security is Security.STARTTLS:
                if not smtp.has_extn("starttls"):
                    raise MailError(
                        f"the mail server at {where} does not offer STARTTLS: "
                        "use smtps:// or ask the provider for the submission port (587)"
                    )
                smtp.starttls(context=self.tls_context())
                smtp.ehlo()
            if self.username:
                smtp.login(self.username, self.password or "")
            return smtp
        except MailError:
            close(smtp)
            raise
        except smtplib.SMTPAuthenticationError as exc:
            close(smtp)
            raise MailError(
                f"the mail server at {where} refused the login ({exc.smtp_code}): "
                "check the user and password in SMTP_URL"
            ) from None
        except smtplib.SMTPNotSupportedError:
            close(smtp)
            raise MailError(
                f"the mail server at {where} does not offer login (AUTH) on this connection: "
                "use STARTTLS (port 587) or smtps://, or drop the user from SMTP_URL"
            ) from None
        except ssl.SSLError as exc:
            close(smtp)
            raise MailError(
                f"TLS with the mail server at {where} failed: {exc.reason or exc}. "
                "If it uses a private certificate authority, add ?cafile=PATH to SMTP_URL"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            close(smtp)
            raise MailError(f"cannot reach the mail server at {where}: {reason_for(exc)}") from None


def close(smtp: smtplib.SMTP | None) -> None:
    """End a session politely, or drop it when the server is gone."""
    if smtp is None:
        return
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        smtp.close()


def reason_for(exc: BaseException) -> str:
    """A short reason for a failure talking to the mail server, for messages."""
    if isinstance(exc, smtplib.SMTPResponseException):
        raw = exc.smtp_error
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw or "")
        return f"{exc.smtp_code} {text}".strip()
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout | TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return str(exc) or type(exc).__name__
