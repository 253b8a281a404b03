"""Leaving: a member gives back shares by a withdrawal entry.

The register is append-only (fundraiser.register): a withdrawal never edits
the entries that issued the shares, it adds one that takes them back. A member
may leave with all their shares or keep at least the offer's minimum holding;
at zero shares they cease (`ceased_on`), and their entry stays in the register
(see fundraiser.membership.privacy for how long).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import register, remainders
from fundraiser.config import Campaign
from fundraiser.errors import NotFound, UserInputError
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.money import Money
from fundraiser.remainders import RemainderStatus


@dataclass(frozen=True)
class Withdrawal:
    member: int
    entry_id: int | None  # None on a dry run
    shares: int
    amount: Money
    holding_after: int
    ceased: bool
    # The certificate for the shares left (the member's others are taken back).
    balance_certificate: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "entry_id": self.entry_id,
            "shares": self.shares,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "holding_after": self.holding_after,
            "ceased": self.ceased,
            "balance_certificate": self.balance_certificate,
        }


def withdraw(
    ledger: Ledger,
    campaign: Campaign,
    number: int,
    shares: int,
    *,
    today: str,
    now: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
) -> Withdrawal:
    """A withdrawal entry for `shares` of a member's holding; ceased at zero."""
    if shares < 1:
        raise UserInputError(f"--shares must be at least 1, not {shares}")
    terms = campaign.shares
    with ledger.write(now) as tx:
        member = register.get_member(tx.conn, number)
        held, _ = register.holding(tx.conn, number)
        if member.ceased_on or held == 0:
            raise UserInputError(
                f"member {number} holds no shares"
                + (f" (ceased on {member.ceased_on})" if member.ceased_on else "")
                + ": there is nothing to withdraw"
            )
        if shares > held:
            raise UserInputError(
                f"--shares {shares} is more than member {number} holds ({held}): "
                f"withdraw at most {held}"
            )
        after = held - shares
        if 0 < after < terms.min_shares:
            stay = held - terms.min_shares
            keep = (
                f"or at most {stay} to stay a member" if stay > 0 else "a member cannot hold fewer"
            )
            raise UserInputError(
                f"--shares {shares} would leave member {number} with {after} share(s), "
                f"below the minimum holding of {terms.min_shares}: withdraw all {held} "
                f"shares to leave, {keep}"
            )
        amount = terms.price * shares
        if dry_run:
            return Withdrawal(number, None, shares, amount, after, after == 0)
        entry = register.enter_withdrawal(
            tx, number, shares, amount, today=today, note=(note or "").strip() or None
        )
        tx.record(
            "register.withdraw",
            f"member:{number}",
            {
                "member": number,
                "entry": entry.entry_id,
                "shares": shares,
                "amount": amount.amount,
                "ceased": entry.ceased,
                "balance_certificate": entry.balance_certificate,
            },
        )
        return Withdrawal(
            number, entry.entry_id, shares, amount, after, entry.ceased, entry.balance_certificate
        )


# -- after the campaign: a request held for the rules' notice period -------------------

#: The remainder reason of a withdrawal's repayment.
WITHDRAWAL = "withdrawal"
#: How long after a card payment Stripe takes a refund to that card. Stripe
#: refuses a refund when the charge is too old for the card network; past
#: this, the member is repaid by bank transfer.
CARD_REFUND_DAYS = 180


class RequestStatus(enum.StrEnum):
    WAITING = "waiting"  # within the notice period, or due and not yet paid
    PAID = "paid"  # the withdrawal entry is written; the money is owed back
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Request:
    id: int
    member: int
    name: str
    shares: int
    amount: Money
    requested_on: str
    due_on: str
    status: str
    entry_id: int | None
    method: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "member": self.member,
            "name": self.name,
            "shares": self.shares,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "requested_on": self.requested_on,
            "due_on": self.due_on,
            "status": self.status,
            "entry_id": self.entry_id,
            "method": self.method,
        }


def _pending(conn: Connection, number: int) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(schema.withdrawal_requests.c.shares), 0)).where(
                schema.withdrawal_requests.c.member_number == number,
                schema.withdrawal_requests.c.status == RequestStatus.WAITING.value,
            )
        ).scalar()
        or 0
    )


