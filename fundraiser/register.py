"""The share register: members, append-only entries, and issuing a plan.

Holdings are never stored: they are the sum of a member's entries (issue
adds, withdraw and cancel take away), so the register's history is its truth.
Every entry is written here, by its EntryKind, with the entry ids and
certificate numbers it takes; the rules that decide when shares are withdrawn
or cancelled live in fundraiser.membership.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import closing, csvsafe, outbox, privatefiles
from fundraiser.allocation import PaidPledge, Plan, Remainder, allocate
from fundraiser.config import Campaign, ShareTerms
from fundraiser.errors import LedgerError, NotFound, UserInputError
from fundraiser.ledger import Ledger, Tx, bulk, schema
from fundraiser.ledger.engine import stamp
from fundraiser.money import Money
from fundraiser.pledges import Status
from fundraiser.remainders import RemainderStatus


class EntryKind(enum.StrEnum):
    ISSUE = "issue"
    WITHDRAW = "withdraw"
    CANCEL = "cancel"


def _signed_shares() -> sa.ColumnElement[Any]:
    return sa.case(
        (schema.register_entries.c.kind == EntryKind.ISSUE.value, schema.register_entries.c.shares),
        else_=-schema.register_entries.c.shares,
    )


def _signed_amount() -> sa.ColumnElement[Any]:
    return sa.case(
        (schema.register_entries.c.kind == EntryKind.ISSUE.value, schema.register_entries.c.amount),
        else_=-schema.register_entries.c.amount,
    )


def existing_holdings(conn: Connection) -> dict[str, int]:
    """Shares held now, by person key (members only)."""
    rows = conn.execute(
        sa.select(schema.members.c.person_key, sa.func.sum(_signed_shares()))
        .select_from(schema.members.join(schema.register_entries))
        .group_by(schema.members.c.person_key)
    )
    return {key: int(shares) for key, shares in rows}


def _totals() -> sa.Select[Any]:
    """Shares and amount paid per member number, summed from their entries."""
    return sa.select(
        schema.register_entries.c.member_number.label("number"),
        sa.func.sum(_signed_shares()).label("shares"),
        sa.func.sum(_signed_amount()).label("amount"),
    ).group_by(schema.register_entries.c.member_number)


def holding(conn: Connection, number: int) -> tuple[int, int]:
    """(shares, amount paid in minor units) held by one member now, from their entries."""
    row = conn.execute(_totals().where(schema.register_entries.c.member_number == number)).first()
    return (0, 0) if row is None else (int(row.shares), int(row.amount))


def held_by(conn: Connection, key: str) -> int | None:
    """Shares a current member holds, by their person key; None when they are not one."""
    row = conn.execute(
        sa.select(schema.members.c.number).where(
            schema.members.c.person_key == key, schema.members.c.ceased_on.is_(None)
        )
    ).first()
    return None if row is None else holding(conn, int(row.number))[0]


def get_member(conn: Connection, number: int) -> Any:
    """The members row for this number; NotFound names the command that lists them."""
    row = conn.execute(sa.select(schema.members).where(schema.members.c.number == number)).first()
    if row is None:
        raise NotFound(f"member {number} does not exist: see `fundraiser members list`")
    return row


def founding_cutoff(campaign: Campaign) -> str | None:
    """Pledges made from this moment on join after the campaign (fundraiser.membership
    .admission), not in the founding issue; None when the co-op takes no one after it."""
    if campaign.membership is None:
        return None
    return stamp(campaign.campaign.deadline)


def paid_unallotted(
    conn: Connection, *, before: str | None = None, pledge_ids: list[int] | None = None
) -> list[PaidPledge]:
    """Paid pledges not yet turned into shares, with the money still held.

    `before`: only pledges made before that moment (the founding issue);
    `pledge_ids`: only these (an admission).
    Read through the driver: 100,000 rows cost more in SQLAlchemy's result
    processing than in the database. The plan reads in a snapshot and the
    issue in its write, so this takes the connection either one gives.
    """
    query = (
        sa.select(
            schema.pledges.c.id,
            schema.pledges.c.person_key,
            schema.pledges.c.name,
            schema.pledges.c.email,
            schema.pledges.c.address,
            schema.pledges.c.paid_amount,
            schema.pledges.c.refunded_amount,
            schema.pledges.c.paid_at,
            schema.pledges.c.currency,
        )
        .where(schema.pledges.c.status == Status.PAID.value, schema.pledges.c.allotted_at.is_(None))
        .order_by(schema.pledges.c.id)
    )
    if before is not None:
        query = query.where(schema.pledges.c.created_at < before)
    if pledge_ids is not None:
        query = query.where(schema.pledges.c.id.in_(pledge_ids))
    rows = bulk.fetch_rows(conn, query)
    # Each pledge keeps its own currency: allocate() refuses one that differs.
    # One Money per distinct amount: most pledges are a few tier prices.
    memo: dict[tuple[int, str], Money] = {}
    paid: list[PaidPledge] = []
    for pid, key, name, email, address, paid_amount, refunded, at, code in rows:
        held = paid_amount - refunded
        if held > 0:
            money = memo.get((held, code))
            if money is None:
                money = memo[held, code] = Money(held, code)
            paid.append(PaidPledge(pid, key, name, email, address, money, at or ""))
    return paid


def make_plan(conn: Connection, campaign: Campaign) -> Plan:
    """The plan for paid pledges not yet allotted.

    Read it in `ledger.read(bulk_work=True)`: a big campaign's plan is
    hundreds of thousands of small objects and no reference cycles.
    """
    return allocate(
        paid_unallotted(conn, before=founding_cutoff(campaign)),
        campaign.shares,
        offer_max_shares=campaign.offer_max_shares,
        existing=existing_holdings(conn),
    )


@dataclass(frozen=True)
class IssueResult:
    members_admitted: int
    entries: int
    shares: int
    remainders: int
    refund_total: Money
    first_member: int | None
    last_member: int | None


def issue(ledger: Ledger, campaign: Campaign, *, today: str, now: str | None = None) -> IssueResult:
    """Apply the allotment plan in one transaction. With nothing new, changes nothing."""
    with ledger.write(now, bulk_work=True) as tx:
        # The plan's million objects die as _issue returns, while the
        # collector is still paused: alive when it resumes, its first pass
        # would walk them all for nothing.
        return _issue(tx, campaign, today)


def issue_pledges(
    tx: Tx, campaign: Campaign, pledge_ids: list[int], *, terms: ShareTerms, today: str
) -> IssueResult:
    """Issue shares for these paid pledges only, in the caller's write: an admission
    or a member's top-up after the campaign, numbered on from the register as it is.

    The founding offer's maximum does not apply: that offer has closed.
    """
    return _issue(tx, campaign, today, pledge_ids=pledge_ids, terms=terms)


def _issue(
    tx: Tx,
    campaign: Campaign,
    today: str,
    *,
    pledge_ids: list[int] | None = None,
    terms: ShareTerms | None = None,
) -> IssueResult:
    """The pledges are stamped alongside (tx.alongside) while Python allocates.

    Between the step's start and its result this thread does not touch the
    database (the write waits for the step, also when something fails).
    """
    if pledge_ids is None:
        # An all-or-nothing offer issues nothing before it closes with its goal met:
        # checked in the issuing write itself, so no close can slip in between.
        # (Admissions after the campaign, by pledge id, come after that close.)
        refused = closing.may_issue(tx.conn, campaign, _moment(tx.now))
        if refused is not None:
            raise UserInputError(f"shares cannot be issued: {refused}")
        paid = paid_unallotted(tx.conn, before=founding_cutoff(campaign))
        offer_max = campaign.offer_max_shares
    else:
        paid = paid_unallotted(tx.conn, pledge_ids=pledge_ids)
        offer_max = None
    if not paid:
        return IssueResult(0, 0, 0, 0, Money(0, campaign.currency), None, None)
    existing, start = existing_holdings(tx.conn), _Start.read(tx)
    marking = tx.alongside(_mark_allotted, tx, [p.pledge_id for p in paid])
    plan = allocate(  # pure Python: no database here while the stamp runs
        paid, terms or campaign.shares, offer_max_shares=offer_max, existing=existing
    )
    marking.result()
    rows = _Rows.build(plan, start, {p.pledge_id: p.amount.amount for p in paid})
    if rows.planned != len(paid):  # rolls the whole issue back
        raise LedgerError(f"issue planned {rows.planned} of {len(paid)} paid pledges")
    _write(tx, rows, plan.currency, today)
    welcomed = _queue_welcome(tx, rows.new_members, today)
    # The whole issue is one change, so one journal entry records all of it:
    # its rows are the entry's changes, this the summary a person reads.
    tx.record("shares.issue", "register", rows.journal(plan, start.member, welcomed))
    return rows.result(plan, start.member)


def _moment(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _mark_allotted(tx: Tx, pledge_ids: list[int]) -> None:
    """Stamp the paid pledges the issue read (in this same write: no other writer runs)."""
    done = tx.update(schema.pledges, {"id": pledge_ids}, allotted_at=tx.now)
    if done != len(pledge_ids):  # rolls the whole issue back
        raise LedgerError(f"issue read {len(pledge_ids)} paid pledges but marked {done}")


def _next(tx: Tx, column: sa.Column[Any]) -> int:
    return int(tx.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar() or 0) + 1


@dataclass(frozen=True)
class _Start:
    """The register as the issue finds it: numbers already taken, and the next free ones."""

    number_of: dict[str, int]
    member: int
    entry: int
    certificate: int

    @classmethod
    def read(cls, tx: Tx) -> _Start:
        rows = tx.execute(sa.select(schema.members.c.person_key, schema.members.c.number))
        return cls(
            {row.person_key: row.number for row in rows},
            _next(tx, schema.members.c.number),
            _next(tx, schema.register_entries.c.id),
            _next(tx, schema.register_entries.c.certificate_number),
        )


# Row layouts for tx.insert_rows: tuples in these column orders; the columns
# every row of an issue shares are passed once, as constants.
MEMBER_COLUMNS = ("number", "person_key", "name", "email", "address")
ENTRY_COLUMNS = ("id", "member_number", "shares", "amount", "certificate_number")
LINK_COLUMNS = ("entry_id", "pledge_id", "amount")
REMAINDER_COLUMNS = ("pledge_id", "person_key", "amount", "reason")


@dataclass
class _Rows:
    """An issue's rows, built from the plan in Python, before any is written."""

    new_members: list[tuple[Any, ...]]
    entries: list[tuple[Any, ...]]
    links: list[tuple[int, int, int]]
    refunds: list[tuple[Any, ...]]
    planned: int

    @classmethod
    def build(cls, plan: Plan, start: _Start, held: dict[int, int]) -> _Rows:
        number_of = dict(start.number_of)
        next_member, next_entry, next_certificate = start.member, start.entry, start.certificate
        price = plan.price.amount
        new_members: list[tuple[Any, ...]] = []
        entries: list[tuple[Any, ...]] = []
        links: list[tuple[int, int, int]] = []
        refunds: list[tuple[Any, ...]] = []
        planned = 0
        for allotment in plan.allotments:
            key, pledge_ids, shares = allotment.person_key, allotment.pledge_ids, allotment.shares
            planned += len(pledge_ids)
            for rem in allotment.remainders:
                refunds.append((rem.pledge_id, key, rem.amount.amount, rem.reason))
            if not shares:
                continue
            number = number_of.get(key)
            if number is None:
                number = number_of[key] = next_member
                next_member += 1
                new_members.append(
                    (number, key, allotment.name, allotment.email, allotment.address)
                )
            amount = price * shares
            entries.append((next_entry, number, shares, amount, next_certificate))
            if len(pledge_ids) == 1:  # kept money is the price of the shares
                links.append((next_entry, pledge_ids[0], amount))
            else:
                _link_pledges(links, next_entry, allotment.remainders, pledge_ids, held)
            next_entry += 1
            next_certificate += 1
        return cls(new_members, entries, links, refunds, planned)

    def journal(self, plan: Plan, first_member: int, welcomed: int) -> dict[str, Any]:
        """The issue's summary for its journal entry (its rows are the entry's changes)."""
        admitted = len(self.new_members)
        return {
            "members_admitted": admitted,
            "members": [first_member, first_member + admitted - 1] if admitted else None,
            "entries": len(self.entries),
            "shares": plan.total_shares,
            "price": plan.price.amount,
            "currency": plan.currency,
            "remainders": len(self.refunds),
            "welcome_mail": welcomed,
        }

    def result(self, plan: Plan, first_member: int) -> IssueResult:
        admitted = len(self.new_members)
        return IssueResult(
            admitted,
            len(self.entries),
            plan.total_shares,
            len(self.refunds),
            Money(sum(r[2] for r in self.refunds), plan.currency),
            first_member if admitted else None,
            first_member + admitted - 1 if admitted else None,
        )


