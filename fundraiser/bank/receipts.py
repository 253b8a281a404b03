"""A bank statement's import, planned: transfers matched to pledges (written to the
ledger in one transaction by fundraiser.bank.posting).

Each line is placed once, by the bank's id within its account (the table's
unique key), so importing the same statement again, or one that overlaps,
pays nothing twice. A credit naming `PLEDGE-<id>`:
- pays a pledge waiting for bank money: in full (`paid`; anything over what it
  owed becomes a remainder to refund, reason `overpaid`), or in part (`part`:
  the pledge stays pending, its paid total shows what came, and it waits for
  the balance);
- for a pledge already paid, cancelled or otherwise over, becomes a remainder
  to refund whole (`unwanted`);
- anything else waits as `unmatched`, with suggestions, until the organizer
  accepts one (`--accept BANK_ID=PLEDGE`), on this import or a later one.
A debit naming `REFUND-P<id>` for the amount of that pledge's refunds sent in
a payment file confirms them paid out. Other debits are the co-op's own
spending: not the ledger's business, so not kept.

The journal gets the import's rows (the bank lines kept, the pledges moved,
the remainders: ids, amounts and outcomes, never a payer's name, account or
reference text), and one entry that sums it up.
"""

from __future__ import annotations

import enum
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import remainders
from fundraiser.bank.matching import Awaiting, Suggester, Suggestion, pledge_ids, refund_ids
from fundraiser.bank.statement import Line, Statement, check_currency
from fundraiser.errors import UserInputError
from fundraiser.ledger import bulk, schema
from fundraiser.money import Money
from fundraiser.pledges import BY_HAND, TRANSITIONS, Source, Status


class Outcome(enum.StrEnum):
    PAID = "paid"  # the pledge is paid in full now (any extra is a remainder)
    PART = "part"  # less than the pledge owes: it waits for the balance
    UNWANTED = "unwanted"  # for a pledge paid or over: all of it is refunded
    UNMATCHED = "unmatched"  # no pledge yet: kept until the organizer accepts one
    REFUND = "refund"  # money out: refunds we sent by payment file, seen leaving


#: What a transfer may pay: a pledge recorded by hand, waiting for its money.
AWAITING = Status.PENDING
#: Pledges a late transfer cannot pay: the money goes back.
_OVER = frozenset(
    {
        Status.PAID,
        Status.DISPUTED,
        Status.REFUNDED,
        Status.CANCELLED,
        Status.RELEASED,
        Status.FAILED,
    }
)
assert Status.PAID in TRANSITIONS[AWAITING]

REMITTANCE_KEPT = 140  # SEPA's length for unstructured remittance


@lru_cache(maxsize=4096)
def shown(money: Money) -> str:
    """Money as a person reads it; Babel takes ~0.2 ms a call, and a statement's
    notes repeat a few tier amounts thousands of times."""
    return money.format()


@dataclass(slots=True)
class Placed:
    """One statement line and what the import does with it (50,000 of them: slots,
    and no lists made for the suggestions and refunds most lines never have)."""

    line: Line
    outcome: Outcome | None  # None: nothing is recorded (see `note`)
    pledge_id: int | None = None
    applied: int = 0  # to the pledge's paid total
    refund: int = 0  # to a remainder (overpaid or unwanted)
    note: str = ""
    suggestions: Sequence[Suggestion] = ()
    stored_id: int | None = None  # a stored unmatched line being accepted now
    remainder_ids: Sequence[int] = ()  # refunds confirmed
    row_id: int | None = None  # its bank_transactions id, once written

    def as_json(self) -> dict[str, Any]:
        return {
            "where": self.line.where,
            "bank_id": self.line.bank_id,
            "booked_on": self.line.booked_on,
            "amount": self.line.amount,
            "currency": self.line.currency,
            "payer": self.line.payer,
            "text": self.line.text,
            "outcome": self.outcome.value if self.outcome else None,
            "pledge_id": self.pledge_id,
            "applied": self.applied,
            "refund": self.refund,
            "note": self.note,
            "suggestions": [s.as_json() for s in self.suggestions],
            "transaction_id": self.row_id,
        }


