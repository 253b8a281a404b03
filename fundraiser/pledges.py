"""Pledges and their state machine.

The allowed moves live in one table, statuses.TRANSITIONS, and one function,
`transition`, applies them: an illegal move raises and changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.errors import InvalidTransition, NotFound
from fundraiser.ledger import Tx, bulk, schema
from fundraiser.money import Money
from fundraiser.people import normal_email, person_key

# The states, their table and groups, and Source live in statuses.py (no database
# there: status reads the figures without SQLAlchemy); every name is offered here too.
from fundraiser.statuses import BY_HAND as BY_HAND
from fundraiser.statuses import CHARGEABLE as CHARGEABLE
from fundraiser.statuses import ENDED_UNPAID as ENDED_UNPAID
from fundraiser.statuses import HELD as HELD
from fundraiser.statuses import LIVE as LIVE
from fundraiser.statuses import RECEIVED as RECEIVED
from fundraiser.statuses import SECURED as SECURED
from fundraiser.statuses import TRANSITIONS as TRANSITIONS
from fundraiser.statuses import UNSETTLED as UNSETTLED
from fundraiser.statuses import S as S
from fundraiser.statuses import Source as Source
from fundraiser.statuses import Status as Status


@dataclass(frozen=True, slots=True)  # slots: an import holds 300,000 of them at once
class NewPledge:
    name: str
    email: str
    address: str
    amount: Money
    round: str
    status: Status = Status.PENDING
    source: Source = Source.OFFLINE
    reference: str | None = None
    display_name: str | None = None
    tier: str | None = None
    shares: int | None = None
    request_key: str | None = None


@dataclass(frozen=True)
class Pledge:
    id: int
    created_at: str
    updated_at: str
    name: str
    email: str
    address: str
    display_name: str | None
    round: str
    tier: str | None
    shares: int | None
    amount: Money
    status: Status
    status_reason: str | None
    source: Source
    reference: str | None
    paid: Money
    refunded: Money
    paid_at: str | None
    allotted_at: str | None
    stripe_intent: str | None

    @classmethod
    def from_row(cls, row: Any) -> Pledge:
        currency = row.currency
        return cls(
            id=row.id,
            created_at=row.created_at,
            updated_at=row.updated_at,
            name=row.name,
            email=row.email,
            address=row.address,
            display_name=row.display_name,
            round=row.round,
            tier=row.tier,
            shares=row.shares,
            amount=Money(int(row.amount), currency),
            status=Status(row.status),
            status_reason=row.status_reason,
            source=Source(row.source),
            reference=row.reference,
            paid=Money(int(row.paid_amount), currency),
            refunded=Money(int(row.refunded_amount), currency),
            paid_at=row.paid_at,
            allotted_at=row.allotted_at,
            stripe_intent=row.stripe_intent,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "name": self.name,
            "email": self.email,
            "address": self.address,
            "display_name": self.display_name,
            "round": self.round,
            "tier": self.tier,
            "shares": self.shares,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "status": self.status.value,
            "status_reason": self.status_reason,
            "source": self.source.value,
            "reference": self.reference,
            "paid": self.paid.amount,
            "refunded": self.refunded.amount,
            "paid_at": self.paid_at,
            "allotted_at": self.allotted_at,
        }


# Columns of a new pledge row, in the order _row() gives them (the stamps and
# the refunded total, the same in every new row, go in once as constants).
PLEDGE_COLUMNS = (
    "id",
    "person_key",
    "name",
    "email",
    "address",
    "display_name",
    "round",
    "tier",
    "shares",
    "amount",
    "currency",
    "status",
    "source",
    "reference",
    "paid_amount",
    "paid_at",
    "request_key",
)


def _row(pledge_id: int, new: NewPledge, now: str) -> tuple[Any, ...]:
    paid = new.status is Status.PAID
    amount = new.amount.amount
    return (
        pledge_id,
        person_key(new.email),
        new.name.strip(),
        normal_email(new.email),
        new.address.strip(),
        (new.display_name or "").strip() or None,
        new.round,
        new.tier,
        new.shares,
        amount,
        new.amount.currency,
        new.status.value,
        new.source.value,
        new.reference,
        amount if paid else 0,
        now if paid else None,
        new.request_key,
    )


def _journal_data(pledge_id: int, new: NewPledge) -> dict[str, Any]:
    # The journal holds amounts and states, never the person's details: it is
    # what gets published as a hash, and what survives a right-to-be-forgotten.
    return {
        "id": pledge_id,
        "amount": new.amount.amount,
        "currency": new.amount.currency,
        "round": new.round,
        "status": new.status.value,
        "source": new.source.value,
        "tier": new.tier,
    }


def create_many(tx: Tx, items: Sequence[NewPledge]) -> list[int]:
    """Insert pledges and journal them, all in the caller's transaction."""
    if not items:
        return []
    ids = new_ids(tx.conn, len(items))
    rows = [_row(pid, item, tx.now) for pid, item in zip(ids, items, strict=True)]
    stamps = {"created_at": tx.now, "updated_at": tx.now, "refunded_amount": 0}
    tx.insert(schema.pledges, PLEDGE_COLUMNS, rows, stamps)
    if len(items) == 1:
        tx.record("pledge.create", f"pledge:{ids[0]}", _journal_data(ids[0], items[0]))
    else:
        # One transaction, one journal entry: a bulk import is a single change,
        # and its rows are in the entry's changes.
        tx.record("pledge.create_many", f"pledges:{ids[0]}-{ids[-1]}", {"count": len(ids)})
    return ids


