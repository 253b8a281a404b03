"""The pledge service's settings, from the environment; missing ones stop the start."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlsplit

from fundraiser.config import Campaign
from fundraiser.errors import Problem, ProblemsError

REQUIRED = (
    "STRIPE_SECRET_KEY",
    "STRIPE_PUBLISHABLE_KEY",
    "STRIPE_WEBHOOK_SECRET",
    "FUNDRAISER_SECRET",
    "SITE_ORIGIN",
)


class SettingsError(ProblemsError):
    """The service cannot start: settings are missing or wrong."""


@dataclass(frozen=True)
class Settings:
    campaign: Campaign
    database_url: str
    stripe_secret_key: str
    stripe_publishable_key: str
    webhook_secret: str
    secret: str
    site_origin: str
    stripe_api_base: str | None = None
    #: The service's own public address for private links; empty: the request's.
    public_base: str = ""
    now: Callable[[], datetime] = lambda: datetime.now(UTC)
    body_limit: int = 16 * 1024
    pledges_per_minute: float = 10.0
    pledge_burst: int = 5
    figures_seconds: float = 5.0
    fix_days: int = 7

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str],
        *,
        campaign: Campaign,
        database_url: str,
        now: Callable[[], datetime] | None = None,
    ) -> Settings:
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
            public_base=environ.get("PLEDGE_API", "").strip().rstrip("/"),
            now=now or (lambda: datetime.now(UTC)),
        )