@dataclass
class ImportReport:
    statement: Statement
    dry_run: bool
    placed: list[Placed] = field(default_factory=list)
    already: int = 0  # lines imported before
    duplicates: int = 0  # the same bank id twice in this file
    not_ours: int = 0  # money out that is not a refund of ours
    queued_mail: int = 0

    def of(self, outcome: Outcome | None) -> list[Placed]:
        return [p for p in self.placed if p.outcome is outcome]

    @property
    def attention(self) -> list[Placed]:
        """Lines the organizer must look at: not placed, and not simply known or a duplicate."""
        return [p for p in self.placed if p.outcome in (None, Outcome.UNMATCHED)]

    @property
    def notable(self) -> list[Placed]:
        """Every line but the transfers that paid their pledge exactly: what the report lists."""
        paid = Outcome.PAID
        return [p for p in self.placed if p.outcome is not paid or p.refund]

    def as_json(self, every_line: bool = False) -> dict[str, Any]:
        """The report for scripts. `placed` lists the notable lines, or with
        `every_line` each line placed (a big statement's plain payments are most
        of it: 15 MB of JSON for 50,000 lines); the counts and sums are always whole."""
        s = self.statement
        counts = dict.fromkeys((o.value for o in Outcome), 0)
        received = applied = to_refund = 0
        for p in self.placed:
            if p.outcome is not None:
                counts[p.outcome.value] += 1
            if p.line.amount > 0:
                received += p.line.amount
            applied += p.applied
            to_refund += p.refund
        listed = self.placed if every_line else self.notable
        return {
            "file": s.path,
            "format": s.format,
            "currency": s.currency,
            "dry_run": self.dry_run,
            "lines": len(s.lines),
            "already_imported": self.already,
            "duplicates": self.duplicates,
            "not_ours": self.not_ours,
            "counts": counts,
            "received": received,
            "applied": applied,
            "to_refund": to_refund,
            "mail_queued": self.queued_mail,
            "listed": "every line" if every_line else "notable",
            "placed": [p.as_json() for p in listed],
            "notes": list(s.notes),
        }


@dataclass(slots=True)
class PledgeState:
    """A pledge's state as this import moves it (read once, changed in memory)."""

    id: int
    status: Status
    source: str
    amount: int
    paid: int
    currency: str
    card: bool
    first_status: Status = Status.PENDING
    first_paid: int = 0

    @property
    def outstanding(self) -> int:
        return self.amount - self.paid


_P = schema.pledges.c
_PLEDGES = sa.select(
    _P.id,
    _P.status,
    _P.source,
    _P.amount,
    _P.paid_amount,
    _P.currency,
    _P.name,
    sa.or_(_P.stripe_intent.is_not(None), _P.stripe_charge.is_not(None)),
)
#: Read only for the pledges that need them: see `Pledges.personal`.
_PERSONAL = sa.select(_P.id, _P.person_key, _P.name, _P.email)
#: Up to this many pledges, their personal columns are read by id; more, with the table.
_BY_ID = 2_000
#: Ids per IN list: under the 999 bound values an older SQLite allows a statement.
_IN_LIST = 500

_STATUS = {s.value: s for s in Status}  # a dict lookup: Status(text) costs ten times more
_BY_HAND = frozenset(s.value for s in BY_HAND)
_ONLINE = Source.ONLINE.value


