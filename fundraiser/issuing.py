"""Issuing shares: paid pledges made into members, register entries and certificates
numbers, in one write; the founding issue after the campaign, and admissions after it.

The plan is fundraiser.allocation's (pure); this module reads what it needs,
checks that issuing may happen now (an all-or-nothing offer only after it closed
with its goal met), writes the rows in bulk and queues the welcome mails.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import closing, outbox
from fundraiser.allocation import PaidPledge, Plan, Remainder, allocate
from fundraiser.config import Campaign, ShareTerms
from fundraiser.errors import LedgerError, UserInputError
from fundraiser.ledger import Ledger, Tx, bulk, changes, pgbulk, schema
from fundraiser.ledger.engine import stamp
from fundraiser.money import Money
from fundraiser.pledges import Status
from fundraiser.register import EntryKind, existing_holdings, next_id
from fundraiser.remainders import RemainderStatus


def founding_cutoff(campaign: Campaign) -> str | None:
    """Pledges made from this moment on join after the campaign (fundraiser.membership
    .admission), not in the founding issue; None when the co-op takes no one after it."""
    if campaign.membership is None:
        return None
    return stamp(campaign.campaign.deadline)


def paid_unallotted(
    conn: Connection,
    *,
    before: str | None = None,
    pledge_ids: list[int] | None = None,
    details: bool = True,
) -> list[PaidPledge]:
    """Paid pledges not yet turned into shares, with the money still held.

    `before`: only pledges made before that moment (the founding issue);
    `pledge_ids`: only these (an admission). `details=False` leaves name and
    email empty: the issue copies a member's details in the database
    (changes.Copy), and 300,000 backers' details are about 60 MB as Python strings.
    Read through the driver: 100,000 rows cost more in SQLAlchemy's result
    processing than in the database. The plan reads in a snapshot and the
    issue in its write, so this takes the connection either one gives.
    """
    p = schema.pledges.c
    blank: sa.ColumnClause[str] = sa.literal_column("''", sa.Text)
    query = (
        sa.select(
            p.id,
            p.person_key,
            *((p.name, p.email) if details else (blank, blank)),
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
    rows = bulk.each_row(conn, query)
    # Each pledge keeps its own currency: allocate() refuses one that differs.
    # One Money per distinct amount: most pledges are a few tier prices.
    memo: dict[tuple[int, str], Money] = {}
    # One string per payment moment: a close charges thousands in the same second.
    moments: dict[str, str] = {}
    paid: list[PaidPledge] = []
    for pid, key, name, email, paid_amount, refunded, at, code in rows:
        held = paid_amount - refunded
        if held > 0:
            money = memo.get((held, code))
            if money is None:
                money = memo[held, code] = Money(held, code)
            at = moments.setdefault(at, at) if at else ""
            paid.append(PaidPledge(pid, key, name, email, money, at))
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
    # Its pages are read once, in order, or appended: a small page cache (SQLite).
    with ledger.write(now, bulk_work=True, small_cache=True) as tx:
        # PostgreSQL: the issue looks nothing up by those indexes, nor reads the
        # journal; its parts' texts are made while the indexes are built at the end.
        if pgbulk.indexes_after(tx.conn):
            tx.texts_at_end()
        pgbulk.sort_in_memory(tx.conn)
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
        paid = paid_unallotted(tx.conn, before=founding_cutoff(campaign), details=False)
        offer_max = campaign.offer_max_shares
    else:
        paid = paid_unallotted(tx.conn, pledge_ids=pledge_ids, details=False)
        offer_max = None
    if not paid:
        return IssueResult(0, 0, 0, 0, Money(0, campaign.currency), None, None)
    existing, start = existing_holdings(tx.conn), _Start.read(tx)
    marking = tx.alongside(_mark_allotted, tx, [p.pledge_id for p in paid])
    try:
        plan = allocate(  # pure Python: no database here while the stamp runs
            paid, terms or campaign.shares, offer_max_shares=offer_max, existing=existing
        )
        if tx.conn.dialect.name == "sqlite":
            # SQLite's stamp ends within the allocation: nothing is gained by going
            # on beside it, and the step stays as measured at 300,000 pledges.
            marking.result()
        read = len(paid)
        held = {p.pledge_id: p.amount.amount for p in paid}
        stored = {p.pledge_id: p.person_key for p in paid}
        # From here the plan and these two are all the rows need: the pledges read
        # need not live on beside the members' insert and the rows (300,000 pledges).
        del paid
        admitted, number_of = _Admitted.build(plan, start, stored)
        # The new members go in (a join in the database, which holds no interpreter
        # lock) while this thread builds the rest of the rows from the plan. The
        # second thread takes its steps in order: the insert follows the stamp,
        # which on PostgreSQL (a new version of every row, HOT: schema's
        # PLEDGES_FILLFACTOR) can outlast the allocation.
        inserting = tx.alongside(_insert_members, tx, admitted, today)
        try:
            rows = _Rows.build(plan, start, number_of, held, stored)
        finally:
            inserting.result()
    finally:
        marking.result()  # the database is this thread's again
    if rows.planned != read:  # rolls the whole issue back
        raise LedgerError(f"issue planned {rows.planned} of {read} paid pledges")
    # The write needs the rows only: at 300,000 pledges the plan is about 150 MB
    # that need not live on beside the rows and the inserts.
    del plan, held, stored, number_of
    _write(tx, rows, today)
    welcomed = _queue_welcome(tx, [number for number, _source in admitted.members], today)
    # The whole issue is one change, so one journal entry records all of it:
    # its rows are the entry's changes, this the summary a person reads.
    tx.record(
        "shares.issue", "register", rows.journal(len(admitted.members), start.member, welcomed)
    )
    return rows.result(len(admitted.members), start.member)


def _moment(stamp: str) -> datetime:
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _mark_allotted(tx: Tx, pledge_ids: list[int]) -> None:
    """Stamp the paid pledges the issue read (in this same write: no other writer runs)."""
    done = tx.update(schema.pledges, {"id": pledge_ids}, allotted_at=tx.now)
    if done != len(pledge_ids):  # rolls the whole issue back
        raise LedgerError(f"issue read {len(pledge_ids)} paid pledges but marked {done}")


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
            next_id(tx, schema.members.c.number),
            next_id(tx, schema.register_entries.c.id),
            next_id(tx, schema.register_entries.c.certificate_number),
        )


# Row layouts for tx.insert_rows: tuples in these column orders; the columns
# every row of an issue shares are passed once, as constants.
MEMBER_COLUMNS = ("number", "person_key", "name", "email", "address")
ENTRY_COLUMNS = ("id", "member_number", "shares", "amount", "certificate_number")
LINK_COLUMNS = ("entry_id", "pledge_id", "amount")
REMAINDER_COLUMNS = ("pledge_id", "person_key", "amount", "reason")


@dataclass
class _Admitted:
    """The issue's new members, numbered in admission order, each held as the
    journal names them: by the pledge their details come from (changes.Copy).
    Their keys are kept beside, for the rare write that cannot copy (a pledge
    whose stored key is not its normal form)."""

    members: list[tuple[int, int]]  # (number, the pledge their name, email and address are from)
    keys: list[str]
    keys_stored: bool  # every key is its pledge's own, as stored: the write copies them

    @classmethod
    def build(
        cls, plan: Plan, start: _Start, stored: dict[int, str]
    ) -> tuple[_Admitted, dict[str, int]]:
        """The new members, and every member's number (old and new) by key."""
        number_of = dict(start.number_of)
        next_member = start.member
        members: list[tuple[int, int]] = []
        keys: list[str] = []
        keys_stored = True
        for allotment in plan.allotments:
            key = allotment.person_key
            if allotment.shares and key not in number_of:
                number_of[key] = next_member
                # The earliest paid pledge: the allotment's name, email and address.
                source = allotment.pledge_ids[0]
                members.append((next_member, source))
                keys.append(key)
                keys_stored = keys_stored and stored[source] == key
                next_member += 1
        return cls(members, keys, keys_stored), number_of


