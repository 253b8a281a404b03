"""Closing a pending pledge's card form at Stripe, so it can no longer take money.

An online pledge is pending from the moment its SetupIntent or PaymentIntent
exists until the backer completes the card form. Cancelling such a pledge only
in our ledger would leave the form open: the backer's page could still save
the card or, in a keep-it-all campaign, take the money for a pledge we call
cancelled. So the intent is cancelled at Stripe first, and Stripe's answer
decides: a form completed a moment before is applied like any completion.

Used by the backer's private link, by `fundraiser pledges cancel`, by
`fundraiser stripe sync`, which closes forms left open past a time limit
(a backer who closed the tab) so a limited tier's place comes back, and by
`fundraiser collect`, which closes every form still open at the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import stripe

from fundraiser import pledges as pledges_mod
from fundraiser.errors import InvalidTransition, NotFound, PaymentError
from fundraiser.ledger import Ledger, pledges
from fundraiser.payments.client import StripeUnavailable, as_dict, opts, stripe_errors
from fundraiser.payments.events import Context, apply_intent, pledge_row
from fundraiser.payments.intents import ensure_attached, retrieve_intent
from fundraiser.pledges import Pledge, Status

#: How long an unfinished card form holds its pledge (and a limited tier's place)
#: before `stripe sync` closes it. A card form takes minutes, 3-D Secure included.
ABANDON_AFTER = timedelta(hours=2)


def close(
    client: stripe.StripeClient, ctx: Context, pledge_id: int, intent_id: str
) -> dict[str, Any]:
    """Cancel the intent at Stripe unless it is already complete; the intent as Stripe has it.

    Read first: a completed form is returned as it is (the emulator would
    cancel even a succeeded SetupIntent). A refused cancel means the form was
    completed, or closed, between the read and the cancel: read it again.
    """
    found = retrieve_intent(client, intent_id)
    if found.get("status") in ("succeeded", "canceled", "processing"):
        return found
    v1 = client.v1
    key = opts(ctx.keys.key(pledge_id, "close"))
    try:
        with stripe_errors(f"closing pledge {pledge_id}'s card form"):
            if intent_id.startswith("pi_"):
                return as_dict(v1.payment_intents.cancel(intent_id, options=key))
            return as_dict(v1.setup_intents.cancel(intent_id, options=key))
    except StripeUnavailable:
        raise
    except PaymentError:
        return retrieve_intent(client, intent_id)


def withdraw(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    pledge_id: int,
    *,
    reason: str,
    only_if_unfinished: bool = False,
    now: str | None = None,
) -> Pledge:
    """Cancel a pledge, closing its card form at Stripe first if it has an open one.

    With `only_if_unfinished` (the abandoned-form sweep), a pledge whose form
    turns out to have been completed is brought up to date and kept.
    """
    with ledger.read() as conn:
        row = pledge_row(conn, id=pledge_id)
    if row is None:
        raise NotFound(f"pledge {pledge_id} does not exist: see `fundraiser pledges list`")
    intent_id = row.stripe_intent or ""
    if Status(row.status) is Status.PENDING and intent_id:
        intent = close(client, ctx, pledge_id, intent_id)
        if intent.get("status") == "processing":  # money on its way: never cancel under it
            if only_if_unfinished:
                with ledger.read() as conn:
                    return pledges_mod.get(conn, pledge_id)
            raise InvalidTransition(
                f"pledge {pledge_id}'s payment is being processed: try again once it settles"
            )
        ensure_attached(client, intent)  # a card saved just before: usable if kept
        # Stripe's answer first, in its own transaction: money taken a moment
        # ago must be on the ledger even if the cancel below is refused.
        with ledger.write(now) as tx:
            apply_intent(tx, ctx, intent)
    with ledger.write(now) as tx:
        current = pledges_mod.get(tx.conn, pledge_id)
        if current.status is Status.PENDING or (
            not only_if_unfinished and Status.CANCELLED in pledges_mod.TRANSITIONS[current.status]
        ):
            return pledges_mod.transition(tx, pledge_id, Status.CANCELLED, reason=reason)
    if only_if_unfinished:
        return current
    if current.status is Status.PAID:
        raise InvalidTransition(
            f"pledge {pledge_id} is paid: it can no longer be cancelled, only refunded"
        )
    raise InvalidTransition(f"pledge {pledge_id} is {current.status.value} and cannot be cancelled")


def abandoned(ledger: Ledger, before: datetime) -> list[int]:
    """Online pledges still pending whose card form was opened before `before`."""
    with ledger.read() as conn:
        rows = conn.execute(
            sa.select(pledges.c.id, pledges.c.created_at)
            .where(pledges.c.source == "online", pledges.c.status == Status.PENDING.value)
            .order_by(pledges.c.id)
        )
        # Compared as moments, not text: stored stamps may differ in precision.
        return [int(pid) for pid, at in rows if _moment(at) < before]


def close_abandoned(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    *,
    now: datetime,
    after: timedelta = ABANDON_AFTER,
    stored_now: str | None = None,
    pace: Callable[[], None] | None = None,
) -> list[int]:
    """Close card forms left unfinished for longer than `after`; the pledges cancelled.

    `pace` is called before each of a closing's two Stripe calls (a rate limiter).
    """
    hours = after.total_seconds() / 3600
    reason = f"abandoned: the card form was not completed within {hours:g} hours"
    closed = []
    for pledge_id in abandoned(ledger, now - after):
        if pace is not None:
            pace()
            pace()
        pledge = withdraw(
            ledger, client, ctx, pledge_id, reason=reason, only_if_unfinished=True, now=stored_now
        )
        if pledge.status is Status.CANCELLED:
            closed.append(pledge_id)
    return closed


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
