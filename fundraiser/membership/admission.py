"""Joining after the campaign: applications, the board's decision, and top-ups.

A pledge made after the campaign's deadline (when campaign.toml has a
[membership] table) is not part of the founding issue: once paid it becomes an
application, one per pledge. A person who is not a member applies to join; a
member buying more shares tops up. Top-ups need no decision and are issued at
once; joins are admitted at once when the rules say admission is automatic,
else they wait for the board (`members admit`, `members decline`).

Admission is the founding issue's own code (issuing.issue_pledges): the same
allocation (whole shares, the cap, remainders for what is left), member
numbers continuing from the register, an issue entry with the next
certificate number, and the same welcome mail. A decline keeps no shares: the
whole payment is owed back as a remainder (card ones go back through Stripe by
`fundraiser refunds send`, with its idempotency key), and the person is told.

Every step is one write; rerunning any of them after a crash does nothing twice.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import issuing, outbox, remainders
from fundraiser.config import Admission, Campaign, Membership
from fundraiser.errors import NotConfigured, NotFound, UserInputError
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.money import Money
from fundraiser.pledges import Status
from fundraiser.remainders import RemainderStatus


class Kind(enum.StrEnum):
    JOIN = "join"  # a person who is not a member asks to become one
    TOP_UP = "top-up"  # a member buys more shares


class AppStatus(enum.StrEnum):
    WAITING = "waiting"
    ADMITTED = "admitted"  # shares issued (a top-up is admitted at once)
    DECLINED = "declined"  # no shares; the payment is owed back


#: The remainder reason of a declined application's money.
DECLINED = "declined"
_REASON_LIMIT = 500


def membership_of(campaign: Campaign) -> Membership:
    if campaign.membership is None:
        raise NotConfigured(
            "campaign.toml has no [membership] table: add one to let people join after "
            "the campaign (see the example campaign.toml)"
        )
    return campaign.membership


@dataclass(frozen=True)
class Application:
    id: int
    pledge_id: int
    kind: str
    status: str
    name: str
    email: str
    amount: Money
    shares: int  # whole shares the payment buys
    paid_at: str | None
    member_number: int | None
    decided_on: str | None
    reason: str | None

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "pledge_id": self.pledge_id,
            "kind": self.kind,
            "status": self.status,
            "name": self.name,
            "email": self.email,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "shares": self.shares,
            "paid_at": self.paid_at,
            "member_number": self.member_number,
            "decided_on": self.decided_on,
            "reason": self.reason,
        }


def _current_members(conn: Connection, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    rows = conn.execute(
        sa.select(schema.members.c.person_key).where(
            schema.members.c.person_key.in_(keys), schema.members.c.ceased_on.is_(None)
        )
    )
    return set(rows.scalars())


def gather(tx: Tx, campaign: Campaign) -> list[int]:
    """Record each paid pledge made after the campaign as an application, once.

    Returns the new applications' ids. Called before every listing and
    decision, and after a payment is recorded, so a payment recorded by any
    path (a webhook, a bank statement, by hand) becomes an application.
    """
    cutoff = issuing.founding_cutoff(campaign)
    if cutoff is None:
        return []
    pledges, apps = schema.pledges, schema.applications
    rows = tx.conn.execute(
        sa.select(pledges.c.id, pledges.c.person_key)
        .where(
            pledges.c.status == Status.PAID.value,
            pledges.c.allotted_at.is_(None),
            pledges.c.created_at >= cutoff,
            ~sa.exists().where(apps.c.pledge_id == pledges.c.id),
        )
        .order_by(pledges.c.id)
    ).all()
    if not rows:
        return []
    members = _current_members(tx.conn, sorted({r.person_key for r in rows}))
    first = int(tx.conn.execute(sa.select(sa.func.max(apps.c.id))).scalar() or 0) + 1
    made = [
        (first + n, r.id, (Kind.TOP_UP if r.person_key in members else Kind.JOIN).value)
        for n, r in enumerate(rows)
    ]
    tx.insert(
        apps,
        ("id", "pledge_id", "kind"),
        made,
        {"status": AppStatus.WAITING.value, "created_at": tx.now, "updated_at": tx.now},
    )
    waiting = [(a, p) for a, p, k in made if k == Kind.JOIN.value]
    if waiting and membership_of(campaign).admission == Admission.BOARD:
        _tell_received(tx, waiting)
    tx.record(
        "membership.apply",
        "applications",
        {"applications": [[a, p, k] for a, p, k in made]},
    )
    return [a for a, _, _ in made]


def _tell_received(tx: Tx, waiting: list[tuple[int, int]]) -> None:
    """Tell each person whose application waits for the board that their payment
    arrived and what happens next (journalled with the applications)."""
    p = schema.pledges.c
    found = {
        row.id: row
        for row in tx.conn.execute(
            sa.select(p.id, p.name, p.email, p.paid_amount, p.refunded_amount, p.currency).where(
                p.id.in_([pledge for _, pledge in waiting])
            )
        )
    }
    outbox.queue_many(
        tx,
        [
            outbox.message(
                outbox.Kind.APPLICATION_RECEIVED,
                f"application-{application}-received",
                to_email=found[pledge].email,
                to_name=found[pledge].name,
                data={
                    "amount": found[pledge].paid_amount - found[pledge].refunded_amount,
                    "currency": found[pledge].currency,
                },
                now=tx.now,
                pledge_id=pledge,
            )
            for application, pledge in waiting
        ],
        record=False,
    )


@dataclass(frozen=True)
class Admitted:
    applications: list[int]
    members_admitted: int
    first_member: int | None
    last_member: int | None
    shares: int
    refunds: Money  # remainders made (fractions, over the cap)

    def as_json(self) -> dict[str, Any]:
        return {
            "applications": self.applications,
            "members_admitted": self.members_admitted,
            "first_member": self.first_member,
            "last_member": self.last_member,
            "shares": self.shares,
            "refunds": self.refunds.amount,
            "currency": self.refunds.currency,
        }


def _waiting(tx: Tx, ids: list[int]) -> list[Any]:
    apps = schema.applications
    rows = tx.conn.execute(
        sa.select(apps.c.id, apps.c.pledge_id, apps.c.status, apps.c.kind)
        .where(apps.c.id.in_(ids))
        .order_by(apps.c.id)
    ).all()
    found = {r.id for r in rows}
    missing = [i for i in ids if i not in found]
    if missing:
        raise NotFound(
            f"application {missing[0]} does not exist: see `fundraiser members applications`"
        )
    for r in rows:
        if r.status != AppStatus.WAITING.value:
            raise UserInputError(
                f"application {r.id} is already {r.status}: only waiting applications "
                "can be admitted or declined"
            )
    return list(rows)


def _admit(tx: Tx, campaign: Campaign, rows: list[Any], today: str) -> Admitted:
    membership = membership_of(campaign)
    terms = replace(campaign.shares, min_shares=membership.min_shares_to_join)
    pledge_ids = [r.pledge_id for r in rows]
    result = issuing.issue_pledges(tx, campaign, pledge_ids, terms=terms, today=today)
    numbers: dict[int, int] = {
        int(pledge_id): int(number)
        for pledge_id, number in tx.conn.execute(
            sa.select(schema.pledges.c.id, schema.members.c.number)
            .select_from(
                schema.pledges.join(
                    schema.members, schema.members.c.person_key == schema.pledges.c.person_key
                )
            )
            .where(schema.pledges.c.id.in_(pledge_ids))
        )
    }
    for r in rows:
        number = numbers.get(r.pledge_id)
        tx.update(
            schema.applications,
            {"id": r.id},
            status=AppStatus.ADMITTED.value if number else AppStatus.DECLINED.value,
            member_number=number,
            decided_on=today,
            updated_at=tx.now,
        )
    tx.record(
        "membership.admit",
        "applications",
        {"applications": [r.id for r in rows], "members": sorted(set(numbers.values()))},
    )
    return Admitted(
        [r.id for r in rows],
        result.members_admitted,
        result.first_member,
        result.last_member,
        result.shares,
        result.refund_total,
    )


def admit(
    ledger: Ledger,
    campaign: Campaign,
    ids: list[int],
    *,
    today: str,
    now: str | None = None,
    dry_run: bool = False,
) -> Admitted:
    """The board admits these waiting applications: shares issued, members numbered on."""
    if not ids:
        raise UserInputError("name at least one application: see `fundraiser members applications`")
    membership_of(campaign)
    with ledger.write(now) as tx:
        gather(tx, campaign)
        rows = _waiting(tx, sorted(set(ids)))
        if dry_run:
            return Admitted([r.id for r in rows], 0, None, None, 0, Money(0, campaign.currency))
        return _admit(tx, campaign, rows, today)


def settle(ledger: Ledger, campaign: Campaign, *, today: str, now: str | None = None) -> Admitted:
    """Record new applications; issue the top-ups, and the joins when admission is automatic."""
    membership_of(campaign)
    with ledger.write(now) as tx:
        return settle_in(tx, campaign, today=today)


def settle_in(tx: Tx, campaign: Campaign, *, today: str) -> Admitted:
    """`settle` in the caller's write: a card payment and the admission it allows
    in one transaction (the webhook's), so neither is ever kept without the other."""
    membership = membership_of(campaign)
    gather(tx, campaign)
    apps = schema.applications
    query = sa.select(apps.c.id, apps.c.pledge_id, apps.c.status, apps.c.kind).where(
        apps.c.status == AppStatus.WAITING.value
    )
    if membership.admission != Admission.AUTOMATIC:
        query = query.where(apps.c.kind == Kind.TOP_UP.value)
    rows = list(tx.conn.execute(query.order_by(apps.c.id)).all())
    if not rows:
        return Admitted([], 0, None, None, 0, Money(0, campaign.currency))
    return _admit(tx, campaign, rows, today)


@dataclass(frozen=True)
class Declined:
    application: int
    pledge_id: int
    amount: Money
    method: str  # card or bank: how the money goes back
    remainder_id: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "application": self.application,
            "pledge_id": self.pledge_id,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "method": self.method,
            "remainder_id": self.remainder_id,
        }