def _write(tx: Tx, rows: _Rows, currency: str, today: str) -> None:
    """Insert an issue's rows: members, register entries, their pledges, remainders."""
    stamped = {"created_at": tx.now}
    tx.insert(schema.members, MEMBER_COLUMNS, rows.new_members, {"admitted_on": today, **stamped})
    entry_constants = {
        "kind": EntryKind.ISSUE.value,
        "currency": currency,
        "entry_date": today,
        **stamped,
    }
    tx.insert(schema.register_entries, ENTRY_COLUMNS, rows.entries, entry_constants)
    tx.insert(schema.allotments, LINK_COLUMNS, rows.links)
    due = {"currency": currency, "status": RemainderStatus.DUE.value, **stamped}
    tx.insert(schema.remainders, REMAINDER_COLUMNS, rows.refunds, due)


def _queue_welcome(tx: Tx, new_members: list[tuple[Any, ...]], today: str) -> int:
    """Queue a welcome mail for each new member with an email; how many were queued.

    The rows go into the issue's own journal entry (outbox.queue_many with
    record=False): one change, one entry.
    """
    # The data as outbox.encode_data writes it (sorted keys), without an encoder
    # run per member: {"admitted_on": ..., "member_number": N}.
    head = outbox.encode_data({"admitted_on": today, "member_number": 0})[:-2]
    messages = [
        outbox.message(
            outbox.Kind.WELCOME,
            f"welcome:member:{number}",
            to_email=email,
            to_name=name,
            data=f"{head}{number}}}",
            now=tx.now,
            member_number=number,
        )
        for number, _key, name, email, _address in new_members  # rows as MEMBER_COLUMNS
        if email is not None
    ]
    return outbox.queue_many(tx, messages, record=False)