@dataclass
class _Rows:
    """An issue's register entries, their pledges and its remainders, built from
    the plan in Python, before any is written.

    Remainders are held as the journal names them: by their pledge, whose key
    they copy. Their keys are kept beside, as for the members (_Admitted).
    """

    entries: list[tuple[Any, ...]]
    links: list[tuple[int, int, int]]
    refunds: list[tuple[int, int, str]]  # (pledge_id, amount, reason)
    refund_keys: list[str]
    keys_stored: bool  # every key is its pledge's own, as stored: the write copies them
    planned: int
    shares: int
    price: int
    currency: str

    @classmethod
    def build(
        cls,
        plan: Plan,
        start: _Start,
        number_of: dict[str, int],
        held: dict[int, int],
        stored: dict[int, str],
    ) -> _Rows:
        """`number_of`: each member's number by key (_Admitted); `held`: each paid
        pledge's money still held; `stored`: its key as stored."""
        next_entry, next_certificate = start.entry, start.certificate
        price = plan.price.amount
        entries: list[tuple[Any, ...]] = []
        links: list[tuple[int, int, int]] = []
        refunds: list[tuple[int, int, str]] = []
        refund_keys: list[str] = []
        keys_stored = True
        planned = 0
        for allotment in plan.allotments:
            key, pledge_ids, shares = allotment.person_key, allotment.pledge_ids, allotment.shares
            planned += len(pledge_ids)
            for rem in allotment.remainders:
                # The reason's plain text: the driver binds an enum ~2x slower (adapter lookups).
                refunds.append((rem.pledge_id, rem.amount.amount, rem.reason.value))
                refund_keys.append(key)
                keys_stored = keys_stored and stored[rem.pledge_id] == key
            if not shares:
                continue
            amount = price * shares
            entries.append((next_entry, number_of[key], shares, amount, next_certificate))
            if len(pledge_ids) == 1:  # kept money is the price of the shares
                links.append((next_entry, pledge_ids[0], amount))
            else:
                _link_pledges(links, next_entry, allotment.remainders, pledge_ids, held)
            next_entry += 1
            next_certificate += 1
        return cls(
            entries,
            links,
            refunds,
            refund_keys,
            keys_stored,
            planned,
            plan.total_shares,
            price,
            plan.currency,
        )

    def journal(self, admitted: int, first_member: int, welcomed: int) -> dict[str, Any]:
        """The issue's summary for its journal entry (its rows are the entry's changes)."""
        return {
            "members_admitted": admitted,
            "members": [first_member, first_member + admitted - 1] if admitted else None,
            "entries": len(self.entries),
            "shares": self.shares,
            "price": self.price,
            "currency": self.currency,
            "remainders": len(self.refunds),
            "welcome_mail": welcomed,
        }

    def result(self, admitted: int, first_member: int) -> IssueResult:
        return IssueResult(
            admitted,
            len(self.entries),
            self.shares,
            len(self.refunds),
            Money(sum(r[1] for r in self.refunds), self.currency),
            first_member if admitted else None,
            first_member + admitted - 1 if admitted else None,
        )


