"""campaign.toml, validated into frozen dataclasses.

Every problem names the file, the key and how to fix it; all problems are
collected before anything is raised, so one run of `fundraiser check` lists
them all.
"""

from __future__ import annotations

import enum
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fundraiser.errors import ConfigError, MoneyError, Problem
from fundraiser.money import Money, check_currency, parse

T = TypeVar("T")


class Mode(enum.StrEnum):
    ALL_OR_NOTHING = "all-or-nothing"
    KEEP_IT_ALL = "keep-it-all"


class ScaleBack(enum.StrEnum):
    PRO_RATA = "pro-rata"
    FIRST_COME = "first-come"
    SMALL_FIRST = "small-first"


ROUND_IDS = ("seed", "crowd")


@dataclass(frozen=True)
class Coop:
    name: str
    legal_form: str
    jurisdiction: str
    registration_number: str | None = None
    website: str | None = None
    contact_email: str | None = None
    certificates: bool = True  # False when the bylaws say share statements instead


@dataclass(frozen=True)
class Bank:
    """Where backers send bank transfers for offline pledges."""

    account_name: str
    details: str  # e.g. "Sort code 08-92-99, account 65432100" or an IBAN and BIC


@dataclass(frozen=True)
class CampaignSettings:
    currency: str
    goal: Money
    opens: datetime
    deadline: datetime
    mode: Mode
    timezone: str
    offer_maximum: Money | None = None


@dataclass(frozen=True)
class ShareTerms:
    price: Money
    min_shares: int
    max_shares: int
    scale_back: ScaleBack

    @property
    def min_holding(self) -> Money:
        return self.price * self.min_shares

    @property
    def max_holding(self) -> Money:
        return self.price * self.max_shares


@dataclass(frozen=True)
class Round:
    id: str
    name: str
    opens: datetime
    closes: datetime

    def is_open(self, at: datetime) -> bool:
        return self.opens <= at < self.closes


@dataclass(frozen=True)
class Tier:
    id: str
    name: str
    shares: int
    description: str = ""
    limit: int | None = None


@dataclass(frozen=True)
class Campaign:
    path: Path
    coop: Coop
    campaign: CampaignSettings
    shares: ShareTerms
    rounds: tuple[Round, ...]
    tiers: tuple[Tier, ...] = field(default_factory=tuple)
    bank: Bank | None = None  # optional: needed to tell offline backers where to pay

    @property
    def currency(self) -> str:
        return self.campaign.currency

    @property
    def directory(self) -> Path:
        return self.path.parent

    @property
    def offer_max_shares(self) -> int | None:
        """Most shares the offer can issue, from the offer maximum and price."""
        maximum = self.campaign.offer_maximum
        return None if maximum is None else maximum.amount // self.shares.price.amount

    def round(self, round_id: str) -> Round | None:
        return next((r for r in self.rounds if r.id == round_id), None)

    def tier(self, tier_id: str) -> Tier | None:
        return next((t for t in self.tiers if t.id == tier_id), None)

    def default_database_url(self) -> str:
        return f"sqlite:///{self.directory / 'var' / 'ledger.sqlite'}"