def new_ids(conn: Connection, count: int) -> list[int]:
    """Ids for `count` new pledges, in this transaction.

    SQLite has one writer at a time: the next after the highest. PostgreSQL's
    pledge path has writers side by side (Ledger.write's `locks`), so ids come
    from a sequence, never handed out twice; a sequence found behind the table
    (rows written with their own ids) is moved past it first.
    """
    if conn.dialect.name == "sqlite":
        found = bulk.first(conn, "SELECT max(id) FROM pledges")
        top = (found[0] if found else None) or 0
        return list(range(top + 1, top + 1 + count))
    if count == 1:  # the pledge path: the id and the table's top in one round trip
        drawn = bulk.first(conn, _DRAW_ONE)
        assert drawn is not None
        ids, top = [int(drawn[0])], int(drawn[1])
    else:
        top = conn.execute(sa.select(sa.func.max(schema.pledges.c.id))).scalar() or 0
        ids = _draw(conn, count)
    if ids[0] <= top:
        conn.execute(
            sa.text("SELECT setval('pledge_ids', GREATEST(:top, last_value)) FROM pledge_ids"),
            {"top": top},
        )
        ids = _draw(conn, count)
    return ids


_DRAW_ONE = "SELECT nextval('pledge_ids'), (SELECT coalesce(max(id), 0) FROM pledges)"


# `count` ids drawn in one statement. Alone on the sequence they run on without a
# gap, and three numbers say which (an import's 100,000 rows through SQLAlchemy
# cost 0.15 s); drawn beside another writer's they may not: then the list itself.
_DRAW_MANY = (
    "WITH drawn AS (SELECT nextval('pledge_ids') AS id FROM generate_series(1, %s)) "
    "SELECT min(id), max(id), count(*), CASE WHEN max(id) - min(id) + 1 = count(*) "
    "THEN NULL ELSE array_agg(id ORDER BY id) END FROM drawn"
)


def _draw(conn: Connection, count: int) -> list[int]:
    if count == 1:
        return [int(conn.execute(sa.select(schema.pledge_ids.next_value())).scalar_one())]
    found = bulk.first(conn, _DRAW_MANY, (count,))
    assert found is not None and found[2] == count
    low, high, _count, listed = found
    return list(range(low, high + 1)) if listed is None else [int(i) for i in listed]


