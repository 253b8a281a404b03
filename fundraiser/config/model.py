"""What campaign.toml says, as frozen dataclasses: the co-op, the campaign, the
share terms, rounds, tiers, bank, books and membership.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import ClassVar, TypeVar

from fundraiser.money import Money

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