class Pledges:
    """Every pledge, read in one query and looked up by id in one dict.

    A statement of 50,000 transfers names half the pledges of a big campaign,
    and its unmatched lines are suggested among all those awaiting money: one
    read serves both (IN lists of thousands of ids cost more to build than the
    whole table to read). A pledge becomes a `PledgeState`, which the import
    changes in memory, when a line names it; `touched` holds those. The
    backers' keys and emails are not read here: a write reads them for the
    pledges it needs them for (`personal`).
    """

    def __init__(self, rows: Mapping[int, tuple[Any, ...]]) -> None:
        self.rows = rows
        self.touched: dict[int, PledgeState] = {}

    @classmethod
    def read(cls, conn: Connection) -> Pledges:
        return cls({row[0]: row for row in bulk.fetch_rows(conn, _PLEDGES)})

    def get(self, pid: int) -> PledgeState | None:
        found = self.touched.get(pid)
        if found is not None:
            return found
        row = self.rows.get(pid)
        if row is None:
            return None
        _, status, source, amount, paid, cur, _, card = row
        state = _STATUS[status]
        found = self.touched[pid] = PledgeState(
            pid,
            state,
            source,
            int(amount),
            int(paid),
            cur,
            source == _ONLINE or bool(card),
            state,
            int(paid),
        )
        return found

    @staticmethod
    def personal(conn: Connection, ids: Collection[int]) -> dict[int, tuple[str, str, str]]:
        """These pledges' person key, name and email, by id."""
        if not ids:
            return {}
        if len(ids) > _BY_ID:
            wanted = set(ids)
            rows = bulk.fetch_rows(conn, _PERSONAL)
            return {pid: (key, name, email) for pid, key, name, email in rows if pid in wanted}
        found: dict[int, tuple[str, str, str]] = {}
        ordered = sorted(ids)
        for start in range(0, len(ordered), _IN_LIST):
            chunk = ordered[start : start + _IN_LIST]
            for pid, key, name, email in conn.execute(_PERSONAL.where(_P.id.in_(chunk))):
                found[pid] = (key, name, email)
        return found

    def awaiting(self, currency: str) -> list[Awaiting]:
        """Pledges recorded by hand waiting for bank money, as this import has left them."""
        waiting, touched = AWAITING.value, self.touched
        items = []
        for pid, status, source, amount, paid, cur, name, _ in self.rows.values():
            if status != waiting or source not in _BY_HAND or cur != currency:
                continue
            mine = touched.get(pid)
            if mine is not None:
                if mine.status is not AWAITING:
                    continue
                paid = mine.paid
            if amount > paid:
                items.append((pid, name, int(amount) - int(paid)))
        return items


def _known(conn: Connection, account: str) -> dict[str, tuple[int, str]]:
    table = schema.bank_transactions
    rows = conn.execute(
        sa.select(table.c.bank_id, table.c.id, table.c.outcome).where(table.c.account == account)
    )
    return {bank_id: (row_id, outcome) for bank_id, row_id, outcome in rows}


def _sent_refunds(conn: Connection, pledge_ids: set[int]) -> dict[int, list[tuple[int, int]]]:
    """Remainders in a payment file not yet seen leaving: pledge -> [(remainder id, amount)]."""
    found: dict[int, list[tuple[int, int]]] = {}
    if not pledge_ids:
        return found
    query = sa.select(
        schema.remainders.c.pledge_id, schema.remainders.c.id, schema.remainders.c.amount
    ).where(
        schema.remainders.c.status == remainders.RemainderStatus.SENT.value,
        schema.remainders.c.pledge_id.in_(sorted(pledge_ids)),
    )
    for pid, rid, amount in conn.execute(query):
        found.setdefault(pid, []).append((rid, int(amount)))
    return found


def _place_credit(item: Placed, pledge: PledgeState | None, wanted: int) -> None:
    """Decide what a credit does to the pledge it names (changes `pledge` in memory)."""
    amount = item.line.amount
    item.pledge_id = wanted
    if pledge is None:
        item.outcome, item.pledge_id = Outcome.UNMATCHED, None
        item.note = f"names pledge {wanted}, which does not exist"
        return
    if pledge.currency != item.line.currency:
        item.outcome, item.pledge_id = Outcome.UNMATCHED, None
        item.note = f"pledge {wanted} is in {pledge.currency}"
        return
    if pledge.status is AWAITING and not pledge.card:
        owed = pledge.outstanding
        if amount < owed:
            item.outcome, item.applied = Outcome.PART, amount
            pledge.paid += amount
            item.note = f"{shown(Money(owed - amount, pledge.currency))} still to come"
        else:
            item.outcome, item.applied, item.refund = Outcome.PAID, owed, amount - owed
            pledge.paid, pledge.status = pledge.amount, Status.PAID
            if item.refund:
                item.note = (
                    f"{shown(Money(item.refund, pledge.currency))} more than owed: to refund"
                )
        return
    if pledge.status in _OVER:
        item.outcome, item.refund = Outcome.UNWANTED, amount
        item.note = f"pledge {wanted} is {pledge.status.value}: all of it to refund"
        return
    item.outcome, item.pledge_id = Outcome.UNMATCHED, None
    item.note = (
        f"pledge {wanted} is a card pledge ({pledge.status.value}): settle it with the "
        "backer, then accept this transfer for a pledge recorded by hand"
    )


