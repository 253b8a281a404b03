"""Going live, checked: every problem in the live configuration, before real money moves.

`fundraiser preflight` reads what the pledge service, the published site and
the organizer's commands will run with (the environment, campaign.toml, the
ledger, the built site, the backups) and returns every problem found as a
`Problem` naming the setting and its fix. It changes nothing and calls no
one: Stripe's keys are judged by their shape (sk_live_, pk_test_...), the
built site by reading its pledge page.

A rehearsal (`--rehearsal`) is the same check for a dress rehearsal on the
real servers with Stripe's test keys: there, a live key is the problem.
"""

from __future__ import annotations

import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from fundraiser.config import Campaign, load_campaign, review_campaign
from fundraiser.errors import FundraiserError, Problem
from fundraiser.ledger.engine import sqlite_path

#: How recent the newest backup must be.
BACKUP_AGE = timedelta(days=1)
#: Where Stripe.js comes from on a live pledge page.
STRIPE_JS = "https://js.stripe.com/"
STRIPE_API = "https://api.stripe.com"
CONTACT_EMAIL = "coop.contact_email"


@dataclass(frozen=True)
class Setup:
    """What preflight reads: the environment and where things are."""

    environ: Mapping[str, str]
    campaign_path: Path
    database_url: str
    #: How many `fundraiser serve` processes will share the ledger.
    processes: int
    #: The built public site's folder (None: no settings say where).
    site: Path | None
    backups: Path
    rehearsal: bool = False
    #: The real clock, for the age of backups.
    now: Callable[[], datetime] = lambda: datetime.now(UTC)


@dataclass
class Report:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "problems": [p.as_dict() for p in self.problems],
            "warnings": [w.as_dict() for w in self.warnings],
        }


def check(setup: Setup) -> Report:
    """Every problem with going live, in the order a co-op would fix them."""
    report = Report()
    env = {k: v.strip() for k, v in setup.environ.items()}
    campaign = _campaign(setup, report)
    if campaign is not None and campaign.books.path is not None:
        from fundraiser.books import spending  # the site build would refuse them too

        report.problems += spending.check(campaign)
    report.problems += stripe_keys(env, setup.rehearsal)
    report.problems += webhook_and_links(env)
    report.problems += addresses(env, campaign)
    report.problems += service_processes(setup.database_url, setup.processes)
    report.problems += mail(env)
    report.problems += built_site(setup.site, env, setup.rehearsal)
    report.problems += ledger_file(setup.database_url)
    report.problems += backups(setup.backups, setup.now())
    if env.get("FUNDRAISER_NOW"):
        report.problems.append(
            Problem(
                "FUNDRAISER_NOW",
                f"is set ({env['FUNDRAISER_NOW']}): commands would act as if it were then",
                "unset it: it is for rehearsing dates, never for the live service",
            )
        )
    return report


def _campaign(setup: Setup, report: Report) -> Campaign | None:
    review = review_campaign(setup.campaign_path)
    report.problems += review.problems
    # `check` warns of a missing contact email; going live without one is a problem.
    for warning in review.warnings:
        contact = warning.where.endswith(CONTACT_EMAIL)
        (report.problems if contact else report.warnings).append(warning)
    if review.problems:
        return None
    try:
        return load_campaign(setup.campaign_path)
    except FundraiserError:
        return None


# -- Stripe ---------------------------------------------------------------------------


def key_mode(key: str) -> str | None:
    """'live' or 'test' from a Stripe key's prefix (sk_live_, pk_test_, rk_live_...)."""
    for mode in ("live", "test"):
        if key.startswith((f"sk_{mode}_", f"rk_{mode}_", f"pk_{mode}_")):
            return mode
    return None