def _check(tx_conn: Connection, campaign: Campaign, number: int, shares: int) -> int:
    """Refuse a withdrawal the register or the rules cannot take; the shares held now."""
    if shares < 1:
        raise UserInputError(f"--shares must be at least 1, not {shares}")
    terms = campaign.shares
    member = register.get_member(tx_conn, number)
    held, _ = register.holding(tx_conn, number)
    if member.ceased_on or held == 0:
        raise UserInputError(
            f"member {number} holds no shares"
            + (f" (ceased on {member.ceased_on})" if member.ceased_on else "")
            + ": there is nothing to withdraw"
        )
    asked = _pending(tx_conn, number)
    free = held - asked
    if shares > free:
        waiting = f" ({asked} already asked for)" if asked else ""
        raise UserInputError(
            f"--shares {shares} is more than member {number} holds ({held}){waiting}: "
            f"withdraw at most {free}"
        )
    after = free - shares
    if 0 < after < terms.min_shares:
        stay = free - terms.min_shares
        keep = f"or at most {stay} to stay a member" if stay > 0 else "a member cannot hold fewer"
        raise UserInputError(
            f"--shares {shares} would leave member {number} with {after} share(s), "
            f"below the minimum holding of {terms.min_shares}: withdraw all {free} "
            f"shares to leave, {keep}"
        )
    return held


def request(
    ledger: Ledger,
    campaign: Campaign,
    number: int,
    shares: int,
    *,
    today: str,
    now: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
) -> Request:
    """A member asks to withdraw shares: held until the rules' notice period has run."""
    notice = campaign.membership.withdrawal_notice_days if campaign.membership else 0
    due_on = (date.fromisoformat(today) + timedelta(days=notice)).isoformat()
    amount = campaign.shares.price * shares
    with ledger.write(now) as tx:
        _check(tx.conn, campaign, number, shares)
        name = register.get_member(tx.conn, number).name
        if dry_run:
            return Request(0, number, name, shares, amount, today, due_on, "waiting", None, None)
        row = {
            "member_number": number,
            "shares": shares,
            "requested_on": today,
            "due_on": due_on,
            "status": RequestStatus.WAITING.value,
            "note": (note or "").strip() or None,
            "created_at": tx.now,
            "updated_at": tx.now,
        }
        tx.insert(schema.withdrawal_requests, list(row), [tuple(row.values())])
        found = int(
            tx.conn.execute(sa.select(sa.func.max(schema.withdrawal_requests.c.id))).scalar() or 0
        )
        tx.record(
            "register.withdraw_request",
            f"member:{number}",
            {"request": found, "member": number, "shares": shares, "due_on": due_on},
        )
        return Request(found, number, name, shares, amount, today, due_on, "waiting", None, None)


def requests(
    conn: Connection, campaign: Campaign, *, status: RequestStatus | None = None
) -> list[Request]:
    """Withdrawal requests, the soonest due first."""
    reqs, members = schema.withdrawal_requests, schema.members
    query = (
        sa.select(reqs, members.c.name)
        .select_from(reqs.join(members, members.c.number == reqs.c.member_number))
        .order_by(reqs.c.due_on, reqs.c.id)
    )
    if status is not None:
        query = query.where(reqs.c.status == status.value)
    price = campaign.shares.price
    return [
        Request(
            r.id,
            r.member_number,
            r.name,
            r.shares,
            price * r.shares,
            r.requested_on,
            r.due_on,
            r.status,
            r.entry_id,
            r.method,
        )
        for r in conn.execute(query)
    ]


