"""The co-op's own books summed up for everyone: money in and out by month and category.

The treasurer keeps the books in beancount ([books] path in campaign.toml); the
transparency page shows what they say, and nothing a person could be picked out
by. The definitions, decided once here:

- **Cash** is the accounts the chart names `bank` and `stripe` and every account
  below them, except the chart's `disputed` account (money a card network holds
  back is not the co-op's to spend). Not every Assets account: buying equipment
  or invoicing a customer moves no money, and moving money between the bank and
  Stripe (a payout) is neither in nor out.
- **Money in and out** are the changes of cash in the campaign's currency, one
  transaction at a time. A transaction is classified by its other postings (their
  weight in the currency, so a bill paid in dollars from a pound account counts in
  pounds): each posting's **category** is its account's first part below the
  root (`Expenses:Rent:Office` is "Rent", `Equity:Share-Capital` is "Share
  capital"), never a deeper part, where a name is likelier to sit. Postings in
  other currencies, and transactions that touch no cash, are left out.
- **Fewer than MIN_TRANSACTIONS**: in any month, a category that money came in
  from (or went out to) in fewer than three transactions is counted as "Other".
  One line for one transaction would show one payment: a member's shares, a
  person's pay. Every total shown is a sum of these folded lines, so no
  difference between two figures on the page can bring a folded one back.
- **The balance** is the cash accounts' balance in the currency after the books'
  last transaction (in any currency), whose date the page gives.

Nothing else is read: no payee, narration, tag, link or metadata. beancount is
imported only when books are read, so commands that never read them start fast.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fundraiser.config import Books, Campaign
from fundraiser.errors import Problem, ProblemsError
from fundraiser.money import exponent

if TYPE_CHECKING:
    from beancount.core.amount import Amount
    from beancount.core.data import Directives

#: A line on the page stands for at least this many transactions in its month.
MIN_TRANSACTIONS = 3
#: The category of money no posting in the currency names (always counted as "Other").
UNNAMED = ""
#: Problems listed from a broken file before "and N more".
MAX_PROBLEMS = 20


class BooksUnreadable(ProblemsError):
    """The treasurer's books cannot be summed up; each problem names the file and line."""


@dataclass(frozen=True)
class Move:
    """One transaction's effect on cash: the change, and where it came from or went."""

    day: date
    cash: int  # minor units: positive in, negative out
    categories: dict[str, int] = field(default_factory=dict)  # same sign rule; sums to cash

    def __post_init__(self) -> None:
        assert sum(self.categories.values()) == self.cash, self


@dataclass(frozen=True)
class Line:
    category: str | None  # None: "Other", the folded categories
    amount: int  # minor units, positive


@dataclass(frozen=True)
class Month:
    first_day: date
    money_in: int
    money_out: int  # positive
    balance: int  # at the end of the month
    came_in: tuple[Line, ...]
    went_out: tuple[Line, ...]


@dataclass(frozen=True)
class Spending:
    currency: str
    months: tuple[Month, ...]  # every month from the first movement to the last entry
    came_in: tuple[Line, ...]  # the whole period, summed from the months' lines
    went_out: tuple[Line, ...]
    balance: int
    last_entry: date | None  # None: the books hold no transaction yet

    @property
    def money_in(self) -> int:
        return sum(m.money_in for m in self.months)

    @property
    def money_out(self) -> int:
        return sum(m.money_out for m in self.months)


# -- the sums: plain values in, plain values out (no beancount) -----------------------------


def category_label(account: str) -> str | None:
    """'Equity:Share-Capital' -> 'Share capital'; 'IT-Services' keeps its capitals."""
    parts = account.split(":")
    if len(parts) < 2:
        return None
    words = parts[1].split("-")
    shown = [words[0]] + [w if w.isupper() and len(w) > 1 else w.lower() for w in words[1:]]
    return " ".join(w for w in shown if w) or None


def _lines(sums: dict[str | None, int]) -> tuple[Line, ...]:
    named = sorted(
        (Line(c, a) for c, a in sums.items() if c is not None and a),
        key=lambda line: (-line.amount, line.category or ""),
    )
    other = sums.get(None, 0)
    return (*named, Line(None, other)) if other else tuple(named)