def stripe_keys(env: Mapping[str, str], rehearsal: bool) -> list[Problem]:
    from fundraiser.sitegen.build import publishable_key_problems

    problems: list[Problem] = []
    secret = env.get("STRIPE_SECRET_KEY", "")
    publishable = env.get("STRIPE_PUBLISHABLE_KEY", "")
    base = env.get("STRIPE_API_BASE", "").rstrip("/")
    wanted = "test" if rehearsal else "live"
    secret_mode = key_mode(secret) if secret.startswith(("sk_", "rk_")) else None
    if not secret:
        problems.append(
            Problem(
                "STRIPE_SECRET_KEY",
                "is not set: the pledge service cannot open a card form",
                f"export the {wanted} secret key from Stripe's dashboard "
                f"(Developers, API keys: sk_{wanted}_…)",
            )
        )
    elif secret_mode is None:
        problems.append(
            Problem(
                "STRIPE_SECRET_KEY",
                f"starts {secret[:3]!r}: it is not a Stripe secret key",
                f"use the secret key (sk_{wanted}_…) from Stripe's dashboard",
            )
        )
    elif secret_mode == "test" and not rehearsal:
        problems.append(
            Problem(
                "STRIPE_SECRET_KEY",
                "is a test key (sk_test_…): pledges would take no real money",
                "export the live secret key (sk_live_…); to rehearse with test keys, "
                "run `fundraiser preflight --rehearsal`",
            )
        )
    elif secret_mode == "live" and rehearsal:
        problems.append(
            Problem(
                "STRIPE_SECRET_KEY",
                "is a live key (sk_live_…) in a rehearsal: real cards would be charged",
                "rehearse with the test keys (sk_test_…, pk_test_…)",
            )
        )
    if base and base != STRIPE_API and (secret_mode == "live" or not rehearsal):
        problems.append(
            Problem(
                "STRIPE_API_BASE",
                f"sends {'live keys' if secret_mode == 'live' else 'every payment'} to {base}, "
                "not to Stripe (the demo's emulator?)",
                "unset STRIPE_API_BASE: a live service talks to Stripe itself",
            )
        )
    problems += publishable_key_problems(publishable)  # as `site build --publish` says it
    publishable_mode = key_mode(publishable) if publishable.startswith("pk_") else None
    if secret_mode and publishable_mode and secret_mode != publishable_mode:
        problems.append(
            Problem(
                "STRIPE_PUBLISHABLE_KEY",
                f"is a {publishable_mode} key and STRIPE_SECRET_KEY a {secret_mode} key: the "
                "card form and the service would be in different Stripe modes, and no "
                "pledge would go through",
                "take both keys from the same mode of Stripe's dashboard",
            )
        )
    return problems


def webhook_and_links(env: Mapping[str, str]) -> list[Problem]:
    problems: list[Problem] = []
    secret = env.get("STRIPE_WEBHOOK_SECRET", "")
    if not secret:
        problems.append(
            Problem(
                "STRIPE_WEBHOOK_SECRET",
                "is not set: the service will not start, and Stripe's word on each payment "
                "would never reach the ledger",
                "add the endpoint https://<service address>/api/stripe/webhook in Stripe's "
                "dashboard (README, Going live, step 2) and export its signing secret (whsec_…)",
            )
        )
    elif not secret.startswith("whsec_"):
        problems.append(
            Problem(
                "STRIPE_WEBHOOK_SECRET",
                "is not a webhook signing secret (whsec_…): no webhook would verify",
                "copy the signing secret of the endpoint from Stripe's dashboard",
            )
        )
    link_secret = env.get("FUNDRAISER_SECRET", "")
    if len(link_secret) < 16:
        problems.append(
            Problem(
                "FUNDRAISER_SECRET",
                "is not set" if not link_secret else "is shorter than 16 characters",
                "export a long random value that signs backers' private links: "
                "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`",
            )
        )
    return problems


def _origin(address: str) -> str:
    parts = urlsplit(address)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def addresses(env: Mapping[str, str], campaign: Campaign | None) -> list[Problem]:
    """SITE_ORIGIN and PLEDGE_API: https, and the site's own address where the service expects."""
    from fundraiser.sitegen.build import pledge_api_problems

    problems: list[Problem] = []
    origin = env.get("SITE_ORIGIN", "").rstrip("/")
    api = env.get("PLEDGE_API", "").rstrip("/")
    parts = urlsplit(origin)
    if not origin:
        problems.append(
            Problem(
                "SITE_ORIGIN",
                "is not set: the service will not start (it accepts pledges from that origin only)",
                "export the public site's origin, e.g. SITE_ORIGIN=https://hearth.example",
            )
        )
    elif parts.scheme not in ("http", "https") or not parts.netloc or parts.path:
        problems.append(
            Problem(
                "SITE_ORIGIN",
                f"{origin!r} is not an origin",
                "give the scheme and host only, e.g. https://hearth.example",
            )
        )
    elif parts.scheme != "https":
        problems.append(
            Problem(
                "SITE_ORIGIN",
                f"{origin!r} is not https: backers would type their card details on a page "
                "anyone on the way can read and change",
                "serve the site over https and give its https origin",
            )
        )
    problems += pledge_api_problems(api)  # as `site build --publish` says it
    if api.startswith("https://") and not urlsplit(api).netloc:
        problems.append(
            Problem("PLEDGE_API", f"{api!r} names no host", "e.g. https://pledge.hearth.example")
        )
    site = (env.get("SITEURL") or (campaign.coop.website if campaign else "") or "").rstrip("/")
    if origin and site and _origin(site) and _origin(site) != origin:
        problems.append(
            Problem(
                "SITE_ORIGIN",
                f"is {origin}, but the site is published at {site} (SITEURL, or coop.website "
                f"in campaign.toml): the service would refuse every pledge from its pages",
                f"set SITE_ORIGIN={_origin(site)}, or publish the site at {origin}",
            )
        )
    return problems


# -- The ledger, the service, mail ----------------------------------------------------


def service_processes(database_url: str, processes: int) -> list[Problem]:
    if processes > 1 and sqlite_path(database_url) is not None:
        return [
            Problem(
                "WEB_CONCURRENCY",
                f"{processes} service processes would share one SQLite ledger: SQLite lets one "
                "writer in at a time, so pledges and webhooks would queue and time out under "
                "load, and each process would keep its own per-address pledge limits",
                "run a single `fundraiser serve` with SQLite (WEB_CONCURRENCY=1), or move the "
                "ledger to PostgreSQL (DATABASE_URL=postgresql://…) for more processes",
            )
        ]
    return []


