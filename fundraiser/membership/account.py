"""A member's own account: what their page shows, and the changes they make to it.

Each change (postal address, email, public name, the fee's rate or its end) is a
row of `member_changes` with the day it took effect, written in the same
transaction as the change itself and journalled: the register's history of a
member's details, beside the entries that issue and take back shares. An email
counts only once the new address has confirmed it (the change waits as
`pending`; a newer request supersedes it). A public name is what the site shows
for the member's pledges, so it is set (or withdrawn) on those.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import register
from fundraiser.config import Campaign
from fundraiser.errors import NotFound, UserInputError
from fundraiser.ledger import Tx, schema
from fundraiser.membership import fees, withdrawal
from fundraiser.money import Money


class Field(enum.StrEnum):
    ADDRESS = "address"
    EMAIL = "email"
    PUBLIC_NAME = "public_name"
    FEE_RATE = "fee_rate"
    FEE = "fee"  # the member ended their fee
    CARD = "card"  # the card the fee is taken from (its last four digits)


class ChangeStatus(enum.StrEnum):
    DONE = "done"
    PENDING = "pending"  # an email waiting for the new address to confirm it
    SUPERSEDED = "superseded"  # a pending email replaced by a newer request


#: The longest texts a member may give (the pledge form's limits).
LIMITS = {Field.ADDRESS: 500, Field.EMAIL: 254, Field.PUBLIC_NAME: 80}


class Ceased(UserInputError):
    """A former member: their page shows what they held, but changes nothing."""


def current_member(conn: Connection, number: int) -> Any:
    """The member's row, refusing a former member (they may not change anything)."""
    member = register.get_member(conn, number)
    if member.ceased_on:
        raise Ceased(f"member {number} left on {member.ceased_on}: nothing can be changed")
    return member


def _record(
    tx: Tx,
    number: int,
    what: Field,
    value: str | None,
    today: str,
    status: ChangeStatus = ChangeStatus.DONE,
) -> int:
    row = {
        "member_number": number,
        "field": what.value,
        "value": value,
        "status": status.value,
        "changed_on": today if status is ChangeStatus.DONE else None,
        "created_at": tx.now,
        "updated_at": tx.now,
    }
    tx.insert(schema.member_changes, list(row), [tuple(row.values())])
    found = tx.conn.execute(sa.select(sa.func.max(schema.member_changes.c.id))).scalar()
    return int(found or 0)


def record(tx: Tx, number: int, what: Field, value: str | None, today: str) -> int:
    """A change made elsewhere (the fee's rate or end), in the member's history."""
    change = _record(tx, number, what, value, today)
    tx.record(
        f"member.{what.value}",
        f"member:{number}",
        {"member": number, "change": change, "on": today},
    )
    return change


def change_address(tx: Tx, number: int, address: str, today: str) -> int:
    current_member(tx.conn, number)
    text = address.strip()
    if not text:
        raise UserInputError("address: is empty. Give a postal address: the register needs one")
    tx.update(schema.members, {"number": number}, address=text)
    change = _record(tx, number, Field.ADDRESS, text, today)
    tx.record("member.address", f"member:{number}", {"member": number, "change": change})
    return change


def ask_email(tx: Tx, number: int, email: str, today: str) -> int:
    """A new email, pending until the mail sent to it is answered; older requests lapse."""
    current_member(tx.conn, number)
    waiting = list(
        tx.conn.execute(
            sa.select(schema.member_changes.c.id).where(
                schema.member_changes.c.member_number == number,
                schema.member_changes.c.field == Field.EMAIL.value,
                schema.member_changes.c.status == ChangeStatus.PENDING.value,
            )
        ).scalars()
    )
    if waiting:
        tx.update(
            schema.member_changes,
            {"id": waiting},
            status=ChangeStatus.SUPERSEDED.value,
            updated_at=tx.now,
        )
    change = _record(tx, number, Field.EMAIL, email.strip(), today, ChangeStatus.PENDING)
    tx.record(
        "member.email_asked",
        f"member:{number}",
        {"member": number, "change": change, "superseded": waiting},
    )
    return change


class EmailNotPending(UserInputError):
    """The confirmation is for a change already confirmed, or replaced by a newer one."""

    def __init__(self, status: str) -> None:
        super().__init__(f"this email change is {status}")
        self.status = status


def confirm_email(tx: Tx, change_id: int, today: str) -> tuple[int, str]:
    """The new address answered: it becomes the member's email. (member, email)"""
    row = tx.conn.execute(
        sa.select(schema.member_changes).where(schema.member_changes.c.id == change_id)
    ).first()
    if row is None or row.field != Field.EMAIL.value:
        raise NotFound(f"email change {change_id} does not exist")
    if row.status != ChangeStatus.PENDING.value:
        raise EmailNotPending(row.status)
    number = int(row.member_number)
    current_member(tx.conn, number)
    tx.update(
        schema.member_changes,
        {"id": change_id},
        status=ChangeStatus.DONE.value,
        changed_on=today,
        updated_at=tx.now,
    )
    # The person's key stays: it ties the member to the pledges that paid for
    # their shares (and so to where a withdrawal is repaid).
    tx.update(schema.members, {"number": number}, email=row.value)
    tx.record("member.email", f"member:{number}", {"member": number, "change": change_id})
    return number, str(row.value)


def _pledge_ids(conn: Connection, person_key: str) -> list[int]:
    return list(
        conn.execute(
            sa.select(schema.pledges.c.id).where(schema.pledges.c.person_key == person_key)
        ).scalars()
    )


