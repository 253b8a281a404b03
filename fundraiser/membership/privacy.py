"""Data rights: everything the ledger holds about a person, and erasure.

Data rights follow the law the co-op lives under. A backer who never became a
member can have their personal data erased: their pledges keep amounts and
dates for the accounts, with the person replaced by a placeholder, and the
Stripe events stored about their pledges lose their payloads. A member
cannot: a co-operative society must keep each member's name, postal address,
holding and dates in its register (Co-operative and Community Benefit
Societies Act 2014, s.30). For former members we keep the entry for
RETENTION_YEARS after they ceased, then allow erasure. The Act sets no period;
ten years follows the Companies Act 2006 s.121 rule for former members'
entries, a cautious reading the board can change here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import register
from fundraiser.errors import NotFound, Refused
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.outbox import MailStatus
from fundraiser.people import person_key
from fundraiser.pledges import Status
from fundraiser.remainders import OWED

RETENTION_YEARS = 10
ERASED = "(erased)"


def _mail_for(conn: Connection, key: str, pledge_ids: list[int], number: int | None) -> list[Any]:
    conditions = [sa.func.lower(sa.func.trim(schema.outbox.c.to_email)) == key]
    if pledge_ids:
        conditions.append(schema.outbox.c.pledge_id.in_(pledge_ids))
    if number is not None:
        conditions.append(schema.outbox.c.member_number == number)
    return list(
        conn.execute(
            sa.select(schema.outbox).where(sa.or_(*conditions)).order_by(schema.outbox.c.id)
        )
    )


def show(conn: Connection, email: str, currency: str) -> dict[str, Any]:
    """Everything the ledger holds about one person (a subject access request)."""
    key = person_key(email)
    pledge_rows = list(
        conn.execute(
            sa.select(schema.pledges)
            .where(schema.pledges.c.person_key == key)
            .order_by(schema.pledges.c.id)
        )
    )
    member = conn.execute(
        sa.select(schema.members).where(schema.members.c.person_key == key)
    ).first()
    pledge_ids = [r.id for r in pledge_rows]
    mail = _mail_for(conn, key, pledge_ids, member.number if member else None)
    if not pledge_rows and member is None and not mail:
        raise NotFound(
            f"no one with the email {email.strip()!r} is in the ledger "
            "(emails are compared without case): check the spelling"
        )
    result: dict[str, Any] = {"email": key, "member": None, "register_entries": []}
    if member is not None:
        shares, paid = register.holding(conn, member.number)
        result["member"] = {
            "number": member.number,
            "name": member.name,
            "email": member.email,
            "address": member.address,
            "admitted_on": member.admitted_on,
            "ceased_on": member.ceased_on,
            "shares": shares,
            "amount_paid": paid,
            "currency": currency,
        }
        entries = conn.execute(
            sa.select(schema.register_entries)
            .where(schema.register_entries.c.member_number == member.number)
            .order_by(schema.register_entries.c.id)
        )
        result["register_entries"] = [
            {
                "id": e.id,
                "kind": e.kind,
                "shares": e.shares,
                "amount": int(e.amount),
                "currency": e.currency,
                "certificate_number": e.certificate_number,
                "entry_date": e.entry_date,
                "pledge_id": e.pledge_id,
                "note": e.note,
            }
            for e in entries
        ]
    result["pledges"] = [
        {
            "id": r.id,
            "created_at": r.created_at,
            "name": r.name,
            "email": r.email,
            "address": r.address,
            "display_name": r.display_name,
            "round": r.round,
            "tier": r.tier,
            "amount": int(r.amount),
            "currency": r.currency,
            "status": r.status,
            "status_reason": r.status_reason,
            "source": r.source,
            "reference": r.reference,
            "paid": int(r.paid_amount),
            "paid_at": r.paid_at,
            "refunded": int(r.refunded_amount),
            "allotted_at": r.allotted_at,
            "stripe_customer": r.stripe_customer,
            "stripe_intent": r.stripe_intent,
            "stripe_charge": r.stripe_charge,
            "failure_code": r.failure_code,
        }
        for r in pledge_rows
    ]
    rems: list[Any] = (
        list(
            conn.execute(
                sa.select(schema.remainders)
                .where(schema.remainders.c.pledge_id.in_(pledge_ids))
                .order_by(schema.remainders.c.id)
            )
        )
        if pledge_ids
        else []
    )
    result["refunds"] = [
        {
            "id": r.id,
            "pledge_id": r.pledge_id,
            "amount": int(r.amount),
            "currency": r.currency,
            "reason": r.reason,
            "status": r.status,
            "refunded_at": r.refunded_at,
            "reference": r.refund_reference,
        }
        for r in rems
    ]
    result["mail"] = [
        {
            "id": m.id,
            "kind": m.kind,
            "to_email": m.to_email,
            "to_name": m.to_name,
            "status": m.status,
            "created_at": m.created_at,
            "sent_at": m.sent_at,
            "attempts": m.attempts,
        }
        for m in mail
    ]
    result.update(_after_campaign(conn, pledge_ids, member.number if member else None))
    return result


@dataclass(frozen=True)
class Erasure:
    pledges: list[int]
    mail_deleted: int
    mail_erased: int
    member: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "pledges": self.pledges,
            "mail_deleted": self.mail_deleted,
            "mail_erased": self.mail_erased,
            "member": self.member,
        }


# A pledge still open keeps its person: money may yet move (pledges.UNSETTLED),
# or the bank's decision on a dispute needs the record. Each says what to do.
STILL_OPEN = {
    Status.PENDING.value: "is pending: cancel it first (`fundraiser pledges cancel {id}`)",
    Status.AUTHORIZED.value: "has a saved card: cancel it first (`fundraiser pledges cancel {id}`)",
    Status.PROCESSING.value: "is being charged: wait for the charge to finish",
    Status.PAYMENT_FAILED.value: "is waiting for a card fix: let it lapse or cancel it first",
    Status.DISPUTED.value: "is disputed: the bank's decision needs the record",
}


def retention_ends(ceased_on: str) -> date:
    ceased = date.fromisoformat(ceased_on)
    try:
        return ceased.replace(year=ceased.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return ceased.replace(year=ceased.year + RETENTION_YEARS, day=28)


def forget(
    ledger: Ledger, email: str, *, today: str, now: str | None = None, dry_run: bool = False
) -> Erasure:
    """Erase a person's personal data, or refuse and say why (Refused)."""
    key = person_key(email)
    with ledger.write(now) as tx:
        member = tx.execute(
            sa.select(schema.members).where(schema.members.c.person_key == key)
        ).first()
        rows = list(
            tx.execute(
                sa.select(schema.pledges)
                .where(schema.pledges.c.person_key == key)
                .order_by(schema.pledges.c.id)
            )
        )
        ids = [r.id for r in rows]
        mail = _mail_for(tx.conn, key, ids, member.number if member else None)
        if not rows and member is None and not mail:
            raise NotFound(
                f"no one with the email {email.strip()!r} is in the ledger "
                "(emails are compared without case): check the spelling"
            )
        number = member.number if member is not None else None
        if member is not None:
            _check_member_erasable(tx.conn, member, today)
        for r in rows:
            reason = STILL_OPEN.get(r.status)
            if reason is None and r.status == Status.PAID.value and r.allotted_at is None:
                reason = "is paid but not yet turned into shares: issue or refund it first"
            if reason:
                raise Refused(
                    f"cannot erase {email.strip()}: pledge {r.id} {reason.format(id=r.id)}"
                )
        owed = _remainder_totals_due(tx.conn, ids)
        if owed:
            raise Refused(
                f"cannot erase {email.strip()}: a refund is still owed to them on pledge(s) "
                f"{', '.join(map(str, owed))}; refund it first (`fundraiser refunds list`)"
            )
        if any(m.status == MailStatus.SENDING.value for m in mail):
            raise Refused(
                f"cannot erase {email.strip()} now: a mail to them is being sent; try again "
                "in a few minutes"
            )
        unsent = [m.id for m in mail if m.status != MailStatus.SENT.value]
        sent = [m.id for m in mail if m.status == MailStatus.SENT.value]
        if dry_run:
            return Erasure(ids, len(unsent), len(sent), number)
        for pid in ids:
            tx.update(
                schema.pledges,
                {"id": pid},
                person_key=f"erased:{pid}",
                name=ERASED,
                email=ERASED,
                address=ERASED,
                display_name=None,
                updated_at=tx.now,
            )
            tx.update(schema.remainders, {"pledge_id": pid}, person_key=f"erased:{pid}")
        scrubbed = _scrub_stripe_events(tx, ids)
        if ids:  # a bank account given for a refund; the board's words on an application
            tx.delete(schema.refund_accounts, {"pledge_id": ids})
            tx.update(schema.applications, {"pledge_id": ids}, reason=None)
        if unsent:
            tx.delete(schema.outbox, {"id": unsent})
        if sent:
            # The count and dates of mail sent stay (what we did); who it went to goes.
            tx.update(schema.outbox, {"id": sent}, to_email=ERASED, to_name=ERASED, data="{}")
        if member is not None:
            tx.update(
                schema.members,
                {"number": member.number},
                person_key=f"erased:member:{member.number}",
                name=ERASED,
                email=None,
                address=ERASED,
            )
        tx.record(
            "person.forget",
            f"pledges:{','.join(map(str, ids))}" if ids else f"member:{number}",
            {
                "pledges": ids,
                "mail_deleted": len(unsent),
                "mail_erased": len(sent),
                "stripe_events_erased": scrubbed,
                "member": number,
            },
        )
        return Erasure(ids, len(unsent), len(sent), number)