def decline(
    ledger: Ledger,
    campaign: Campaign,
    application_id: int,
    *,
    reason: str,
    today: str,
    now: str | None = None,
    dry_run: bool = False,
) -> Declined:
    """The board declines an application: no shares, the payment owed back, the person told."""
    membership_of(campaign)
    words = " ".join(reason.split())
    if not words:
        raise UserInputError("--reason is empty: say why, in words the person will read")
    if len(words) > _REASON_LIMIT:
        raise UserInputError(f"--reason is {len(words)} characters: keep it to {_REASON_LIMIT}")
    with ledger.write(now) as tx:
        gather(tx, campaign)
        (row,) = _waiting(tx, [application_id])
        pledge = tx.conn.execute(
            sa.select(schema.pledges).where(schema.pledges.c.id == row.pledge_id)
        ).one()
        held = Money(int(pledge.paid_amount) - int(pledge.refunded_amount), pledge.currency)
        method = remainders.method_of(pledge)
        if dry_run:
            return Declined(application_id, row.pledge_id, held, method, None)
        tx.update(schema.pledges, {"id": row.pledge_id}, allotted_at=tx.now)
        remainder_id = None
        if held.amount > 0:
            remainder_id = (
                int(tx.conn.execute(sa.select(sa.func.max(schema.remainders.c.id))).scalar() or 0)
                + 1
            )
            tx.insert(
                schema.remainders,
                ("id", "pledge_id", "person_key", "amount", "currency", "reason", "status"),
                [
                    (
                        remainder_id,
                        row.pledge_id,
                        pledge.person_key,
                        held.amount,
                        held.currency,
                        DECLINED,
                        RemainderStatus.DUE.value,
                    )
                ],
                {"created_at": tx.now},
            )
        tx.update(
            schema.applications,
            {"id": application_id},
            status=AppStatus.DECLINED.value,
            decided_on=today,
            reason=words,
            updated_at=tx.now,
        )
        outbox.queue_many(
            tx,
            [
                outbox.message(
                    outbox.Kind.APPLICATION_DECLINED,
                    f"application-{application_id}-declined",
                    to_email=pledge.email,
                    to_name=pledge.name,
                    data={
                        "reason": words,
                        "amount": held.amount,
                        "currency": held.currency,
                        "method": method,
                        "decided_on": today,
                    },
                    now=tx.now,
                    pledge_id=row.pledge_id,
                )
            ],
            record=False,
        )
        tx.record(
            "membership.decline",
            f"application:{application_id}",
            {
                "application": application_id,
                "pledge": row.pledge_id,
                "owed": held.amount,
                "remainder": remainder_id,
            },
        )
        return Declined(application_id, row.pledge_id, held, method, remainder_id)