def plan(
    conn: Connection,
    statement: Statement,
    *,
    currency: str,
    accept: Mapping[str, int] | None = None,
    accept_suggested: bool = False,
    pledges: Pledges | None = None,
) -> tuple[ImportReport, dict[int, PledgeState]]:
    """What importing the statement would do, read in `conn`; changes nothing.

    `pledges` is the ledger's pledges read in this transaction already (read
    here when not given). The pledges the plan moves come back, by id.
    """
    check_currency(statement, currency)
    accept = dict(accept or {})
    strangers = sorted(set(accept) - {line.bank_id for line in statement.lines}) if accept else []
    if strangers:
        raise UserInputError(
            f"--accept names {', '.join(strangers)}, not a transaction id in {statement.path}: "
            "copy the ids from the dry run's list of unmatched transfers"
        )
    if pledges is None:
        pledges = Pledges.read(conn)
    report = ImportReport(statement, dry_run=True)
    known = _known(conn, statement.account)
    seen: set[str] = set()
    todo: list[tuple[Placed, list[int]]] = []
    refund_pledges: set[int] = set()
    unmatched_outcome = Outcome.UNMATCHED.value
    for line in statement.lines:
        if line.bank_id in seen:
            report.duplicates += 1
            continue
        seen.add(line.bank_id)
        stored = known.get(line.bank_id)
        if stored is not None and not (
            stored[1] == unmatched_outcome and (line.bank_id in accept or accept_suggested)
        ):
            report.already += 1
            continue
        item = Placed(line, None, stored_id=stored[0] if stored else None)
        if line.amount > 0:
            chosen = accept.get(line.bank_id)
            named = [chosen] if chosen is not None else pledge_ids(line.text)
        else:
            named = refund_ids(line.text)
            refund_pledges.update(named)
        todo.append((item, named))
    sent = _sent_refunds(conn, refund_pledges)
    unmatched: list[Placed] = []
    placed = report.placed
    for item, named in todo:
        if item.line.amount <= 0:
            _place_debit(item, named, sent)
            if item.outcome is None and not item.note:
                report.not_ours += 1
                continue
            placed.append(item)
            continue
        if len(named) == 1:
            _place_credit(item, pledges.get(named[0]), named[0])
        else:
            item.outcome = Outcome.UNMATCHED
            item.note = (
                "no PLEDGE-<id> reference"
                if not named
                else f"names {len(named)} pledges ({', '.join(map(str, named))}): accept one"
            )
        if item.outcome is Outcome.UNMATCHED:
            unmatched.append(item)
        placed.append(item)
    if unmatched:
        _suggest(currency, unmatched, pledges, accept_suggested)
    # A stored unmatched line that is still unmatched changes nothing.
    report.placed = [
        p for p in placed if not (p.stored_id is not None and p.outcome is Outcome.UNMATCHED)
    ]
    return report, pledges.touched


def _place_debit(item: Placed, named: list[int], sent: Mapping[int, list[tuple[int, int]]]) -> None:
    if len(named) != 1:
        return  # the co-op's own spending
    pid = named[0]
    lines = sent.get(pid, [])
    total = sum(amount for _, amount in lines)
    if not lines:
        item.note = f"names the refund of pledge {pid}, and none was sent by payment file"
        return
    if total != -item.line.amount:
        sent_total = shown(Money(total, item.line.currency))
        item.note = (
            f"names the refund of pledge {pid}, sent for {sent_total}; "
            "the amounts differ: check with the bank, then `fundraiser refunds mark-paid`"
        )
        return
    item.outcome, item.pledge_id = Outcome.REFUND, pid
    item.remainder_ids = [rid for rid, _ in lines]


def _suggest(
    currency: str,
    unmatched: list[Placed],
    pledges: Pledges,
    accept_suggested: bool,
) -> None:
    suggester = Suggester(pledges.awaiting(currency), (p.line.payer for p in unmatched))
    for item in unmatched:
        found, why = suggester.suggest(item.line.amount, item.line.payer)
        item.suggestions = found
        if not found:
            item.note = f"{item.note}; {why}" if item.note else why
        if accept_suggested and len(found) == 1:
            pid = found[0].pledge_id
            note = item.note
            _place_credit(item, pledges.get(pid), pid)
            if item.outcome is Outcome.UNMATCHED:
                item.note = note
            else:
                item.note = f"accepted suggestion ({found[0].why})" + (
                    f"; {item.note}" if item.note else ""
                )