def _fold(moves: Sequence[Move], sign: int) -> dict[str | None, int]:
    """One month's money in (sign 1) or out (-1) by category, small ones as None."""
    amounts: dict[str, int] = defaultdict(int)
    counts: dict[str, int] = defaultdict(int)
    for move in moves:
        for category, amount in move.categories.items():
            if amount * sign > 0:
                amounts[category] += amount * sign
                counts[category] += 1
    folded: dict[str | None, int] = defaultdict(int)
    for category, amount in amounts.items():
        shown = category != UNNAMED and counts[category] >= MIN_TRANSACTIONS
        folded[category if shown else None] += amount
    return folded


def _next_month(day: date) -> date:
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def summarise(moves: Iterable[Move], currency: str, last_entry: date | None) -> Spending:
    """The page's figures from the moves: months, folded lines, totals and the balance."""
    by_month: dict[date, list[Move]] = defaultdict(list)
    balance = 0
    for move in moves:
        balance += move.cash
        by_month[move.day.replace(day=1)].append(move)
    active = sorted(m for m, found in by_month.items() if any(x.categories for x in found))
    months: list[Month] = []
    came_in: dict[str | None, int] = defaultdict(int)
    went_out: dict[str | None, int] = defaultdict(int)
    running = 0  # a month before the first active one only moved money between cash accounts
    if active:
        end = max(active[-1], (last_entry or active[-1]).replace(day=1))
        month = active[0]
        while month <= end:
            found = by_month.get(month, [])
            ins, outs = _fold(found, 1), _fold(found, -1)
            running += sum(x.cash for x in found)
            for key, value in ins.items():
                came_in[key] += value
            for key, value in outs.items():
                went_out[key] += value
            months.append(
                Month(
                    month, sum(ins.values()), sum(outs.values()), running, _lines(ins), _lines(outs)
                )
            )
            month = _next_month(month)
    return Spending(currency, tuple(months), _lines(came_in), _lines(went_out), balance, last_entry)


# -- reading the books (beancount, imported only here) --------------------------------------


def _under(account: str, parent: str) -> bool:
    return account == parent or account.startswith(parent + ":")


def is_cash(account: str, chart: Books) -> bool:
    if _under(account, chart.disputed):
        return False
    return _under(account, chart.bank) or _under(account, chart.stripe)


def _minor(number: Decimal, places: int) -> int:
    return int((number * 10**places).to_integral_value(ROUND_HALF_EVEN))


def moves_from(entries: Directives, chart: Books, currency: str) -> tuple[list[Move], date | None]:
    """Each transaction touching cash in the currency, as a Move; and the last entry's day."""
    from beancount.core import convert, data

    places = exponent(currency)
    moves: list[Move] = []
    last: date | None = None
    for entry in entries:
        if not isinstance(entry, data.Transaction):
            continue
        last = entry.date if last is None else max(last, entry.date)
        cash = Decimal(0)
        touched = False
        others: dict[str, Decimal] = defaultdict(Decimal)
        for posting in entry.postings:
            units = posting.units
            if units is None or units.number is None:
                continue  # only in a file with errors, which is never summed
            if is_cash(posting.account, chart) and units.currency == currency:
                touched = True
                cash += units.number
                continue
            # What the posting is worth in the transaction's terms (cost or price applied).
            weight: Amount = convert.get_weight(posting)  # type: ignore[no-untyped-call]
            label = category_label(posting.account)
            if weight.currency == currency and weight.number is not None and label is not None:
                others[label] -= weight.number
        if not touched:
            continue
        moves.append(_move(entry.date, _minor(cash, places), others, places))
    return moves, last


