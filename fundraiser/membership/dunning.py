"""Dunning: the mails that follow an unpaid membership fee.

When a fee payment fails, the member gets a mail with a fresh sign-in link to
their page, where they change the card (queued by the webhook, in the same
write as the failure). When the grace days run out and the membership lapses,
another mail says so: lapsing is read from the day (fees.standing), not
written by an event, so `fundraiser members lapse` (run daily, like `mail
send`) queues it, once per unpaid period. Each mail once per cause (its
dedupe key), so rerunning either changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import sqlalchemy as sa

from fundraiser import outbox
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.membership import fees

#: How long a dunning mail's sign-in link works: days, as mail is read late.
LINK_LIFETIME = timedelta(days=3)
#: Builds a member's sign-in link (None when the service's address is not known).
LinkFor = Callable[[int], str | None]


def _member(tx: Tx, number: int | None) -> Any:
    if number is None:
        return None
    return tx.conn.execute(
        sa.select(
            schema.members.c.number,
            schema.members.c.name,
            schema.members.c.email,
            schema.members.c.ceased_on,
        ).where(schema.members.c.number == number)
    ).first()


def fee_failed(tx: Tx, event: fees.FeeEvent, link_for: LinkFor, *, grace_days: int) -> bool:
    """Queue the "your fee payment failed" mail for this failed invoice (once)."""
    sub = tx.conn.execute(
        sa.select(
            schema.fee_subscriptions.c.id,
            schema.fee_subscriptions.c.member_number,
            schema.fee_subscriptions.c.ended_at,
        ).where(schema.fee_subscriptions.c.stripe_subscription == event.subscription)
    ).first()
    member = _member(tx, sub.member_number if sub is not None else None)
    if sub is None or member is None or not member.email or member.ceased_on or sub.ended_at:
        return False
    lapses = date.fromisoformat(event.period_start) + timedelta(days=grace_days)
    return outbox.queue(
        tx,
        outbox.Kind.FEE_FAILED,
        f"fee-failed:{event.invoice}",
        to_email=member.email,
        to_name=member.name,
        member_number=member.number,
        data={
            "amount": event.amount,
            "currency": event.currency,
            "period_start": event.period_start,
            "lapses_on": lapses.isoformat(),
            "link": link_for(member.number),
        },
    )


def lapsed(
    ledger: Ledger, *, today: date, grace_days: int, link_for: LinkFor, now: str | None = None
) -> int:
    """Queue the "your membership has lapsed" mail for each fee lapsed today; how many."""
    queued = 0
    with ledger.write(now) as tx:
        found = fees.latest_by_member(fees.fees(tx.conn, today=today, grace_days=grace_days))
        for number, fee in sorted(found.items()):
            if fee.standing != fees.Standing.LAPSED:
                continue
            member = _member(tx, number)
            if member is None or not member.email or member.ceased_on:
                continue
            queued += outbox.queue(
                tx,
                outbox.Kind.FEE_LAPSED,
                f"fee-lapsed:{fee.subscription_id}:{fee.overdue_since}",
                to_email=member.email,
                to_name=member.name,
                member_number=number,
                data={
                    "amount": fee.amount.amount,
                    "currency": fee.amount.currency,
                    "overdue_since": fee.overdue_since,
                    "lapsed_on": fee.lapses_on,
                    "link": link_for(number),
                },
            )
    return queued