def applications(
    ledger: Ledger, campaign: Campaign, *, status: AppStatus | None = None, now: str | None = None
) -> list[Application]:
    """Applications (new ones recorded first), oldest first."""
    membership_of(campaign)
    with ledger.write(now) as tx:
        gather(tx, campaign)
    with ledger.read() as conn:
        return listing(conn, campaign, status=status)


def listing(
    conn: Connection, campaign: Campaign, *, status: AppStatus | None = None
) -> list[Application]:
    apps, pledges = schema.applications, schema.pledges
    query = (
        sa.select(
            apps,
            pledges.c.name,
            pledges.c.email,
            pledges.c.paid_amount,
            pledges.c.refunded_amount,
            pledges.c.currency,
            pledges.c.paid_at,
        )
        .select_from(apps.join(pledges, pledges.c.id == apps.c.pledge_id))
        .order_by(apps.c.id)
    )
    if status is not None:
        query = query.where(apps.c.status == status.value)
    price = campaign.shares.price.amount
    found = []
    for r in conn.execute(query):
        held = int(r.paid_amount) - int(r.refunded_amount)
        found.append(
            Application(
                r.id,
                r.pledge_id,
                r.kind,
                r.status,
                r.name,
                r.email,
                Money(held, r.currency),
                held // price,
                r.paid_at,
                r.member_number,
                r.decided_on,
                r.reason,
            )
        )
    return found