def _link_pledges(
    links: list[tuple[int, int, int]],
    entry_id: int,
    remainders_: tuple[Remainder, ...],
    pledge_ids: tuple[int, ...],
    held: dict[int, int],
) -> None:
    """Which of several pledges paid for an entry, and how much of each was kept."""
    refunded: dict[int, int] = {}
    for rem in remainders_:
        refunded[rem.pledge_id] = refunded.get(rem.pledge_id, 0) + rem.amount.amount
    for pid in pledge_ids:
        kept = held[pid] - refunded.get(pid, 0)
        if kept > 0:
            links.append((entry_id, pid, kept))


@dataclass(frozen=True)
class Holding:
    number: int
    name: str
    email: str | None
    address: str
    admitted_on: str
    ceased_on: str | None
    shares: int
    paid: Money

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "email": self.email,
            "address": self.address,
            "admitted_on": self.admitted_on,
            "ceased_on": self.ceased_on,
            "shares": self.shares,
            "amount_paid": self.paid.amount,
            "currency": self.paid.currency,
        }


def holdings(
    conn: Connection, currency: str, numbers: list[int] | None = None
) -> Iterator[Holding]:
    """Members (all, or these numbers) with shares and amount paid, from the entries."""
    totals = _totals()
    query = sa.select(schema.members).order_by(schema.members.c.number)
    if numbers is not None:
        totals = totals.where(schema.register_entries.c.member_number.in_(numbers))
        query = query.where(schema.members.c.number.in_(numbers))
    subquery = totals.subquery()
    query = query.add_columns(
        sa.func.coalesce(subquery.c.shares, 0).label("shares"),
        sa.func.coalesce(subquery.c.amount, 0).label("amount"),
    ).select_from(schema.members.outerjoin(subquery, subquery.c.number == schema.members.c.number))
    for row in conn.execution_options(yield_per=5000).execute(query):
        yield Holding(
            row.number,
            row.name,
            row.email,
            row.address,
            row.admitted_on,
            row.ceased_on,
            int(row.shares),
            Money(int(row.amount), currency),
        )


