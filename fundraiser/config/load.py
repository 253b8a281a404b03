"""campaign.toml, validated into frozen dataclasses.

Every problem names the file, the key and how to fix it; all problems are
collected before anything is raised, so one run of `fundraiser check` lists
them all. A key the loader never asks for is a problem too: a misspelt
`offer_maximun` must not quietly lift the offer's cap.

Warnings are things a campaign can run without but should not publish without
(no contact address, no registration number); `fundraiser check` shows them.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundraiser.config.membership import read_membership
from fundraiser.config.model import Campaign, Coop
from fundraiser.config.reader import Reader, Table
from fundraiser.config.sections import (
    read_bank,
    read_books,
    read_coop,
    read_rounds,
    read_settings,
    read_shares,
    read_tiers,
)
from fundraiser.errors import ConfigError, Problem


@dataclass(frozen=True)
class Review:
    """What `fundraiser check` reports: problems stop every command, warnings do not."""

    problems: list[Problem]
    warnings: list[Problem]


def load_campaign(path: Path | str) -> Campaign:
    """Read and validate campaign.toml; raise ConfigError listing every problem."""
    campaign, problems, _ = _load(Path(path))
    if problems or campaign is None:
        many = "problem" if len(problems) == 1 else "problems"
        raise ConfigError(f"{path} has {len(problems)} {many}:", problems)
    return campaign


def check_campaign(path: Path | str) -> list[Problem]:
    """Every problem in campaign.toml, as values (empty when it is fine)."""
    return _load(Path(path))[1]


def review_campaign(path: Path | str) -> Review:
    """Every problem and every warning in campaign.toml."""
    _, problems, warnings = _load(Path(path))
    return Review(problems, warnings)


def _read(reader: Reader, path: Path) -> dict[str, Any] | None:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        reader.problem(
            "(file)", "not found", "run `fundraiser init DIR` to make one, or pass --campaign PATH"
        )
    except IsADirectoryError:
        reader.problem("(file)", "is a directory", "pass the path of campaign.toml itself")
    except tomllib.TOMLDecodeError as exc:
        reader.problem("(syntax)", f"is not valid TOML: {exc}", "fix the line it names")
    except OSError as exc:
        reader.problem(
            "(file)", f"cannot be read: {exc.strerror}", "check the path and permissions"
        )
    return None


def _load(path: Path) -> tuple[Campaign | None, list[Problem], list[Problem]]:
    reader = Reader(path)
    data = _read(reader, path)
    if data is None:
        return None, reader.problems, []
    top = Table("", data)
    coop = read_coop(reader, reader.table(top, "coop"))
    settings = read_settings(reader, reader.table(top, "campaign"))
    currency = settings.currency if settings else None
    terms = read_shares(reader, reader.table(top, "shares"), currency)
    rounds = read_rounds(reader, reader.table(top, "rounds"), settings)
    raw_tiers = top.get("tiers")
    tiers = read_tiers(reader, [] if raw_tiers is None else raw_tiers, terms)
    bank = read_bank(reader, reader.table(top, "bank", required=False))
    books = read_books(reader, reader.table(top, "books", required=False))
    membership = read_membership(reader, reader.table(top, "membership", required=False), terms)
    reader.unknown_keys(top)

    if settings and terms and settings.offer_maximum is not None:
        if settings.offer_maximum < terms.price:
            reader.problem(
                "campaign.offer_maximum", "is below the price of one share", "raise it or remove it"
            )
        elif settings.offer_maximum < settings.goal:
            reader.problem(
                "campaign.offer_maximum",
                "is below the goal",
                "raise offer_maximum to at least the goal",
            )
    if settings and terms and settings.goal < terms.price:
        reader.problem("campaign.goal", "is below the price of one share", "raise the goal")

    warnings = _warnings(path, coop) if coop else []
    if reader.problems or not (coop and settings and terms and rounds is not None):
        return None, reader.problems, warnings
    found = Campaign(path.resolve(), coop, settings, terms, rounds, tiers, bank, books, membership)
    return found, [], warnings


def _warnings(path: Path, coop: Coop) -> list[Problem]:
    """What the co-op can campaign without, and where each missing value shows."""
    found: list[Problem] = []
    if coop.registration_number is None:
        by = coop.registration_authority or "the registrar"
        if not by.lower().startswith("the "):
            by = f"the {by}"
        found.append(
            Problem(
                f"{path.name}: coop.registration_number",
                "is empty: the footer of every page and each share certificate say the "
                "registration is pending, the share offer page says shares are issued only "
                "once the co-op is registered, and mails and share statements give no number",
                f"fill it in once the co-op is registered with {by}",
            )
        )
    if coop.contact_email is None:
        found.append(
            Problem(
                f"{path.name}: coop.contact_email",
                "is empty: the site's footer gives no address to write to, the pledge page "
                "tells backers who pay by bank transfer to write to the co-op without saying "
                "where, mails give no address for questions, and `fundraiser mail send` "
                "needs MAIL_FROM",
                'add it, e.g. contact_email = "members@your-coop.org"',
            )
        )
    return found