#: A new member's details are their earliest paid pledge's; a remainder's key its pledge's.
_FROM_PLEDGE = changes.Copy(
    "pledges",
    "from_pledge",
    {"person_key": "person_key", "name": "name", "email": "email", "address": "address"},
)
_KEY_FROM_PLEDGE = changes.Copy("pledges", "pledge_id", {"person_key": "person_key"})


def _insert_members(tx: Tx, admitted: _Admitted, today: str) -> None:
    """Insert the issue's new members.

    Where every key is its pledge's own as stored (always, for keys stored
    normalised), the journal names the pledge instead of fingerprinting the same
    details again (changes.Copy); otherwise the values go in as the plan has them.
    """
    constants = {"admitted_on": today, "created_at": tx.now}
    if admitted.keys_stored:
        columns = ("number", "from_pledge")
        tx.insert(schema.members, columns, admitted.members, constants, copy=_FROM_PLEDGE)
    else:  # the details as given: read for these members only
        tx.insert(schema.members, MEMBER_COLUMNS, _with_details(tx, admitted), constants)


def _write(tx: Tx, rows: _Rows, today: str) -> None:
    """Insert an issue's register entries, their pledges and its remainders (copied
    from their pledges as the members are: _insert_members)."""
    stamped = {"created_at": tx.now}
    currency = rows.currency
    entry_constants = {
        "kind": EntryKind.ISSUE.value,
        "currency": currency,
        "entry_date": today,
        **stamped,
    }
    tx.insert(schema.register_entries, ENTRY_COLUMNS, rows.entries, entry_constants)
    tx.insert(schema.allotments, LINK_COLUMNS, rows.links)
    due = {"currency": currency, "status": RemainderStatus.DUE.value, **stamped}
    # In their pledges' order: each remainder reads its pledge (the copy, the foreign
    # key), and in the plan's order a backer's later pledges send those reads all
    # over the pledges table (at 300,000 pledges, a third of the remainders' time).
    if rows.keys_stored:
        unkeyed = ("pledge_id", "amount", "reason")
        # PostgreSQL: the keys go with the rows (they are the pledges' as this write
        # read them); journalled and replayed as the copy all the same.
        keys: dict[Any, str] = {}
        if tx.conn.dialect.name == "postgresql":
            keys = dict(zip((r[0] for r in rows.refunds), rows.refund_keys, strict=True))
        with pgbulk.known(tx.conn, "pledges", {"person_key": keys}):
            tx.insert(schema.remainders, unkeyed, sorted(rows.refunds), due, copy=_KEY_FROM_PLEDGE)
    else:
        keyed = sorted(
            (r[0], key, r[1], r[2]) for r, key in zip(rows.refunds, rows.refund_keys, strict=True)
        )
        tx.insert(schema.remainders, REMAINDER_COLUMNS, keyed, due)


def _with_details(tx: Tx, admitted: _Admitted) -> list[tuple[Any, ...]]:
    """New members' rows with their source pledges' name, email and address."""
    found: dict[int, tuple[Any, ...]] = {}
    p = schema.pledges.c
    sources = [source for _number, source in admitted.members]
    for start in range(0, len(sources), 5_000):
        chunk = sources[start : start + 5_000]
        query = sa.select(p.id, p.name, p.email, p.address).where(p.id.in_(chunk))
        found.update((row[0], tuple(row[1:])) for row in tx.execute(query))
    return [
        (number, key, *found[source])
        for (number, source), key in zip(admitted.members, admitted.keys, strict=True)
    ]


def _queue_welcome(tx: Tx, numbers: list[int], today: str) -> int:
    """Queue a welcome mail for each new member (every pledge has an email); how
    many were queued.

    The rows go into the issue's own journal entry (the caller records): one
    change, one entry. Each is addressed to its member as the members table
    holds them, so the rows carry no address.
    """
    # The data as outbox.encode_data writes it (sorted keys), without an encoder
    # run per member: {"admitted_on": ..., "member_number": N}.
    head = outbox.encode_data({"admitted_on": today, "member_number": 0})[:-2]
    mail = [(f"welcome:member:{n}", f"{head}{n}}}", n) for n in numbers]
    return outbox.queue_to_members(tx, outbox.Kind.WELCOME, mail)


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