def create(tx: Tx, item: NewPledge) -> int:
    return create_many(tx, [item])[0]


def get(conn: Connection, pledge_id: int, *, for_update: bool = False) -> Pledge:
    query = sa.select(schema.pledges).where(schema.pledges.c.id == pledge_id)
    if for_update and conn.dialect.name != "sqlite":
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise NotFound(f"pledge {pledge_id} does not exist: see `fundraiser pledges list`")
    return Pledge.from_row(row)


def find(
    conn: Connection, *, status: Iterable[Status] | None = None, email: str | None = None
) -> list[Pledge]:
    query = sa.select(schema.pledges).order_by(schema.pledges.c.id)
    if status is not None:
        query = query.where(schema.pledges.c.status.in_([s.value for s in status]))
    if email is not None:
        query = query.where(schema.pledges.c.person_key == person_key(email))
    return [Pledge.from_row(row) for row in conn.execute(query)]


def transition(
    tx: Tx,
    pledge_id: int,
    to: Status,
    *,
    reason: str | None = None,
    paid: Money | None = None,
    reference: str | None = None,
    extra: dict[str, Any] | None = None,
) -> Pledge:
    """Move a pledge to `to`, or raise InvalidTransition and change nothing."""
    pledge = get(tx.conn, pledge_id, for_update=True)
    _move(
        tx,
        pledge_id,
        pledge.status,
        to,
        amount=pledge.amount if pledge.paid_at is None else None,
        reason=reason,
        paid=paid,
        reference=reference,
        extra=extra,
    )
    return get(tx.conn, pledge_id)


def transition_row(
    tx: Tx,
    row: Any,
    to: Status,
    *,
    reason: str | None = None,
    paid: Money | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """`transition` for a pledge row the caller read in this transaction.

    The webhook's hot path: it has the row already, so the pledge is not read
    again, and the UPDATE goes through the driver. The UPDATE is still guarded
    on the row's status: a stale row raises InvalidTransition and changes nothing.
    """
    currency = row.currency
    unpaid = Money(int(row.amount), currency) if row.paid_at is None else None
    _move(tx, row.id, Status(row.status), to, amount=unpaid, reason=reason, paid=paid, extra=extra)


_PLEDGE_COLUMNS = frozenset(schema.pledges.c.keys())


def _move(
    tx: Tx,
    pledge_id: int,
    current: Status,
    to: Status,
    *,
    amount: Money | None,
    reason: str | None,
    paid: Money | None,
    reference: str | None = None,
    extra: dict[str, Any] | None = None,
) -> None:
    """The one place a pledge changes state; `amount` is given while it is unpaid."""
    if to not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none"
        raise InvalidTransition(
            f"pledge {pledge_id} is {current.value} and cannot become {to.value} "
            f"(from {current.value} it can become: {allowed})"
        )
    values: dict[str, Any] = {"status": to.value, "status_reason": reason, "updated_at": tx.now}
    if to is Status.PAID and amount is not None:
        values.update(paid_amount=(paid if paid is not None else amount).amount, paid_at=tx.now)
    if reference is not None:
        values["reference"] = reference
    values.update(extra or {})
    if not _PLEDGE_COLUMNS.issuperset(values):
        raise ValueError(f"not pledge columns: {sorted(set(values) - _PLEDGE_COLUMNS)}")
    # Guard on the old status too, so a concurrent move cannot be overwritten.
    done = tx.update(schema.pledges, {"id": pledge_id, "status": current.value}, **values)
    if done != 1:
        raise InvalidTransition(f"pledge {pledge_id} changed while we worked: try again")
    tx.record(
        f"pledge.{to.value}",
        f"pledge:{pledge_id}",
        {
            "id": pledge_id,
            "from": current.value,
            "to": to.value,
            "reason": reason,
            "paid": values.get("paid_amount"),
        },
    )