class _Reader:
    """Reads typed values out of parsed TOML and collects problems."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def problem(self, key: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(f"{self.path.name}: {key}", message, fix))

    def table(self, data: dict[str, Any], key: str, *, required: bool = True) -> dict[str, Any]:
        value = data.get(key)
        if value is None:
            if required:
                self.problem(f"[{key}]", "the table is missing", f"add a [{key}] table")
            return {}
        if not isinstance(value, dict):
            self.problem(key, "must be a table", f"write it as [{key}]")
            return {}
        if not value and required:
            self.problem(f"[{key}]", "the table is empty", f"fill in the [{key}] table")
        return value

    def get(
        self,
        data: dict[str, Any],
        prefix: str,
        key: str,
        kind: type[T],
        *,
        required: bool = True,
        example: str = "",
    ) -> T | None:
        value = data.get(key)
        name = f"{prefix}.{key}"
        hint = f", e.g. {key} = {example}" if example else ""
        if value is None:
            if required:
                self.problem(name, "is missing", f"add it{hint}")
            return None
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.problem(name, f"must be {_kind_name(kind)}, not {value!r}", f"write it{hint}")
            return None
        if isinstance(value, str) and not value.strip() and required:
            self.problem(name, "is empty", f"fill it in{hint}")
            return None
        return value

    def text(
        self,
        data: dict[str, Any],
        prefix: str,
        key: str,
        *,
        required: bool = True,
        example: str = "",
    ) -> str | None:
        value = self.get(data, prefix, key, str, required=required, example=example)
        return value.strip() if value is not None and value.strip() else None

    def money(
        self,
        data: dict[str, Any],
        prefix: str,
        key: str,
        currency: str | None,
        *,
        required: bool = True,
    ) -> Money | None:
        value = data.get(key)
        name = f"{prefix}.{key}"
        example = '"250.00"'
        if value is None:
            if required:
                self.problem(name, "is missing", f"add it, e.g. {key} = {example}")
            return None
        if currency is None:
            return None  # the currency problem is already reported
        if isinstance(value, float):
            self.problem(
                name,
                f"{value!r} is a floating-point number",
                f"write amounts as text, e.g. {key} = {example}",
            )
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problem(name, f"must be an amount, not {value!r}", f"e.g. {key} = {example}")
            return None
        try:
            return parse(str(value), currency)
        except MoneyError as exc:
            self.problem(name, str(exc), f"e.g. {key} = {example}")
            return None

    def moment(self, data: dict[str, Any], prefix: str, key: str) -> datetime | None:
        value = data.get(key)
        name = f"{prefix}.{key}"
        example = f"{key} = 2027-03-31T18:00:00+01:00"
        if value is None:
            self.problem(name, "is missing", f"add it, e.g. {example}")
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                self.problem(name, f"{value!r} is not a date and time", f"e.g. {example}")
                return None
        if isinstance(value, date) and not isinstance(value, datetime):
            self.problem(
                name, "is a date without a time and time zone", f"give both, e.g. {example}"
            )
            return None
        if not isinstance(value, datetime):
            self.problem(name, f"must be a date and time, not {value!r}", f"e.g. {example}")
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            self.problem(
                name, "has no time zone", f"add the UTC offset, e.g. {example} (or Z for UTC)"
            )
            return None
        return value

    def choice(
        self,
        data: dict[str, Any],
        prefix: str,
        key: str,
        enum_type: Callable[[str], T],
        choices: list[str],
    ) -> T | None:
        raw = self.get(data, prefix, key, str, example=f'"{choices[0]}"')
        if raw is None:
            return None
        try:
            return enum_type(raw.strip())
        except ValueError:
            self.problem(
                f"{prefix}.{key}",
                f"{raw!r} is not one of {', '.join(choices)}",
                f'choose one, e.g. {key} = "{choices[0]}"',
            )
            return None

    def count(
        self, data: dict[str, Any], prefix: str, key: str, *, minimum: int, required: bool = True
    ) -> int | None:
        value = self.get(data, prefix, key, int, required=required, example=str(max(minimum, 1)))
        if value is not None and value < minimum:
            self.problem(
                f"{prefix}.{key}",
                f"must be at least {minimum}, not {value}",
                "use a whole number in range",
            )
            return None
        return value


def _kind_name(kind: type[Any]) -> str:
    return {
        str: "text",
        int: "a whole number",
        bool: "true or false",
        dict: "a table",
        list: "a list",
    }.get(kind, kind.__name__)


def load_campaign(path: Path | str) -> Campaign:
    """Read and validate campaign.toml; raise ConfigError listing every problem."""
    campaign, problems = _load(Path(path))
    if problems or campaign is None:
        raise ConfigError(f"{path} has {len(problems)} problem(s):", problems)
    return campaign


def check_campaign(path: Path | str) -> list[Problem]:
    """Every problem in campaign.toml, as values (empty when it is fine)."""
    return _load(Path(path))[1]


def _load(path: Path) -> tuple[Campaign | None, list[Problem]]:
    reader = _Reader(path)
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        reader.problem(
            "(file)", "not found", "run `fundraiser init DIR` to make one, or pass --campaign PATH"
        )
        return None, reader.problems
    except IsADirectoryError:
        reader.problem("(file)", "is a directory", "pass the path of campaign.toml itself")
        return None, reader.problems
    except tomllib.TOMLDecodeError as exc:
        reader.problem("(syntax)", f"is not valid TOML: {exc}", "fix the line it names")
        return None, reader.problems
    except OSError as exc:
        reader.problem(
            "(file)", f"cannot be read: {exc.strerror}", "check the path and permissions"
        )
        return None, reader.problems

    known = {"coop", "campaign", "shares", "rounds", "tiers", "bank"}
    for key in data:
        if key not in known:
            reader.problem(
                key, "is not a known setting", f"remove it or use one of {', '.join(sorted(known))}"
            )

    coop = _coop(reader, reader.table(data, "coop"))
    settings = _settings(reader, reader.table(data, "campaign"))
    currency = settings.currency if settings else None
    terms = _shares(reader, reader.table(data, "shares"), currency)
    rounds = _rounds(reader, reader.table(data, "rounds"), settings)
    tiers = _tiers(reader, data.get("tiers", []), terms)
    bank = _bank(reader, reader.table(data, "bank", required=False))

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

    if reader.problems or not (coop and settings and terms and rounds is not None):
        return None, reader.problems
    return Campaign(path.resolve(), coop, settings, terms, rounds, tiers, bank), []


def _bank(reader: _Reader, data: dict[str, Any]) -> Bank | None:
    if not data:
        return None
    for key in data:
        if key not in ("account_name", "details"):
            reader.problem(f"bank.{key}", "is not a known setting", "use account_name and details")
    name = reader.text(data, "bank", "account_name", example='"Hearth Social Co-operative Ltd"')
    details = reader.text(data, "bank", "details", example='"Sort code 08-92-99, account 65432100"')
    return Bank(name, details) if name and details else None


def _coop(reader: _Reader, data: dict[str, Any]) -> Coop | None:
    if not data:
        return None
    name = reader.text(data, "coop", "name", example='"Commons Social"')
    legal_form = reader.text(data, "coop", "legal_form", example='"Co-operative society"')
    jurisdiction = reader.text(data, "coop", "jurisdiction", example='"England and Wales"')
    number = reader.text(data, "coop", "registration_number", required=False)
    website = reader.text(data, "coop", "website", required=False)
    contact = reader.text(data, "coop", "contact_email", required=False)
    certificates = reader.get(data, "coop", "certificates", bool, required=False)
    if not (name and legal_form and jurisdiction):
        return None
    return Coop(
        name,
        legal_form,
        jurisdiction,
        number,
        website,
        contact,
        True if certificates is None else certificates,
    )


def _settings(reader: _Reader, data: dict[str, Any]) -> CampaignSettings | None:
    if not data:
        return None
    currency = None
    raw_currency = reader.text(data, "campaign", "currency", example='"GBP"')
    if raw_currency is not None:
        try:
            currency = check_currency(raw_currency)
        except MoneyError as exc:
            reader.problem("campaign.currency", str(exc), 'e.g. currency = "GBP"')
    goal = reader.money(data, "campaign", "goal", currency)
    offer_max = reader.money(data, "campaign", "offer_maximum", currency, required=False)
    opens = reader.moment(data, "campaign", "opens")
    deadline = reader.moment(data, "campaign", "deadline")
    mode = reader.choice(data, "campaign", "mode", Mode, [m.value for m in Mode])
    tz_name = reader.text(data, "campaign", "timezone", required=False) or "UTC"
    try:
        ZoneInfo(tz_name)
    except (ZoneInfoNotFoundError, ValueError):
        reader.problem(
            "campaign.timezone",
            f"{tz_name!r} is not a known time zone",
            'use an IANA name such as "Europe/London"',
        )
    if opens and deadline and deadline <= opens:
        reader.problem(
            "campaign.deadline",
            "is not after campaign.opens",
            "set the deadline later than the opening",
        )
    if not (currency and goal and opens and deadline and mode):
        return None
    return CampaignSettings(currency, goal, opens, deadline, mode, tz_name, offer_max)


def _shares(reader: _Reader, data: dict[str, Any], currency: str | None) -> ShareTerms | None:
    if not data:
        return None
    price = reader.money(data, "shares", "price", currency)
    low = reader.count(data, "shares", "min_shares", minimum=1)
    high = reader.count(data, "shares", "max_shares", minimum=1)
    policy = reader.choice(data, "shares", "scale_back", ScaleBack, [s.value for s in ScaleBack])
    if low is not None and high is not None and low > high:
        reader.problem(
            "shares.min_shares",
            f"({low}) is more than shares.max_shares ({high})",
            "make min_shares at most max_shares",
        )
        return None
    if not (price and low and high and policy):
        return None
    return ShareTerms(price, low, high, policy)


def _rounds(
    reader: _Reader, data: dict[str, Any], settings: CampaignSettings | None
) -> tuple[Round, ...] | None:
    if not data:
        return None
    rounds: list[Round] = []
    for round_id, body in data.items():
        prefix = f"rounds.{round_id}"
        if round_id not in ROUND_IDS:
            reader.problem(prefix, "is not a known round", f"use one of {', '.join(ROUND_IDS)}")
            continue
        if not isinstance(body, dict):
            reader.problem(prefix, "must be a table", f"write it as [{prefix}]")
            continue
        name = reader.text(body, prefix, "name", required=False) or round_id.capitalize()
        opens = reader.moment(body, prefix, "opens")
        closes = reader.moment(body, prefix, "closes")
        if opens and closes and closes <= opens:
            reader.problem(f"{prefix}.closes", "is not after opens", "set closes later than opens")
            continue
        if settings and closes and closes > settings.deadline:
            reader.problem(
                f"{prefix}.closes",
                "is after campaign.deadline",
                "close the round by the campaign's deadline",
            )
            continue
        if opens and closes:
            rounds.append(Round(round_id, name, opens, closes))
    if "crowd" not in data:
        reader.problem(
            "rounds.crowd", "is missing", "add a [rounds.crowd] table with opens and closes"
        )
    return tuple(sorted(rounds, key=lambda r: (r.opens, r.id)))


def _tiers(reader: _Reader, data: Any, terms: ShareTerms | None) -> tuple[Tier, ...]:
    if not isinstance(data, list):
        reader.problem("tiers", "must be a list of tables", "write each tier as [[tiers]]")
        return ()
    tiers: list[Tier] = []
    seen: set[str] = set()
    for index, body in enumerate(data, start=1):
        prefix = f"tiers[{index}]"
        if not isinstance(body, dict):
            reader.problem(prefix, "must be a table", "write each tier as [[tiers]]")
            continue
        tier_id = reader.text(body, prefix, "id", example='"founder"')
        name = reader.text(body, prefix, "name", example='"Founding member"')
        shares = reader.count(body, prefix, "shares", minimum=1)
        description = reader.text(body, prefix, "description", required=False) or ""
        limit = reader.count(body, prefix, "limit", minimum=1, required=False)
        if tier_id in seen:
            reader.problem(
                f"{prefix}.id", f"{tier_id!r} is used twice", "give each tier its own id"
            )
            continue
        if tier_id and not tier_id.replace("-", "").replace("_", "").isalnum():
            reader.problem(
                f"{prefix}.id",
                f"{tier_id!r} has characters other than letters, digits, - and _",
                'use a short slug such as "founder"',
            )
            continue
        if terms and shares is not None and not terms.min_shares <= shares <= terms.max_shares:
            reader.problem(
                f"{prefix}.shares",
                f"{shares} is outside the holding limits "
                f"({terms.min_shares} to {terms.max_shares})",
                "choose a number of shares within shares.min_shares and max_shares",
            )
            continue
        if tier_id and name and shares:
            seen.add(tier_id)
            tiers.append(Tier(tier_id, name, shares, description, limit))
    return tuple(tiers)