def mail(env: Mapping[str, str]) -> list[Problem]:
    """SMTP_URL (the contact email is campaign.toml's, named by `check`)."""
    problems: list[Problem] = []
    url = env.get("SMTP_URL", "")
    if not url:
        problems.append(
            Problem(
                "SMTP_URL",
                "is not set: `fundraiser mail send` cannot send backers their receipts or "
                "members their certificates",
                "export SMTP_URL=smtp://user:password@mail.example:587 for your mail provider",
            )
        )
    else:
        from fundraiser.documents import MailSettingsError
        from fundraiser.documents.smtp import SmtpSettings

        try:
            SmtpSettings.from_url(url)
        except MailSettingsError as exc:
            problems.append(Problem("SMTP_URL", str(exc), "fix the address of the mail server"))
    return problems


def ledger_file(database_url: str) -> list[Problem]:
    path = sqlite_path(database_url)
    if path is None or not path.exists():
        return []
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        return [
            Problem(
                "ledger",
                f"{path} can be read by other users of this machine (mode {mode:o}): it is "
                "the share register, with every member's name and address",
                f"make it private: `chmod 600 {path}`",
            )
        ]
    return []


def backups(folder: Path, now: datetime) -> list[Problem]:
    newest = max(
        (p.stat().st_mtime for p in folder.glob("*") if p.is_file() and not p.name.startswith(".")),
        default=None,
    )
    when = datetime.fromtimestamp(newest, UTC) if newest is not None else None
    if when is not None and now - when <= BACKUP_AGE:
        return []
    since = f"since {when:%Y-%m-%d %H:%M} UTC" if when else "at all"
    return [
        Problem(
            "backups",
            f"no backup of the ledger in {folder} {since}",
            "run `fundraiser backup` now, and from cron every day (PostgreSQL: pg_dump into "
            "that folder)",
        )
    ]


# -- The built site -------------------------------------------------------------------


class _PledgeForm(HTMLParser):
    """The pledge form's data attributes, as the built page carries them."""

    def __init__(self) -> None:
        super().__init__()
        self.attrs: dict[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = {name: value or "" for name, value in attrs}
        if tag == "form" and found.get("id") == "pledge-form" and self.attrs is None:
            self.attrs = found


def built_site(folder: Path | None, env: Mapping[str, str], rehearsal: bool) -> list[Problem]:
    build = (
        "export PLEDGE_API and STRIPE_PUBLISHABLE_KEY as the service has them, "
        "then run `fundraiser site build --publish`"
    )
    if folder is None or not (folder / "index.html").is_file():
        return [Problem("site", f"no built site in {folder}", build)]
    problems: list[Problem] = []
    if (folder / "drafts").exists():
        problems.append(
            Problem(
                "site",
                f"{folder} is a preview build (it holds drafts/, and its links are relative)",
                build,
            )
        )
    page = folder / "pledge.html"
    form = _PledgeForm()
    if page.is_file():
        form.feed(page.read_text(encoding="utf-8", errors="replace"))
    if form.attrs is None:
        return [*problems, Problem("site: pledge.html", "has no pledge form", build)]
    where = "site: pledge.html"
    built_key = form.attrs.get("data-stripe-key", "")
    key = env.get("STRIPE_PUBLISHABLE_KEY", "")
    secret_mode = key_mode(env.get("STRIPE_SECRET_KEY", ""))
    if not built_key:
        problems.append(
            Problem(
                where,
                'was built without the publishable key: it says "The card form could not '
                'load" and takes no pledge',
                build,
            )
        )
    elif secret_mode and key_mode(built_key) and key_mode(built_key) != secret_mode:
        problems.append(
            Problem(
                where,
                f"carries a {key_mode(built_key)} publishable key ({built_key[:8]}…) and the "
                f"service a {secret_mode} secret key: no card form would go through",
                build,
            )
        )
    elif key and built_key != key:
        problems.append(
            Problem(where, "carries another publishable key than STRIPE_PUBLISHABLE_KEY", build)
        )
    built_api = form.attrs.get("data-api", "").rstrip("/")
    api = env.get("PLEDGE_API", "").rstrip("/")
    if built_api != api:
        sent = built_api or "the site's own origin"
        problems.append(
            Problem(
                where,
                f"sends pledges to {sent}, but PLEDGE_API is {api or 'empty'}",
                build,
            )
        )
    stripe_js = form.attrs.get("data-stripe-js", "")
    if not rehearsal and stripe_js and not stripe_js.startswith(STRIPE_JS):
        problems.append(
            Problem(
                where,
                f"loads Stripe.js from {stripe_js}, not from Stripe (a build for the emulator?)",
                "unset STRIPE_JS_URL and build again with --publish",
            )
        )
    return problems