def _move(day: date, cash: int, others: dict[str, Decimal], places: int) -> Move:
    """A Move whose categories sum to the cash change exactly: what rounding (or a posting
    whose weight is in another currency) leaves over goes to the biggest category."""
    categories = {c: _minor(v, places) for c, v in others.items()}
    categories = {c: v for c, v in categories.items() if v}
    left = cash - sum(categories.values())
    if left:
        if categories:
            biggest = max(categories, key=lambda c: (abs(categories[c]), c))
            categories[biggest] += left
        else:
            categories[UNNAMED] = left
        categories = {c: v for c, v in categories.items() if v}
    return Move(day, cash, categories)


def _shown(path: Path, campaign: Campaign) -> str:
    """The file as the co-op knows it: from campaign.toml's folder when it is inside."""
    try:
        return path.resolve().relative_to(campaign.directory).as_posix()
    except ValueError:
        return str(path)


_FIXES = {
    "LexerError": "fix the syntax on that line",
    "ParserError": "fix the syntax on that line",
    "BalanceError": "correct the transactions before it, or the amount that line asserts",
    "PadError": "correct the pad line or the balance after it",
}


def _fix(error: Any, shown: str) -> str:
    message = str(getattr(error, "message", ""))
    kind = type(error).__name__
    if "unknown account" in message or "inactive account" in message:
        return "open the account with an `open` line dated on or before its first use"
    if "does not balance" in message:
        return "make the postings add up to zero"
    return _FIXES.get(kind, f"fix that entry (`bean-check {shown}` shows the same)")


def _problems(errors: Sequence[Any], campaign: Campaign) -> list[Problem]:
    found = []
    for error in errors[:MAX_PROBLEMS]:
        source = getattr(error, "source", None) or {}
        filename = source.get("filename")
        where = _shown(Path(filename), campaign) if filename else "(books)"
        line = source.get("lineno")
        if line:
            where = f"{where}:{line}"
        message = (str(getattr(error, "message", error)).strip().splitlines() or ["error"])[0]
        found.append(Problem(where, message, _fix(error, where.split(":")[0])))
    if len(errors) > MAX_PROBLEMS:
        path = campaign.books.path
        shown = _shown(path, campaign) if path else "(books)"
        found.append(
            Problem(
                shown,
                f"{len(errors) - MAX_PROBLEMS} more problems",
                f"run `bean-check {shown}` for them all",
            )
        )
    return found


def _load(campaign: Campaign) -> tuple[Directives | None, list[Problem]]:
    path = campaign.books.path
    if path is None:
        return None, []
    key = f"{campaign.path.name}: books.path"
    shown = _shown(path, campaign)
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        return None, [
            Problem(
                key,
                f"{shown} {what}",
                "give the path of the treasurer's beancount file, from campaign.toml's "
                "folder, or remove the key until the books are kept",
            )
        ]
    from beancount import loader

    try:
        entries, errors, _ = loader.load_file(str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(shown, f"cannot be read: {exc}", "save it as UTF-8 text")]
    if errors:
        return None, _problems(errors, campaign)
    chart = campaign.books
    from beancount.core import data

    opened = {e.account for e in entries if isinstance(e, data.Open)}
    if not any(is_cash(account, chart) for account in opened):
        return None, [
            Problem(
                f"{campaign.path.name}: books.bank",
                f"{shown} opens no account under {chart.bank} or {chart.stripe}, where the "
                "page counts the co-op's money",
                "set [books] bank and stripe to the accounts the books keep the money in, "
                'e.g. bank = "Assets:Bank:Current"',
            )
        ]
    return entries, []


def check(campaign: Campaign) -> list[Problem]:
    """Every problem with the configured books (none when there are no books)."""
    return _load(campaign)[1]


def read(campaign: Campaign) -> Spending | None:
    """The published summary of the books, or None when campaign.toml names none.

    Raises BooksUnreadable naming each problem's file, line and fix.
    """
    entries, problems = _load(campaign)
    if problems:
        path = campaign.books.path
        shown = _shown(path, campaign) if path else "the books"
        many = "problem" if len(problems) == 1 else "problems"
        raise BooksUnreadable(f"the books ({shown}) have {len(problems)} {many}:", problems)
    if entries is None:
        return None
    moves, last = moves_from(entries, campaign.books, campaign.currency)
    return summarise(moves, campaign.currency, last)
