"""Pledges an organizer records by hand: a seed commitment or a bank transfer.

Recording one, and marking its transfer arrived, are ledger changes; telling
the backer is the organizer's choice (`--notify`), queued in the same
transaction so the mail goes out exactly when the change is made. The state
machine (pledges.py) knows nothing of mail: this module is its caller.
"""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from fundraiser import acknowledge, outbox, pledges
from fundraiser.errors import UserInputError
from fundraiser.ledger import Ledger, schema
from fundraiser.money import Money
from fundraiser.pledges import BY_HAND, NewPledge, Pledge, Status


def record_offline(
    ledger: Ledger,
    item: NewPledge,
    *,
    dry_run: bool = False,
    now: str | None = None,
    notify: bool = False,
) -> int | None:
    """Record one offline pledge (a bank transfer or promise); None on a dry run.

    With `notify`, the backer's "we have your pledge" mail is queued with it.
    """
    if item.reference:
        item = replace(item, request_key=f"ref:{item.reference}")
    with ledger.write(now) as tx:
        if (
            item.request_key
            and tx.execute(
                sa.select(schema.pledges.c.id).where(
                    schema.pledges.c.request_key == item.request_key
                )
            ).first()
        ):
            raise UserInputError(
                f"reference {item.reference!r} is already recorded: "
                "give each payment its own reference"
            )
        if dry_run:
            return None
        pledge_id = pledges.create(tx, item)
        if notify:
            outbox.queue_many(tx, acknowledge.rows([pledge_id], [item], tx.now))
        return pledge_id


def mark_paid(
    ledger: Ledger,
    pledge_id: int,
    *,
    reference: str | None = None,
    now: str | None = None,
    notify: bool = False,
) -> Pledge:
    """A bank transfer arrived for an offline pledge; with `notify`, the backer is told."""
    with ledger.write(now) as tx:
        pledge = pledges.get(tx.conn, pledge_id)
        if pledge.source not in BY_HAND:
            raise UserInputError(
                f"pledge {pledge_id} is paid by card through Stripe: "
                "its payment is recorded from Stripe, not by hand"
            )
        paid = pledges.transition(
            tx, pledge_id, Status.PAID, reason="bank transfer received", reference=reference
        )
        if notify:
            outbox.queue_many(
                tx,
                [receipt(pledge_id, email=paid.email, name=paid.name, paid=paid.paid, now=tx.now)],
            )
        return paid


def receipt(pledge_id: int, *, email: str, name: str, paid: Money, now: str) -> outbox.Row:
    """The backer's "payment received" mail: once per pledge, however it was marked paid
    (by hand here, or by a bank statement's import)."""
    return outbox.message(
        outbox.Kind.PAYMENT_RECEIVED,
        f"pledge-{pledge_id}-paid",
        to_email=email,
        to_name=name,
        data={"pledge_id": pledge_id, "amount": paid.amount, "currency": paid.currency},
        now=now,
        pledge_id=pledge_id,
    )
