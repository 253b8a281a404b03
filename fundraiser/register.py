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
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import csvsafe, privatefiles
from fundraiser.errors import NotFound
from fundraiser.ledger import Tx, bulk, schema
from fundraiser.money import Money


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


def next_id(tx: Tx, column: sa.Column[Any]) -> int:
    return int(tx.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar() or 0) + 1


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
    """Members (all, or these numbers) with shares and amount paid, from the entries.

    Read through the driver, a batch at a time: the register's export reads
    every member, and SQLAlchemy's row processing cost more than the query.
    """
    totals = _totals()
    m = schema.members.c
    query = sa.select(m.number, m.name, m.email, m.address, m.admitted_on, m.ceased_on).order_by(
        m.number
    )
    if numbers is not None:
        totals = totals.where(schema.register_entries.c.member_number.in_(numbers))
        query = query.where(m.number.in_(numbers))
    subquery = totals.subquery()
    query = query.add_columns(
        sa.func.coalesce(subquery.c.shares, 0).label("shares"),
        sa.func.coalesce(subquery.c.amount, 0).label("amount"),
    ).select_from(schema.members.outerjoin(subquery, subquery.c.number == m.number))
    paid: dict[int, Money] = {}  # most members paid one of a few amounts
    for number, name, email, address, admitted, ceased, shares, amount in bulk.each_row(
        conn, query
    ):
        money = paid.get(amount)
        if money is None:
            money = paid[amount] = Money(int(amount), currency)
        yield Holding(number, name, email, address, admitted, ceased, int(shares), money)


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
    entry_id = next_id(tx, schema.register_entries.c.id)
    balance = next_id(tx, schema.register_entries.c.certificate_number) if after > 0 else None
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
