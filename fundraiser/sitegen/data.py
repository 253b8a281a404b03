"""What the site shows, read once per build: the campaign, its figures, aggregates.

Everything in SiteData is safe to publish: settings from campaign.toml, sums
and counts from the ledger, the journal's head hash, the display names that
backers chose to show, and the treasurer's books summed up (books/spending.py).
`campaign.json` is written from the same data, and can be refreshed on its own
without running Pelican.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fundraiser import redact
from fundraiser.books import spending
from fundraiser.config import Campaign, Round, load_campaign
from fundraiser.figures import Figures, compute
from fundraiser.ledger import Ledger, open_ledger
from fundraiser.money import exponent
from fundraiser.sitegen import SiteBuildError
from fundraiser.sitegen.aggregates import (
    Band,
    DayTotal,
    RoundTotal,
    display_names,
    pledge_sizes,
    raised_per_day,
    round_totals,
)

CAMPAIGN_JSON = "campaign.json"

#: The keys of campaign.json; a test holds the file to exactly these.
JSON_KEYS = frozenset(
    {
        "backers",
        "by_round",
        "currency",
        "days_left",
        "deadline",
        "exponent",
        "generated_at",
        "goal",
        "goal_met",
        "journal",
        "membership",  # None, or aggregates of membership after the campaign (figures.py)
        "mode",
        "opens",
        "paid",
        "percent",
        "pledged",
        "state",
        "tiers",
        "tiers_left",
    }
)


@dataclass(frozen=True)
class SiteData:
    campaign: Campaign
    figures: Figures
    days: tuple[DayTotal, ...]
    bands: tuple[Band, ...]
    rounds: tuple[RoundTotal, ...]
    supporters: tuple[str, ...]
    journal_entries: int
    journal_head: str
    generated_at: datetime
    #: The co-op's books summed up; None when campaign.toml names none ([books] path).
    books: spending.Spending | None = None

    @property
    def open_round(self) -> Round | None:
        """The round taking pledges when the site was built, if any."""
        return next((r for r in self.campaign.rounds if r.is_open(self.generated_at)), None)

    def campaign_json(self) -> dict[str, Any]:
        return figures_payload(
            self.figures, self.journal_entries, self.journal_head, self.generated_at
        )


def parse_now(text: str | None) -> datetime:
    """The build's clock: FUNDRAISER_NOW (ISO 8601 with an offset) or the real time."""
    if not text:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise SiteBuildError(
            f"FUNDRAISER_NOW={text!r} is not a date and time with a UTC offset: "
            "use e.g. 2027-01-15T09:00:00+00:00, or unset it to use the real time"
        )
    return moment


def open_site_ledger(campaign: Campaign, database_url: str | None) -> Ledger:
    """Open the campaign's ledger (a new SQLite ledger starts empty: zero figures)."""
    url = database_url or campaign.default_database_url()
    try:
        return open_ledger(url)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(url, exc) from None


def _unreadable(url: str, exc: sa.exc.SQLAlchemyError) -> SiteBuildError:
    reason = getattr(exc, "orig", None) or exc
    return SiteBuildError(
        f"cannot read the ledger at {redact.url(url)}: {reason}. Point DATABASE_URL (or --db) "
        "at this campaign's ledger, or move the broken file away to start an empty one"
    )


def load_site_data(campaign_path: Path | str, database_url: str | None, now: datetime) -> SiteData:
    """Load campaign.toml and read every published figure from the ledger.

    Raises ConfigError (campaign.toml), LedgerError or SiteBuildError (ledger),
    BooksUnreadable (the treasurer's books), each saying what to fix.
    """
    campaign = load_campaign(campaign_path)
    books = spending.read(campaign)
    ledger = open_site_ledger(campaign, database_url)
    try:
        entries, head = ledger.head()
        with ledger.read() as conn:
            figures = compute(conn, campaign, now)
            days = raised_per_day(conn, campaign)
            bands = pledge_sizes(conn, campaign)
            rounds = round_totals(conn, campaign)
            names = display_names(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(ledger.url, exc) from None
    finally:
        ledger.dispose()
    return SiteData(
        campaign,
        figures,
        tuple(days),
        tuple(bands),
        tuple(rounds),
        tuple(names),
        entries,
        head,
        now,
        books,
    )


def figures_payload(
    figures: Figures, journal_entries: int, journal_head: str, generated_at: datetime
) -> dict[str, Any]:
    """campaign.json: the public figures (aggregates only) and when they were read."""
    payload = figures.as_json()
    payload["exponent"] = exponent(figures.currency)
    payload["tiers_left"] = {tier.id: tier.left for tier in figures.tiers}
    payload["journal"] = {"entries": journal_entries, "head": journal_head}
    payload["generated_at"] = generated_at.astimezone(UTC).isoformat(timespec="seconds")
    return payload


def write_campaign_json(output_dir: Path, payload: dict[str, Any]) -> Path:
    """Write campaign.json atomically, so a page never fetches half a file."""
    target = output_dir / CAMPAIGN_JSON
    text = json.dumps(payload, indent=1, sort_keys=True, ensure_ascii=False) + "\n"
    handle, temporary = tempfile.mkstemp(prefix=".campaign-", suffix=".json", dir=output_dir)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.chmod(temporary, 0o644)  # mkstemp makes it private; the site is public
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def refresh_share_image(
    output_dir: Path, figures: Figures, campaign: Campaign | None = None
) -> Path | None:
    """Draw the share image again with new figures, as the build last drew it (if it did),
    in the language it was drawn in (with the campaign's own catalogs, when given)."""
    from fundraiser import i18n
    from fundraiser.sitegen.shareimage import SHARE_IMAGE, built_with, share_text, write_share_image

    drawn = built_with(output_dir / SHARE_IMAGE)
    if drawn is None:
        return None
    name, locale, website = drawn
    coop = campaign.coop if campaign is not None else None
    language = i18n.language(
        locale,
        coop.country if coop is not None else None,
        campaign.directory if campaign is not None else None,
    )
    return write_share_image(output_dir, share_text(name, figures, website, language))


def refresh_figures(
    output_dir: Path, campaign_path: Path | str, database_url: str | None, now: datetime
) -> tuple[Path, Figures]:
    """Rewrite only campaign.json and the share image in a built site: no Pelican run."""
    if not (output_dir / "index.html").is_file():
        raise SiteBuildError(
            f"there is no built site in {output_dir}: run `fundraiser site build` first, "
            "or pass --output with the folder you built into"
        )
    campaign = load_campaign(campaign_path)
    ledger = open_site_ledger(campaign, database_url)
    try:
        entries, head = ledger.head()
        with ledger.read() as conn:
            figures = compute(conn, campaign, now)
    except sa.exc.SQLAlchemyError as exc:
        raise _unreadable(ledger.url, exc) from None
    finally:
        ledger.dispose()
    try:
        path = write_campaign_json(output_dir, figures_payload(figures, entries, head, now))
        refresh_share_image(output_dir, figures, campaign)
    except OSError as exc:
        raise SiteBuildError(
            f"cannot write {exc.filename or output_dir / CAMPAIGN_JSON}: {exc.strerror}. "
            "Check the folder exists and is writable"
        ) from None
    return path, figures
