"""campaign.toml, validated into frozen dataclasses.

Every problem names the file, the key and how to fix it; all problems are
collected before anything is raised, so one run of `fundraiser check` lists
them all. A key the loader never asks for is a problem too: a misspelt
`offer_maximun` must not quietly lift the offer's cap.

Warnings are things a campaign can run without but should not publish without
(no contact address, no registration number); `fundraiser check` shows them.
"""

from __future__ import annotations

import difflib
import enum
import re
import tomllib
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from babel import Locale, UnknownLocaleError

from fundraiser import accounts, countries
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


class Admission(enum.StrEnum):
    AUTOMATIC = "automatic"  # a paid application is admitted on payment
    BOARD = "board"  # the board admits or declines each one


class Interval(enum.StrEnum):
    YEAR = "year"
    MONTH = "month"


class Surplus(enum.StrEnum):
    """What the supporter rate's surplus over the standard fee pays for."""

    FREE_PLACES = "free-places"  # members who cannot pay join at no fee
    RUNNING_COSTS = "running-costs"  # the co-op's running costs, nothing counted


class Rate(enum.StrEnum):
    STANDARD = "standard"
    REDUCED = "reduced"
    SUPPORTER = "supporter"
    FREE = "free"  # a place paid for by supporters' surplus


@dataclass(frozen=True)
class Coop:
    name: str
    legal_form: str
    jurisdiction: str
    registration_number: str | None = None
    website: str | None = None
    contact_email: str | None = None
    certificates: bool = True  # False when the bylaws say share statements instead
    country: str | None = None  # ISO 3166: "FR", or "GB-SCT" where the law differs within
    language: str = "en"  # BCP 47: "fr", "en-GB"; from the country when not given
    registration_authority: str | None = None  # who gives the registration number


@dataclass(frozen=True)
class BankCsv:
    """How to read the bank's CSV statement: which column holds what ([bank.csv])."""

    date: str
    text: tuple[str, ...]  # the columns whose text is searched for PLEDGE-<id>, joined
    amount: str | None = None  # one signed column, or...
    credit: str | None = None  # ...money in and money out in two columns
    debit: str | None = None
    name: str | None = None  # the payer's name: suggestions only, never stored
    id: str | None = None  # the bank's own id for a transaction, when it gives one
    currency: str | None = None
    date_format: str = "%Y-%m-%d"
    decimal: str = "."
    delimiter: str = ","
    encoding: str = "utf-8"
    account: str = "csv"  # names the account the file is from (bank ids are per account)

    def columns(self) -> dict[str, str]:
        """Setting -> column name, for every column the mapping names."""
        named = {
            "date": self.date,
            "amount": self.amount,
            "credit": self.credit,
            "debit": self.debit,
            "name": self.name,
            "id": self.id,
            "currency": self.currency,
        }
        found = {k: v for k, v in named.items() if v}
        for n, column in enumerate(self.text, start=1):
            found[f"text[{n}]" if len(self.text) > 1 else "text"] = column
        return found


@dataclass(frozen=True)
class Bank:
    """The co-op's bank account: where backers send transfers, and refunds leave from.

    `details` is what a backer is told (free text); the structured fields are
    checked (IBAN and BIC by schwifty) and used for payment files and, later,
    EPC payment QR codes. Give an IBAN, or a UK sort code and account number.
    """

    account_name: str
    details: str  # e.g. "Sort code 08-92-99, account 65432100" or an IBAN and BIC
    iban: str | None = None
    bic: str | None = None
    sort_code: str | None = None
    account_number: str | None = None
    csv: BankCsv | None = None