def _repaying_pledge(conn: Connection, number: int, amount: int, today: str) -> tuple[Any, str]:
    """The pledge to repay a withdrawal against, and how: a card payment recent enough
    for Stripe to refund and with the money still held, else the member's latest
    payment, by bank."""
    person = register.get_member(conn, number).person_key
    rows = conn.execute(
        sa.select(schema.pledges)
        .join(schema.allotments, schema.allotments.c.pledge_id == schema.pledges.c.id)
        .join(schema.register_entries, schema.register_entries.c.id == schema.allotments.c.entry_id)
        .where(schema.register_entries.c.member_number == number)
        .where(schema.pledges.c.person_key == person)
        .order_by(schema.pledges.c.paid_at.desc(), schema.pledges.c.id.desc())
    ).all()
    if not rows:
        raise UserInputError(f"member {number} has no payment recorded for their shares")
    window = (date.fromisoformat(today) - timedelta(days=CARD_REFUND_DAYS)).isoformat()
    for row in rows:
        owed = int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(schema.remainders.c.amount), 0)).where(
                    schema.remainders.c.pledge_id == row.id,
                    schema.remainders.c.status != "refunded",
                )
            ).scalar()
            or 0
        )
        headroom = int(row.paid_amount) - int(row.refunded_amount) - owed
        recent = (row.paid_at or "")[:10] >= window
        if remainders.method_of(row) == remainders.CARD and recent and headroom >= amount:
            return row, remainders.CARD
    return rows[0], remainders.BANK


def pay(
    ledger: Ledger,
    campaign: Campaign,
    request_id: int,
    *,
    today: str,
    now: str | None = None,
    dry_run: bool = False,
) -> tuple[Request, Withdrawal]:
    """The notice has run: the withdrawal entry is written and the money listed to go back."""
    with ledger.write(now) as tx:
        row = tx.conn.execute(
            sa.select(schema.withdrawal_requests).where(
                schema.withdrawal_requests.c.id == request_id
            )
        ).first()
        if row is None:
            raise NotFound(
                f"withdrawal request {request_id} does not exist: "
                "see `fundraiser members withdrawals`"
            )
        if row.status != RequestStatus.WAITING.value:
            raise UserInputError(f"withdrawal request {request_id} is already {row.status}")
        if row.due_on > today:
            raise UserInputError(
                f"withdrawal request {request_id} is within its notice period: it can be "
                f"paid from {row.due_on}"
            )
        number, shares = int(row.member_number), int(row.shares)
        amount = campaign.shares.price * shares
        held, _ = register.holding(tx.conn, number)
        if shares > held:  # shares left meanwhile (a withdrawal with --waive-notice)
            raise UserInputError(
                f"withdrawal request {request_id} asks for {shares} shares but member {number} "
                f"holds {held} now: record a new request for what they hold"
            )
        pledge, method = _repaying_pledge(tx.conn, number, amount.amount, today)
        if dry_run:
            done = Withdrawal(number, None, shares, amount, held - shares, held == shares)
            return _as_request(row, tx, method, amount), done
        entry = register.enter_withdrawal(
            tx, number, shares, amount, today=today, note=f"request {request_id}"
        )
        first = int(tx.conn.execute(sa.select(sa.func.max(schema.remainders.c.id))).scalar() or 0)
        tx.insert(
            schema.remainders,
            ("id", "pledge_id", "person_key", "amount", "currency", "reason", "status"),
            [
                (
                    first + 1,
                    pledge.id,
                    pledge.person_key,
                    amount.amount,
                    amount.currency,
                    WITHDRAWAL,
                    RemainderStatus.DUE.value,
                )
            ],
            {"created_at": tx.now},
        )
        tx.update(
            schema.withdrawal_requests,
            {"id": request_id},
            status=RequestStatus.PAID.value,
            entry_id=entry.entry_id,
            method=method,
            updated_at=tx.now,
        )
        tx.record(
            "register.withdraw",
            f"member:{number}",
            {
                "member": number,
                "request": request_id,
                "entry": entry.entry_id,
                "shares": shares,
                "amount": amount.amount,
                "ceased": entry.ceased,
                "balance_certificate": entry.balance_certificate,
                "remainder": first + 1,
                "method": method,
            },
        )
        done = Withdrawal(
            number,
            entry.entry_id,
            shares,
            amount,
            entry.holding_after,
            entry.ceased,
            entry.balance_certificate,
        )
        return _as_request(row, tx, method, amount, RequestStatus.PAID, entry.entry_id), done


def _as_request(
    row: Any,
    tx: Tx,
    method: str,
    amount: Money,
    status: RequestStatus = RequestStatus.WAITING,
    entry_id: int | None = None,
) -> Request:
    name = register.get_member(tx.conn, int(row.member_number)).name
    return Request(
        row.id,
        row.member_number,
        name,
        row.shares,
        amount,
        row.requested_on,
        row.due_on,
        status.value,
        entry_id,
        method,
    )