def set_public_name(tx: Tx, number: int, name: str | None, today: str) -> int:
    """Show `name` on the site for the member's pledges, or (None) show no name."""
    member = current_member(tx.conn, number)
    text = (name or "").strip() or None
    ids = _pledge_ids(tx.conn, member.person_key)
    if ids:
        tx.update(schema.pledges, {"id": ids}, display_name=text, updated_at=tx.now)
    change = _record(tx, number, Field.PUBLIC_NAME, text, today)
    tx.record(
        "member.public_name",
        f"member:{number}",
        {"member": number, "change": change, "shown": text is not None, "pledges": ids},
    )
    return change


def public_name(conn: Connection, number: int) -> str | None:
    """The name the site shows for this member now (their latest pledge's)."""
    member = register.get_member(conn, number)
    found = conn.execute(
        sa.select(schema.pledges.c.display_name)
        .where(schema.pledges.c.person_key == member.person_key)
        .order_by(schema.pledges.c.id.desc())
        .limit(1)
    ).scalar()
    return str(found) if found else None


# -- what the member's page shows --------------------------------------------------


@dataclass(frozen=True)
class Change:
    id: int
    field: str
    value: str | None
    status: str
    changed_on: str | None
    asked_at: str


@dataclass(frozen=True)
class Invoice:
    period_start: str
    period_end: str
    amount: Money
    status: str
    paid_at: str | None


@dataclass(frozen=True)
class FeeView:
    fee: fees.Fee
    started_on: str
    stripe_subscription: str | None
    stripe_customer: str | None
    invoices: list[Invoice]

    @property
    def next_due(self) -> str | None:
        """The day the next fee falls due (None once it has ended, or on the free rate)."""
        if self.fee.ended_at is not None or self.fee.rate == "free":
            return None
        return self.fee.overdue_since or self.fee.paid_through or self.started_on


@dataclass(frozen=True)
class View:
    number: int
    name: str
    email: str | None
    address: str
    admitted_on: str
    ceased_on: str | None
    shares: int
    value: Money  # shares at their price
    paid: Money
    public_name: str | None
    fee: FeeView | None
    withdrawals: list[withdrawal.Request]
    pending_email: Change | None
    history: list[Change] = field(default_factory=list)

    @property
    def free_shares(self) -> int:
        """Shares not already asked back by a withdrawal request still waiting."""
        asked = sum(r.shares for r in self.withdrawals if r.status == "waiting")
        return max(self.shares - asked, 0)


def _fee_view(conn: Connection, number: int, today: date, grace_days: int) -> FeeView | None:
    subs = schema.fee_subscriptions
    row = conn.execute(
        sa.select(subs).where(subs.c.member_number == number).order_by(subs.c.id.desc()).limit(1)
    ).first()
    if row is None:
        return None
    state, overdue, lapses = fees.standing(
        rate=row.rate,
        started_on=row.started_on,
        paid_through=row.paid_through,
        failing_since=row.failing_since,
        ended_at=row.ended_at,
        today=today,
        grace_days=grace_days,
    )
    fee = fees.Fee(
        row.id,
        number,
        row.rate,
        Money(int(row.amount), row.currency),
        row.interval,
        row.paid_through,
        row.failing_since,
        row.ended_at,
        state,
        overdue,
        lapses,
    )
    inv = schema.fee_invoices
    invoices = [
        Invoice(i.period_start, i.period_end, Money(int(i.amount), i.currency), i.status, i.paid_at)
        for i in conn.execute(
            sa.select(inv)
            .where(inv.c.subscription_id == row.id)
            .order_by(inv.c.period_start.desc())
        )
    ]
    return FeeView(fee, row.started_on, row.stripe_subscription, row.stripe_customer, invoices)


def view(conn: Connection, campaign: Campaign, number: int, today: date) -> View:
    member = register.get_member(conn, number)
    shares, paid = register.holding(conn, number)
    grace = campaign.membership.grace_days if campaign.membership else 0
    changes = schema.member_changes
    history = [
        Change(r.id, r.field, r.value, r.status, r.changed_on, r.created_at)
        for r in conn.execute(
            sa.select(changes)
            .where(changes.c.member_number == number)
            .order_by(changes.c.id.desc())
        )
    ]
    pending = next(
        (c for c in history if c.field == Field.EMAIL and c.status == ChangeStatus.PENDING), None
    )
    mine = [r for r in withdrawal.requests(conn, campaign) if r.member == number]
    return View(
        number=number,
        name=member.name,
        email=member.email,
        address=member.address,
        admitted_on=member.admitted_on,
        ceased_on=member.ceased_on,
        shares=shares,
        value=campaign.shares.price * shares,
        paid=Money(paid, campaign.currency),
        public_name=public_name(conn, number),
        fee=_fee_view(conn, number, today, grace),
        withdrawals=mine,
        pending_email=pending,
        history=history,
    )


def by_email(conn: Connection, email: str) -> int | None:
    """The current member whose email this is (any case), for a sign-in request."""
    wanted = email.strip().casefold()
    if not wanted:
        return None
    rows = conn.execute(
        sa.select(schema.members.c.number, schema.members.c.email).where(
            schema.members.c.ceased_on.is_(None),
            sa.func.lower(schema.members.c.email) == wanted.lower(),
        )
    ).all()
    for number, found in rows:
        if str(found or "").strip().casefold() == wanted:
            return int(number)
    return None


def change_row(conn: Connection, change_id: int) -> Any:
    """One row of a member's changes (an email waiting for confirmation), or None."""
    return conn.execute(
        sa.select(schema.member_changes).where(schema.member_changes.c.id == change_id)
    ).first()