# -- taking shares back: withdraw and cancel entries ---------------------------


@dataclass(frozen=True)
class Reduction:
    """A withdraw or cancel entry as written, and where it leaves the member."""

    entry_id: int
    shares: int
    amount: Money
    # The certificate for the shares left (the member's others are taken back).
    balance_certificate: int | None
    holding_after: int
    ceased: bool  # the holding reached zero: the member ceased on the entry's date


def enter_withdrawal(
    tx: Tx, number: int, shares: int, amount: Money, *, today: str, note: str | None
) -> Reduction:
    """A withdrawal entry: the member gives back shares (and is repaid `amount`)."""
    return _take_back(tx, EntryKind.WITHDRAW, number, shares, amount, today, None, note)


def enter_cancellation(
    tx: Tx, number: int, shares: int, amount: Money, *, today: str, pledge_id: int, note: str
) -> Reduction:
    """A cancel entry: shares a pledge paid for stop standing (its money went back)."""
    return _take_back(tx, EntryKind.CANCEL, number, shares, amount, today, pledge_id, note)


def _take_back(
    tx: Tx,
    kind: EntryKind,
    number: int,
    shares: int,
    amount: Money,
    today: str,
    pledge_id: int | None,
    note: str | None,
) -> Reduction:
    """Write one entry that takes shares off a member's holding; ceased at zero.

    The entry takes the next entry id and, when shares remain, the next
    certificate number: the balance certificate for what the member keeps.
    """
    held, _ = holding(tx.conn, number)
    after = held - shares
    entry_id = _next(tx, schema.register_entries.c.id)
    balance = _next(tx, schema.register_entries.c.certificate_number) if after > 0 else None
    entry = {
        "id": entry_id,
        "member_number": number,
        "kind": kind.value,
        "shares": shares,
        "amount": amount.amount,
        "currency": amount.currency,
        "pledge_id": pledge_id,
        "certificate_number": balance,
        "entry_date": today,
        "note": note,
        "created_at": tx.now,
    }
    tx.insert(schema.register_entries, list(entry), [tuple(entry.values())])
    if after == 0:
        tx.update(schema.members, {"number": number, "ceased_on": None}, ceased_on=today)
    return Reduction(entry_id, shares, amount, balance, after, after == 0)