@dataclass(frozen=True)
class Books:
    """The chart of accounts the books export names ([books]); beancount's naming rules."""

    bank: str = "Assets:Bank:Current"
    stripe: str = "Assets:Stripe"
    disputed: str = "Assets:Stripe:Disputed"
    pledges: str = "Liabilities:Pledges"  # money received for shares not yet issued
    refunds_due: str = "Liabilities:Refunds-Due"
    unidentified: str = "Liabilities:Unidentified-Receipts"
    withdrawals: str = "Liabilities:Withdrawals-Payable"
    share_capital: str = "Equity:Share-Capital"
    fees: str = "Expenses:Payment-Fees"  # for Stripe's fees, once the ledger records them
    #: The treasurer's own beancount file, which the transparency page sums up (resolved
    #: against campaign.toml's folder). Only its shape is checked here: the pledge service
    #: reads campaign.toml on a server that need not hold the books; `check` and the site
    #: build load them (fundraiser/books/spending.py).
    path: Path | None = None

    #: Each account's type: a share-capital account under Assets would make
    #: every balance sheet the treasurer draws from the books wrong.
    ROOTS: ClassVar[dict[str, str]] = {
        "bank": "Assets",
        "stripe": "Assets",
        "disputed": "Assets",
        "pledges": "Liabilities",
        "refunds_due": "Liabilities",
        "unidentified": "Liabilities",
        "withdrawals": "Liabilities",
        "share_capital": "Equity",
        "fees": "Expenses",
    }


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
class Fee:
    """The membership fee: a standard rate, and the reduced and supporter rates beside it."""

    amount: Money
    interval: Interval
    reduced: Money | None = None
    supporter: Money | None = None
    surplus: Surplus = Surplus.FREE_PLACES

    def rates(self) -> dict[Rate, Money]:
        """Each rate a member may choose, and what it costs per interval."""
        found = {Rate.STANDARD: self.amount}
        if self.reduced is not None:
            found[Rate.REDUCED] = self.reduced
        if self.supporter is not None:
            found[Rate.SUPPORTER] = self.supporter
            if self.surplus == Surplus.FREE_PLACES:
                found[Rate.FREE] = Money(0, self.amount.currency)
        return found

    def monthly(self, amount: Money) -> Money:
        """An amount per interval as an amount per month (rounded down to a minor unit)."""
        return (
            amount
            if self.interval == Interval.MONTH
            else Money(amount.amount // 12, amount.currency)
        )


@dataclass(frozen=True)
class Membership:
    """Joining after the campaign ([membership]): the rules' terms for new members."""

    open: bool
    min_shares_to_join: int  # a new member's least; members top up by any whole share
    admission: Admission
    fee: Fee | None  # None: membership carries no fee
    grace_days: int  # an unpaid fee lapses the membership this long after it fell due
    withdrawal_notice_days: int  # a withdrawal is paid this long after it is asked for


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
    books: Books = field(default_factory=Books)
    membership: Membership | None = None  # None: no one joins after the campaign

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


class Invalid(ValueError):
    """A value that cannot stand, with how to fix it (the loader's and `init`'s checks)."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message}: {fix}")
        self.message = message
        self.fix = fix


_MAX_LINE = 200
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# The co-op's own address, not a backer's identity: a syntax check is enough here.
_EMAIL = re.compile(r"^[^@\s<>,;\"'()\[\]\\]+@[^@\s<>,;\"'()\[\]\\]+\.[^@\s<>,;\"'()\[\]\\.]{2,}$")


def check_one_line(value: str) -> str:
    """Text printed in a page footer, on a certificate or in a mail header."""
    if any(unicodedata.category(c) == "Cc" or c in _BIDI_CONTROLS for c in value):
        raise Invalid("has a line break or a control character", "write it on one line")
    if len(value) > _MAX_LINE:
        raise Invalid(f"is {len(value)} characters long", f"keep it to {_MAX_LINE}")
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


class _Table:
    """One TOML table, and the keys the loader asked of it: any other key is unknown."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name = name  # how problems name it: "coop", "rounds.seed", "tiers[2]", "" at the top
        self.data = data
        self.asked: dict[str, None] = {}  # ordered: the schema, in the order it is read

    def __bool__(self) -> bool:
        return bool(self.data)

    def where(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str) -> Any:
        self.asked[key] = None
        return self.data.get(key)


def did_you_mean(key: str, known: Iterable[str]) -> str | None:
    """The known key a misspelt one was most likely meant to be."""
    by_lower = {k.lower(): k for k in known}
    close = difflib.get_close_matches(key.lower(), list(by_lower), n=1, cutoff=0.7)
    return by_lower[close[0]] if close else None


class _Reader:
    """Reads typed values out of parsed TOML and collects problems."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def problem(self, key: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(f"{self.path.name}: {key}", message, fix))

    def table(self, parent: _Table, key: str, *, required: bool = True) -> _Table:
        value = parent.get(key)
        name = parent.where(key)
        if value is None:
            if required:
                self.problem(f"[{name}]", "the table is missing", f"add a [{name}] table")
            return _Table(name, {})
        if not isinstance(value, dict):
            self.problem(name, "must be a table", f"write it as [{name}]")
            return _Table(name, {})
        if not value and required:
            self.problem(f"[{name}]", "the table is empty", f"fill in the [{name}] table")
        return _Table(name, value)

    def unknown_keys(self, table: _Table, *, what: str = "setting") -> None:
        """Every key the loader did not ask for, with the nearest one it knows."""
        for key in table.data:
            if key in table.asked:
                continue
            known = list(table.asked)
            guess = did_you_mean(key, known)
            if guess is not None:
                fix = f"did you mean `{guess}`?"
            elif table.name:
                fix = f"remove it; [{table.name}] takes {', '.join(known)}"
            else:
                fix = f"remove it; the tables are {', '.join(known)}"
            self.problem(table.where(key), f"is not a known {what}", fix)

    def get(
        self,
        table: _Table,
        key: str,
        kind: type[T],
        *,
        required: bool = True,
        example: str = "",
    ) -> T | None:
        value = table.get(key)
        name = table.where(key)
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
        table: _Table,
        key: str,
        *,
        required: bool = True,
        example: str = "",
        check: Callable[[str], str] | None = None,
    ) -> str | None:
        """Text, trimmed; empty optional text is None. `check` refuses bad values."""
        value = self.get(table, key, str, required=required, example=example)
        if value is None or not value.strip():
            return None
        if check is None:
            return value.strip()
        try:
            return check(value)
        except Invalid as exc:
            self.problem(table.where(key), exc.message, exc.fix)
            return None

    def money(
        self,
        table: _Table,
        key: str,
        currency: str | None,
        *,
        required: bool = True,
    ) -> Money | None:
        value = table.get(key)
        name = table.where(key)
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

    def moment(self, table: _Table, key: str) -> datetime | None:
        value = table.get(key)
        name = table.where(key)
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
        table: _Table,
        key: str,
        enum_type: Callable[[str], T],
        choices: list[str],
    ) -> T | None:
        raw = self.get(table, key, str, example=f'"{choices[0]}"')
        if raw is None:
            return None
        try:
            return enum_type(raw.strip())
        except ValueError:
            self.problem(
                table.where(key),
                f"{raw!r} is not one of {', '.join(choices)}",
                f'choose one, e.g. {key} = "{choices[0]}"',
            )
            return None

    def count(self, table: _Table, key: str, *, minimum: int, required: bool = True) -> int | None:
        value = self.get(table, key, int, required=required, example=str(max(minimum, 1)))
        if value is not None and value < minimum:
            self.problem(
                table.where(key),
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


def _read(reader: _Reader, path: Path) -> dict[str, Any] | None:
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
    reader = _Reader(path)
    data = _read(reader, path)
    if data is None:
        return None, reader.problems, []
    top = _Table("", data)
    coop = _coop(reader, reader.table(top, "coop"))
    settings = _settings(reader, reader.table(top, "campaign"))
    currency = settings.currency if settings else None
    terms = _shares(reader, reader.table(top, "shares"), currency)
    rounds = _rounds(reader, reader.table(top, "rounds"), settings)
    raw_tiers = top.get("tiers")
    tiers = _tiers(reader, [] if raw_tiers is None else raw_tiers, terms)
    bank = _bank(reader, reader.table(top, "bank", required=False))
    books = _books(reader, reader.table(top, "books", required=False))
    membership = _membership(reader, reader.table(top, "membership", required=False), terms)
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


def _account_part(
    reader: _Reader, table: _Table, key: str, check: Callable[[str], str]
) -> str | None:
    raw = reader.text(table, key, required=False)
    if raw is None:
        return None
    try:
        return check(raw)
    except accounts.BadAccount as exc:
        reader.problem(table.where(key), exc.message, exc.fix)
        return None


def _bank(reader: _Reader, table: _Table) -> Bank | None:
    if not table:
        return None
    name = reader.text(
        table, "account_name", example='"Hearth Social Co-operative Ltd"', check=check_one_line
    )
    iban = _account_part(reader, table, "iban", accounts.iban)
    bic = _account_part(reader, table, "bic", accounts.bic)
    sort_code = _account_part(reader, table, "sort_code", accounts.sort_code)
    number = _account_part(reader, table, "account_number", accounts.account_number)
    structured = bool(iban or (sort_code and number))
    details = reader.text(
        table,
        "details",
        required=not structured,
        example='"Sort code 08-92-99, account 65432100"',
    )
    if bic and not iban:
        reader.problem(table.where("bic"), "is given without an IBAN", "add iban, or remove bic")
    if iban and (sort_code or number):
        reader.problem(
            table.where("iban"),
            "is given with a UK sort code and account number",
            "give one of them: iban (and bic), or sort_code and account_number",
        )
    given = {k for k in ("sort_code", "account_number") if k in table.data}
    if len(given) == 1:
        other = ({"sort_code", "account_number"} - given).pop()
        reader.problem(table.where(other), "is missing", f"give it with {given.pop()}")
    if iban and not bic:
        bic = accounts.bic_of(iban)
    csv_settings = _bank_csv(reader, reader.table(table, "csv", required=False))
    reader.unknown_keys(table)
    if not details:
        if iban:
            details = f"IBAN {accounts.spaced(iban)}" + (f", BIC {bic}" if bic else "")
        elif sort_code and number:
            details = (
                f"Sort code {sort_code[:2]}-{sort_code[2:4]}-{sort_code[4:]}, account {number}"
            )
    if not (name and details):
        return None
    return Bank(name, details, iban, bic, sort_code, number, csv_settings)


_CSV_DEFAULTS = BankCsv(date="", text=())


def _bank_csv(reader: _Reader, table: _Table) -> BankCsv | None:
    if not table:
        return None
    date_column = reader.text(table, "date", example='"Date"')
    raw_text = table.get("text")
    text: tuple[str, ...] = ()
    if isinstance(raw_text, str) and raw_text.strip():
        text = (raw_text.strip(),)
    elif (
        isinstance(raw_text, list)
        and raw_text
        and all(isinstance(v, str) and v.strip() for v in raw_text)
    ):
        text = tuple(v.strip() for v in raw_text)
    else:
        reader.problem(
            table.where("text"),
            "is missing or empty"
            if raw_text is None
            else f"must be a column name, not {raw_text!r}",
            'name the column(s) with the payment reference, e.g. text = ["Reference", "Details"]',
        )
    amount = reader.text(table, "amount", required=False)
    credit = reader.text(table, "credit", required=False)
    debit = reader.text(table, "debit", required=False)
    if amount and (credit or debit):
        reader.problem(
            table.where("amount"),
            "is given with credit/debit",
            "name one signed amount column, or the credit and debit columns, not both",
        )
    elif not amount and not credit:
        reader.problem(
            table.where("amount"),
            "is missing",
            'name the amount column, e.g. amount = "Amount" (or credit = "Paid in" and '
            'debit = "Paid out")',
        )
    name = reader.text(table, "name", required=False)
    bank_id = reader.text(table, "id", required=False)
    currency = reader.text(table, "currency", required=False)
    date_format = reader.text(table, "date_format", required=False) or _CSV_DEFAULTS.date_format
    if "%" not in date_format:
        reader.problem(
            table.where("date_format"),
            f"{date_format!r} has no % codes",
            'write it as Python\'s strptime does, e.g. date_format = "%d/%m/%Y"',
        )
    decimal = reader.get(table, "decimal", str, required=False) or _CSV_DEFAULTS.decimal
    if decimal not in (".", ","):
        reader.problem(table.where("decimal"), f"{decimal!r} is not . or ,", 'e.g. decimal = ","')
    delimiter = reader.get(table, "delimiter", str, required=False) or _CSV_DEFAULTS.delimiter
    if delimiter not in (",", ";", "\t", "|"):
        reader.problem(
            table.where("delimiter"),
            f"{delimiter!r} is not one of , ; | or a tab",
            'e.g. delimiter = ";"',
        )
    encoding = reader.text(table, "encoding", required=False) or _CSV_DEFAULTS.encoding
    try:
        "".encode(encoding)
    except LookupError:
        reader.problem(
            table.where("encoding"), f"{encoding!r} is not a known encoding", 'e.g. "utf-8"'
        )
    account = reader.text(table, "account", required=False, check=check_one_line) or "csv"
    reader.unknown_keys(table)
    if not (date_column and text and (amount or credit)):
        return None
    return BankCsv(
        date_column,
        text,
        amount,
        credit,
        debit,
        name,
        bank_id,
        currency,
        date_format,
        decimal,
        delimiter,
        encoding,
        account,
    )


_ACCOUNT_NAME = re.compile(r"^[A-Z][A-Za-z0-9-]*(?::[A-Z0-9][A-Za-z0-9-]*)+$")


def _books(reader: _Reader, table: _Table) -> Books:
    defaults = Books()
    values: dict[str, str] = {}
    for key, root in Books.ROOTS.items():
        raw = reader.text(table, key, required=False)
        if raw is None:
            continue
        if not _ACCOUNT_NAME.match(raw):
            reader.problem(
                table.where(key),
                f"{raw!r} is not an account name",
                f"write it as beancount does: capitalised parts joined by colons, "
                f'e.g. {key} = "{getattr(defaults, key)}"',
            )
        elif raw.split(":", 1)[0] != root:
            reader.problem(
                table.where(key),
                f"{raw!r} is not under {root}",
                f'name an {root} account, e.g. {key} = "{getattr(defaults, key)}"',
            )
        else:
            values[key] = raw
    path = reader.text(table, "path", required=False, check=_check_books_path)
    reader.unknown_keys(table)
    return Books(**values, path=_books_path(reader.path, path))


def _check_books_path(value: str) -> str:
    text = check_one_line(value)
    if text.endswith(("/", "\\")):
        raise Invalid(
            f"{text!r} is a folder", 'name the beancount file, e.g. path = "books/coop.beancount"'
        )
    return text


def _books_path(campaign_file: Path, given: str | None) -> Path | None:
    """The books' file: as written when absolute, else beside campaign.toml."""
    if given is None:
        return None
    path = Path(given).expanduser()
    return path if path.is_absolute() else campaign_file.resolve().parent / path


def _coop(reader: _Reader, table: _Table) -> Coop | None:
    if not table:
        return None
    name = reader.text(table, "name", example='"Commons Social"', check=check_one_line)
    country = reader.text(table, "country", required=False, check=check_country)
    legal_form = reader.text(
        table, "legal_form", example='"co-operative society"', check=check_one_line
    )
    jurisdiction = reader.text(
        table,
        "jurisdiction",
        example=f'"England and Wales under {countries.UK_ACT}"',
        check=check_one_line,
    )
    authority = reader.text(table, "registration_authority", required=False, check=check_one_line)
    number = reader.text(table, "registration_number", required=False, check=check_one_line)
    website = reader.text(table, "website", required=False, check=check_website)
    contact = reader.text(table, "contact_email", required=False, check=check_email)
    language = reader.text(table, "language", required=False, check=check_language)
    certificates = reader.get(table, "certificates", bool, required=False)
    reader.unknown_keys(table)
    if not (name and legal_form and jurisdiction):
        return None
    if language is None:
        found = countries.lookup(country) if country else None
        language = found.language if found else "en"
    return Coop(
        name,
        legal_form,
        jurisdiction,
        number,
        website,
        contact,
        True if certificates is None else certificates,
        country,
        language,
        authority,
    )


def _settings(reader: _Reader, table: _Table) -> CampaignSettings | None:
    if not table:
        return None
    currency = None
    raw_currency = reader.text(table, "currency", example='"GBP"')
    if raw_currency is not None:
        try:
            currency = check_currency(raw_currency)
        except MoneyError as exc:
            reader.problem("campaign.currency", str(exc), 'e.g. currency = "GBP"')
    goal = reader.money(table, "goal", currency)
    offer_max = reader.money(table, "offer_maximum", currency, required=False)
    opens = reader.moment(table, "opens")
    deadline = reader.moment(table, "deadline")
    mode = reader.choice(table, "mode", Mode, [m.value for m in Mode])
    tz_name = reader.text(table, "timezone", required=False, check=check_timezone)
    reader.unknown_keys(table)
    if opens and deadline and deadline <= opens:
        reader.problem(
            "campaign.deadline",
            "is not after campaign.opens",
            "set the deadline later than the opening",
        )
    if not (currency and goal and opens and deadline and mode):
        return None
    return CampaignSettings(currency, goal, opens, deadline, mode, tz_name or "UTC", offer_max)


def _shares(reader: _Reader, table: _Table, currency: str | None) -> ShareTerms | None:
    if not table:
        return None
    price = reader.money(table, "price", currency)
    low = reader.count(table, "min_shares", minimum=1)
    high = reader.count(table, "max_shares", minimum=1)
    policy = reader.choice(table, "scale_back", ScaleBack, [s.value for s in ScaleBack])
    reader.unknown_keys(table)
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
    reader: _Reader, table: _Table, settings: CampaignSettings | None
) -> tuple[Round, ...] | None:
    if not table:
        return None
    rounds: list[Round] = []
    for round_id in ROUND_IDS:
        table.get(round_id)  # the rounds there can be: any other is unknown
    reader.unknown_keys(table, what="round")
    for round_id, body in table.data.items():
        prefix = table.where(round_id)
        if round_id not in ROUND_IDS:
            continue
        if not isinstance(body, dict):
            reader.problem(prefix, "must be a table", f"write it as [{prefix}]")
            continue
        one = _Table(prefix, body)
        name = (
            reader.text(one, "name", required=False, check=check_one_line) or round_id.capitalize()
        )
        opens = reader.moment(one, "opens")
        closes = reader.moment(one, "closes")
        reader.unknown_keys(one)
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
    if "crowd" not in table.data:
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
        table = _Table(prefix, body)
        tier_id = reader.text(table, "id", example='"founder"')
        name = reader.text(table, "name", example='"Founding member"', check=check_one_line)
        shares = reader.count(table, "shares", minimum=1)
        description = reader.text(table, "description", required=False) or ""
        limit = reader.count(table, "limit", minimum=1, required=False)
        reader.unknown_keys(table)
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