def _scrub_stripe_events(tx: Tx, pledge_ids: list[int]) -> int:
    """Erase stored Stripe events about these pledges: their payloads carry the
    backer's name, email and billing details. The event ids stay, so a webhook
    delivered again is still recognised and ignored."""
    if not pledge_ids:
        return 0
    rows = tx.execute(
        sa.select(
            schema.pledges.c.stripe_intent,
            schema.pledges.c.stripe_charge,
            schema.pledges.c.stripe_customer,
        ).where(schema.pledges.c.id.in_(pledge_ids))
    )
    stripe_ids = {value for row in rows for value in row if value}
    erased = 0
    for stripe_id in sorted(stripe_ids):
        done = tx.execute(
            schema.stripe_events.update()
            .where(schema.stripe_events.c.payload.contains(f'"{stripe_id}"', autoescape=True))
            .values(payload='{"erased": true}')
        )
        erased += done.rowcount or 0
    return erased


def _remainder_totals_due(conn: Connection, pledge_ids: list[int]) -> list[int]:
    if not pledge_ids:
        return []
    return sorted(
        set(
            conn.execute(
                sa.select(schema.remainders.c.pledge_id).where(
                    schema.remainders.c.pledge_id.in_(pledge_ids),
                    schema.remainders.c.status.in_([s.value for s in OWED]),
                )
            ).scalars()
        )
    )


