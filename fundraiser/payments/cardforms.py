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

A pledge that ends without a payment (cancelled, released, lapsed) will never
be charged, so Stripe should keep nothing of it for us: its saved card is
detached and its customer record (one per pledge: the backer's name and email)
deleted. Cancelling does it at once; `collect` and `stripe sync` sweep up any
left (after a crash, an outage, or a form abandoned), so a rerun finishes the job.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import stripe

from fundraiser import pledges
from fundraiser.cancel import record_cancel
from fundraiser.errors import InvalidTransition, NotFound, PaymentError
from fundraiser.ledger import Ledger, schema
from fundraiser.payments.client import StripeUnavailable, as_dict, opts, stripe_errors
from fundraiser.payments.events import Context, apply_intent, id_of, pledge_row
from fundraiser.payments.intents import ensure_attached, retrieve_intent
from fundraiser.pledges import ENDED_UNPAID, Pledge, Source, Status

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
                    return pledges.get(conn, pledge_id)
            raise InvalidTransition(
                f"pledge {pledge_id}'s payment is being processed: try again once it settles"
            )
        ensure_attached(client, intent)  # a card saved just before: usable if kept
        # Stripe's answer first, in its own transaction: money taken a moment
        # ago must be on the ledger even if the cancel below is refused.
        with ledger.write(now) as tx:
            apply_intent(tx, ctx, intent)
    with ledger.write(now) as tx:
        current = pledges.get(tx.conn, pledge_id)
        cancel = current.status is Status.PENDING or (
            not only_if_unfinished and Status.CANCELLED in pledges.TRANSITIONS[current.status]
        )
        if cancel:
            cancelled = record_cancel(tx, pledge_id, reason, notify=not only_if_unfinished)
    if cancel:
        # Best effort: the pledge is cancelled either way, and the next sync or
        # collect removes a card left behind.
        with contextlib.suppress(PaymentError):
            forget_unpaid(ledger, client, ctx, [pledge_id], now=now)
        return cancelled
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
            sa.select(schema.pledges.c.id, schema.pledges.c.created_at)
            .where(
                schema.pledges.c.source == Source.ONLINE.value,
                schema.pledges.c.status == Status.PENDING.value,
            )
            .order_by(schema.pledges.c.id)
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


@dataclass
class Forgotten:
    """What a sweep removed at Stripe, by pledge: saved cards, and customer records."""

    cards: list[int] = field(default_factory=list)
    customers: list[int] = field(default_factory=list)


def to_forget(ledger: Ledger, ids: list[int] | None = None) -> list[int]:
    """Online pledges that ended unpaid and still name a saved card or a Stripe customer."""
    query = (
        sa.select(schema.pledges.c.id)
        .where(
            schema.pledges.c.source == Source.ONLINE.value,
            schema.pledges.c.status.in_([s.value for s in ENDED_UNPAID]),
            schema.pledges.c.paid_amount == 0,
            sa.or_(
                schema.pledges.c.stripe_payment_method.is_not(None),
                schema.pledges.c.stripe_customer.is_not(None),
            ),
        )
        .order_by(schema.pledges.c.id)
    )
    if ids is not None:
        query = query.where(schema.pledges.c.id.in_(ids))
    with ledger.read() as conn:
        return [int(v) for v in conn.execute(query).scalars()]


def forget_unpaid(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    ids: list[int] | None = None,
    *,
    now: str | None = None,
    pace: Callable[[], None] | None = None,
) -> Forgotten:
    """Remove at Stripe what pledges that ended unpaid left there: the saved card, then
    the customer record (the backer's name and email; one per pledge, never charged).

    Each step is done at Stripe first, then forgotten in the ledger (journalled):
    a crash in between leaves the id, and the next sweep repeats the step, which
    Stripe answers from the idempotency key, as already detached, or as gone.
    """
    done = Forgotten()
    for pledge_id in to_forget(ledger, ids):
        with ledger.read() as conn:
            row = pledge_row(conn, id=pledge_id)
        if row is None:
            continue
        if row.stripe_payment_method:
            method = str(row.stripe_payment_method)
            with stripe_errors(f"removing pledge {pledge_id}'s saved card"):
                if pace is not None:
                    pace()
                found = client.v1.payment_methods.retrieve(method)
                if id_of(getattr(found, "customer", None)):  # still saved: detach it
                    if pace is not None:
                        pace()
                    client.v1.payment_methods.detach(
                        method, options=opts(ctx.keys.key(pledge_id, "detach"))
                    )
            if _forget(ledger, now, pledge_id, schema.pledges.c.stripe_payment_method, method):
                done.cards.append(pledge_id)
        if row.stripe_customer:
            customer = str(row.stripe_customer)
            if pace is not None:
                pace()
            _delete_customer(client, ctx, pledge_id, customer)
            if _forget(ledger, now, pledge_id, schema.pledges.c.stripe_customer, customer):
                done.customers.append(pledge_id)
    return done


def _delete_customer(
    client: stripe.StripeClient, ctx: Context, pledge_id: int, customer: str
) -> None:
    """Delete the pledge's customer at Stripe; one already gone counts as deleted."""
    with stripe_errors(f"removing pledge {pledge_id}'s customer record"):
        try:
            client.v1.customers.delete(customer, options=opts(ctx.keys.key(pledge_id, "forget")))
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:  # 404: deleted before (a rerun after a crash)
                raise


_FORGOTTEN = {
    "stripe_payment_method": "pledge.card_removed",
    "stripe_customer": "pledge.customer_removed",
}


def _forget(
    ledger: Ledger, now: str | None, pledge_id: int, column: sa.Column[Any], value: str
) -> bool:
    """Clear one Stripe id on the pledge, if it still holds it; journalled."""
    with ledger.write(now) as tx:
        held = tx.execute(sa.select(column).where(schema.pledges.c.id == pledge_id)).scalar()
        if held != value:
            return False
        # By id: the journal keeps a fingerprint of the Stripe id, which cannot pick a row.
        tx.update(schema.pledges, {"id": pledge_id}, **{column.name: None, "updated_at": tx.now})
        tx.record(_FORGOTTEN[column.name], f"pledge:{pledge_id}", {"id": pledge_id})
    return True
