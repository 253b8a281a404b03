"""The pledge service's settings, from the environment; missing ones stop the start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

from fundraiser.config import Campaign
from fundraiser.errors import Problem, ProblemsError, UserInputError
from fundraiser.figures import DEFAULT_HOLD, HOLD_ENV, place_hold

REQUIRED = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "FUNDRAISER_SECRET",
    "SITE_ORIGIN",
)


#: Extra names the service answers to, besides PLEDGE_API's (comma-separated).
HOSTS_ENV = "FUNDRAISER_ALLOWED_HOSTS"
#: Online pledges still waiting for their card, at most, per email and per address.
PER_EMAIL_ENV = "FUNDRAISER_PENDING_PER_EMAIL"
PER_ADDRESS_ENV = "FUNDRAISER_PENDING_PER_ADDRESS"
#: Where the private pages load Stripe.js from: the variable, and the default, that
#: the site build's settings use for the pledge page (site/pelicanconf.py), so the
#: site and the service load one Stripe.js (the emulator's fake one in the demo).
STRIPE_JS_ENV = "STRIPE_JS_URL"
STRIPE_JS = "https://js.stripe.com/v3/"


class SettingsError(ProblemsError):
    """The service cannot start: settings are missing or wrong."""


def host_of(url: str) -> str:
    """The host name a URL names, lowercased, without port or IPv6 brackets."""
    return (urlsplit(url).hostname or "").lower()


def _whole(
    environ: Mapping[str, str], name: str, default: int, problems: list[Problem], top: int
) -> int:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= top:
        problems.append(
            Problem(
                name,
                f"{raw!r} is not a whole number from 1 to {top}",
                f"give one, or unset it for the default ({default})",
            )
        )
        return default
    return int(raw)


@dataclass(frozen=True)
class Settings:
    campaign: Campaign
    database_url: str
    stripe_secret_key: str
    stripe_publishable_key: str
    webhook_secret: str
    secret: str
    site_origin: str
    #: The service's public address (PLEDGE_API): the base of every private link,
    #: and the host it answers to. Never taken from a request.
    public_base: str
    stripe_api_base: str | None = None
    #: Stripe.js for the fix-your-card form (STRIPE_JS_URL), as the site build has it.
    stripe_js: str = STRIPE_JS
    #: Other host names the service answers to (a proxy that sends its own).
    extra_hosts: tuple[str, ...] = ()
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    body_limit: int = 16 * 1024
    pledges_per_minute: float = 10.0
    pledge_burst: int = 5
    figures_seconds: float = 5.0
    fix_days: int = 7
    #: How long a pledge without a saved card holds a limited tier's place.
    place_hold: timedelta = DEFAULT_HOLD
    #: Pledges waiting for their card (within the hold), at most, per email / address.
    pending_per_email: int = 3
    pending_per_address: int = 10
    #: The mail server for a member's sign-in mail, sent at once (SMTP_URL); without
    #: it, the mail waits in the outbox for `fundraiser mail send`.
    smtp_url: str | None = None
    mail_from: str | None = None

    @property
    def allowed_hosts(self) -> frozenset[str]:
        """Host names a request may name: PLEDGE_API's, and FUNDRAISER_ALLOWED_HOSTS."""
        return frozenset({host_of(self.public_base), *self.extra_hosts})

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        campaign: Campaign,
        database_url: str,
        now: Callable[[], datetime] | None = None,
        default_base: str | None = None,
    ) -> Settings:
        """Settings from the environment; `default_base` is the service's address when
        PLEDGE_API is not set (`fundraiser serve` on loopback gives its own)."""
        problems = [
            Problem(name, "is not set", "export it before starting the service")
            for name in REQUIRED
            if not environ.get(name, "").strip()
        ]
        get = {name: environ.get(name, "").strip() for name in REQUIRED}
        if get["STRIPE_SECRET_KEY"] and not get["STRIPE_SECRET_KEY"].startswith(("sk_", "rk_")):
            problems.append(
                Problem("STRIPE_SECRET_KEY", "is not a secret key", "use sk_live_… or sk_test_…")
            )
        if get["STRIPE_PUBLISHABLE_KEY"] and not get["STRIPE_PUBLISHABLE_KEY"].startswith("pk_"):
            problems.append(
                Problem(
                    "STRIPE_PUBLISHABLE_KEY",
                    "is not a publishable key",
                    "use pk_live_… or pk_test_… (the page shows it to everyone)",
                )
            )
        if get["FUNDRAISER_SECRET"] and len(get["FUNDRAISER_SECRET"]) < 16:
            problems.append(
                Problem(
                    "FUNDRAISER_SECRET",
                    "is shorter than 16 characters",
                    "use a long random value, e.g. `python -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))'`",
                )
            )
        origin = get["SITE_ORIGIN"].rstrip("/")
        if origin:
            parts = urlsplit(origin)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
                problems.append(
                    Problem(
                        "SITE_ORIGIN",
                        f"{origin!r} is not an origin",
                        "give the scheme and host only, e.g. https://hearth.example",
                    )
                )
        base = (environ.get("PLEDGE_API", "").strip() or default_base or "").rstrip("/")
        if not base:
            problems.append(
                Problem(
                    "PLEDGE_API",
                    "is not set",
                    "export the service's public address, e.g. https://pledge.hearth.example: "
                    "backers' private links are built from it, never from a request",
                )
            )
        else:
            parts = urlsplit(base)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                problems.append(
                    Problem(
                        "PLEDGE_API",
                        f"{base!r} is not an address",
                        "give the scheme and host, e.g. https://pledge.hearth.example",
                    )
                )
        stripe_js = environ.get(STRIPE_JS_ENV, "").strip() or STRIPE_JS
        if not stripe_js.startswith(("https://", "http://127.0.0.1", "http://localhost")):
            problems.append(
                Problem(
                    STRIPE_JS_ENV,
                    f"{stripe_js!r} is not an https address",
                    f"unset it for {STRIPE_JS}, or give a local emulator's on 127.0.0.1",
                )
            )
        extra = tuple(h.strip().lower() for h in environ.get(HOSTS_ENV, "").split(",") if h.strip())
        try:
            hold = place_hold(environ)
        except UserInputError as exc:
            problems.append(Problem(HOLD_ENV, str(exc), ""))
            hold = DEFAULT_HOLD
        per_email = _whole(environ, PER_EMAIL_ENV, cls.pending_per_email, problems, 1000)
        per_address = _whole(environ, PER_ADDRESS_ENV, cls.pending_per_address, problems, 100000)
        if problems:
            raise SettingsError("the pledge service cannot start:", problems)
        return cls(
            campaign=campaign,
            database_url=database_url,
            stripe_secret_key=get["STRIPE_SECRET_KEY"],
            stripe_publishable_key=get["STRIPE_PUBLISHABLE_KEY"],
            webhook_secret=get["STRIPE_WEBHOOK_SECRET"],
            secret=get["FUNDRAISER_SECRET"],
            site_origin=origin,
            stripe_api_base=environ.get("STRIPE_API_BASE", "").strip() or None,
            stripe_js=stripe_js,
            public_base=base,
            extra_hosts=extra,
            now=now or (lambda: datetime.now(UTC)),
            place_hold=hold,
            pending_per_email=per_email,
            pending_per_address=per_address,
            smtp_url=environ.get("SMTP_URL", "").strip() or None,
            mail_from=environ.get("MAIL_FROM", "").strip() or None,
        )