def _check_member_erasable(conn: Connection, member: Any, today: str) -> None:
    number = member.number
    if member.ceased_on is None:
        held, _ = register.holding(conn, number)
        raise Refused(
            f"{member.email or 'this person'} is member {number} (holding {held} share(s)): "
            "a co-operative society must keep each member's name, postal address, holding "
            "and dates in its register of members (Co-operative and Community Benefit "
            "Societies Act 2014, s.30), so their details cannot be erased while they are a "
            "member. Correct wrong details instead; if they leave "
            f"(`fundraiser members withdraw {number} --shares {held}`), the entry is kept "
            f"for {RETENTION_YEARS} years after they cease"
        )
    ends = retention_ends(member.ceased_on)
    if date.fromisoformat(today) < ends:
        raise Refused(
            f"member {number} ceased on {member.ceased_on}: the register keeps former "
            "members' entries (Co-operative and Community Benefit Societies Act 2014, s.30; "
            f"kept here for {RETENTION_YEARS} years after they cease). "
            f"Their details can be erased from {ends.isoformat()}"
        )


def _after_campaign(conn: Connection, pledge_ids: list[int], number: int | None) -> dict[str, Any]:
    """A person's applications, membership fees and withdrawal requests."""
    apps = conn.execute(
        sa.select(schema.applications)
        .where(schema.applications.c.pledge_id.in_(pledge_ids))
        .order_by(schema.applications.c.id)
    )
    found: dict[str, Any] = {
        "applications": [
            {
                "id": a.id,
                "pledge_id": a.pledge_id,
                "kind": a.kind,
                "status": a.status,
                "decided_on": a.decided_on,
                "reason": a.reason,
            }
            for a in apps
        ],
        "fees": [],
        "withdrawal_requests": [],
    }
    if number is None:
        return found
    subs = conn.execute(
        sa.select(schema.fee_subscriptions)
        .where(schema.fee_subscriptions.c.member_number == number)
        .order_by(schema.fee_subscriptions.c.id)
    )
    found["fees"] = [
        {
            "id": f.id,
            "rate": f.rate,
            "amount": int(f.amount),
            "currency": f.currency,
            "interval": f.interval,
            "started_on": f.started_on,
            "paid_through": f.paid_through,
            "failing_since": f.failing_since,
            "ended_at": f.ended_at,
            "stripe_customer": f.stripe_customer,
        }
        for f in subs
    ]
    asked = conn.execute(
        sa.select(schema.withdrawal_requests)
        .where(schema.withdrawal_requests.c.member_number == number)
        .order_by(schema.withdrawal_requests.c.id)
    )
    found["withdrawal_requests"] = [
        {
            "id": w.id,
            "shares": w.shares,
            "requested_on": w.requested_on,
            "due_on": w.due_on,
            "status": w.status,
            "note": w.note,
        }
        for w in asked
    ]
    return found