def _membership(reader: _Reader, table: _Table, terms: ShareTerms | None) -> Membership | None:
    """[membership], checked against [shares]: who may join after the campaign, and how."""
    if not table:
        return None
    currency = terms.price.currency if terms else None
    is_open = reader.get(table, "open", bool, example="true")
    low = reader.count(table, "min_shares_to_join", minimum=1, required=False)
    admission = reader.choice(table, "admission", Admission, [a.value for a in Admission])
    fee = _fee(reader, table, currency)
    grace = reader.count(table, "grace_days", minimum=0, required=False)
    notice = reader.count(table, "withdrawal_notice_days", minimum=0, required=False)
    reader.unknown_keys(table)
    if terms and low is not None and not terms.min_shares <= low <= terms.max_shares:
        reader.problem(
            table.where("min_shares_to_join"),
            f"{low} is outside the holding limits ({terms.min_shares} to {terms.max_shares})",
            "choose a number within shares.min_shares and shares.max_shares",
        )
        return None
    if fee is None and grace is not None:
        reader.problem(
            table.where("grace_days"),
            "is given without a fee",
            'remove it, or set a fee, e.g. fee = "5.00"',
        )
    if is_open is None or admission is None or isinstance(fee, bool):
        return None
    return Membership(
        is_open,
        low if low is not None else (terms.min_shares if terms else 1),
        admission,
        fee,
        30 if grace is None else grace,
        0 if notice is None else notice,
    )