def cancelled_shares(conn: Connection, number: int, pledge_ids: list[int]) -> int:
    """Shares already taken off a member by cancel entries for any of these pledges."""
    return int(
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(schema.register_entries.c.shares), 0)).where(
                schema.register_entries.c.kind == EntryKind.CANCEL.value,
                schema.register_entries.c.member_number == number,
                schema.register_entries.c.pledge_id.in_(pledge_ids),
            )
        ).scalar()
        or 0
    )


EXPORT_COLUMNS = (
    "number",
    "name",
    "address",
    "email",
    "shares",
    "amount_paid",
    "currency",
    "admitted_on",
    "ceased_on",
)


def export(conn: Connection, currency: str, path: Path, fmt: str = "csv") -> int:
    """Write the register for the board (0600: names, addresses); the number of members.

    As CSV, a person's text that a spreadsheet would run as a formula is
    neutralised (csvsafe); our own numbers and dates stay numbers and dates.
    """
    if fmt == "json":
        items = [h.as_json() for h in holdings(conn, currency)]
        privatefiles.write(
            path,
            json.dumps({"currency": currency, "members": items}, indent=2, ensure_ascii=False),
        )
        return len(items)
    rows = (
        [
            h.number,
            h.name,
            h.address,
            h.email or "",
            h.shares,
            csvsafe.Plain(h.paid.plain()),
            csvsafe.Plain(currency),
            csvsafe.Plain(h.admitted_on),
            csvsafe.Plain(h.ceased_on or ""),
        ]
        for h in holdings(conn, currency)
    )
    return csvsafe.write_file(path, EXPORT_COLUMNS, rows)