def _fee(reader: _Reader, table: _Table, currency: str | None) -> Fee | bool | None:
    """The fee, None for no fee, or False when it is wrong (the problems are reported)."""
    raw = table.get("fee")
    none = raw is None or (isinstance(raw, str) and raw.strip().lower() == "none")
    keys = ("fee_interval", "reduced_fee", "supporter_fee", "supporter_surplus")
    if none:
        for key in keys:
            if table.get(key) is not None:
                reader.problem(
                    table.where(key),
                    "is given without a fee",
                    'remove it, or set a fee, e.g. fee = "5.00"',
                )
        return None
    amount = reader.money(table, "fee", currency)
    interval = reader.choice(table, "fee_interval", Interval, [i.value for i in Interval])
    reduced = reader.money(table, "reduced_fee", currency, required=False)
    supporter = reader.money(table, "supporter_fee", currency, required=False)
    surplus = None
    if table.get("supporter_surplus") is not None:
        surplus = reader.choice(table, "supporter_surplus", Surplus, [s.value for s in Surplus])
        if surplus is None:
            return False
    if amount is None or interval is None:
        return False
    wrong = False
    if amount.amount <= 0:
        reader.problem(
            table.where("fee"),
            "is zero",
            'write fee = "none" for membership without a fee, or give an amount',
        )
        wrong = True
    if reduced is not None and not 0 < reduced.amount < amount.amount:
        reader.problem(
            table.where("reduced_fee"),
            f"{reduced.format()} is not between nothing and the fee ({amount.format()})",
            "make it less than fee, or remove it",
        )
        wrong = True
    if supporter is not None and supporter.amount <= amount.amount:
        reader.problem(
            table.where("supporter_fee"),
            f"{supporter.format()} is not above the fee ({amount.format()})",
            "make it more than fee, or remove it",
        )
        wrong = True
    if surplus is not None and supporter is None:
        reader.problem(
            table.where("supporter_surplus"),
            "is given without a supporter_fee",
            'add supporter_fee, e.g. supporter_fee = "10.00", or remove it',
        )
        wrong = True
    if wrong:
        return False
    return Fee(amount, interval, reduced, supporter, surplus or Surplus.FREE_PLACES)
