"""Reconcile the ledger with Stripe: a webhook that never arrived loses nothing.

Two passes, both safe to interrupt and rerun:
1. Stripe's event list (30 days), from a saved cursor: each event goes through
   the webhook's own store-and-apply, so one seen before is a no-op.
2. Re-reading intents: pending pledges whose card form may have been
   completed, and charges an interrupted `collect` left in flight.
3. Removing our customers and card forms at Stripe that no pledge names (a
   service stopped between making them and recording them: leftovers.sweep).
4. Closing card forms left unfinished too long (cardforms.close_abandoned):
   the backer left, and a limited tier's place comes back; and removing saved
   cards and customer records of pledges that ended unpaid (cardforms.forget_unpaid).
The cursor only moves forward after a pass completes, minus an overlap, so
events that share a second (or arrive late) are never skipped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import stripe

from fundraiser.config import Campaign
from fundraiser.ledger import Ledger, schema
from fundraiser.membership.joining import admitted as joined_members
from fundraiser.payments import cardforms, joining, leftovers
from fundraiser.payments.client import CardError, as_dict, stripe_errors
from fundraiser.payments.deferred import deferred_count, retry_deferred
from fundraiser.payments.events import Context, apply_intent
from fundraiser.payments.intents import ensure_attached, retrieve_intent
from fundraiser.payments.ratelimit import DEFAULT_RATE, RateLimiter
from fundraiser.payments.webhooks import prepare, store_and_apply
from fundraiser.pledges import Status

CURSOR_KEY = "stripe.sync.created"
#: Seconds re-read before the cursor: events created in the same second as the
#: last one seen, or stamped slightly out of order, are listed again (and skipped).
OVERLAP = 300


@dataclass
class SyncReport:
    listed: int = 0
    stored: int = 0
    applied: int = 0
    intents_checked: int = 0
    intents_moved: int = 0
    deferred: int = 0
    abandoned: list[int] = field(default_factory=list)
    cards_removed: list[int] = field(default_factory=list)
    customers_removed: list[int] = field(default_factory=list)
    #: Our objects at Stripe no pledge named, removed; and their pledges, cancelled.
    leftovers_removed: list[dict[str, Any]] = field(default_factory=list)
    leftover_pledges_cancelled: list[int] = field(default_factory=list)
    cursor: int | None = None
    notes: list[str] = field(default_factory=list)
    #: Joins paid on the site: members admitted, and members whose fee began.
    joined: list[int] = field(default_factory=list)
    fees_started: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "events_listed": self.listed,
            "events_new": self.stored,
            "events_applied": self.applied,
            "intents_checked": self.intents_checked,
            "intents_moved": self.intents_moved,
            "deferred": self.deferred,
            "abandoned": self.abandoned,
            "cards_removed": self.cards_removed,
            "customers_removed": self.customers_removed,
            "leftovers_removed": self.leftovers_removed,
            "leftover_pledges_cancelled": self.leftover_pledges_cancelled,
            "cursor": self.cursor,
            "notes": self.notes,
            "joined": self.joined,
            "fees_started": self.fees_started,
        }


def _cursor(ledger: Ledger) -> int | None:
    with ledger.read() as conn:
        value = conn.execute(
            sa.select(schema.state.c.value).where(schema.state.c.key == CURSOR_KEY)
        ).scalar()
    return None if value is None else int(value)


def _save_cursor(ledger: Ledger, value: int) -> None:
    with ledger.write() as tx:
        done = tx.execute(
            schema.state.update()
            .where(schema.state.c.key == CURSOR_KEY)
            .values(value=str(value), updated_at=tx.now)
        )
        if done.rowcount == 0:
            tx.execute(
                schema.state.insert().values(key=CURSOR_KEY, value=str(value), updated_at=tx.now)
            )
        tx.record("stripe.sync", "state", {"cursor": value})


def sync(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    *,
    page_size: int = 100,
    progress: Callable[[int], None] | None = None,
    now: datetime | None = None,
    abandon_after: timedelta = cardforms.ABANDON_AFTER,
    stored_now: str | None = None,
    rate: float = DEFAULT_RATE,
    campaign: Campaign | None = None,
    emulated: bool = False,
) -> SyncReport:
    report = SyncReport()
    with ledger.read() as conn:
        members_before = joined_members(conn) if campaign is not None else set()
    limiter = RateLimiter(rate)  # intents re-read and forms closed one call at a time
    cursor = _cursor(ledger)
    params: Any = {"limit": page_size}
    if cursor is not None:
        params["created"] = {"gte": max(cursor - OVERLAP, 0)}
    newest = cursor
    with stripe_errors("listing Stripe events"):
        events = client.v1.events.list(params=params)
        for item in events.auto_paging_iter():
            event = as_dict(item)
            report.listed += 1
            created = int(event.get("created") or 0)
            newest = created if newest is None else max(newest, created)
            raw = json.dumps(event, sort_keys=True)
            event = json.loads(raw)  # plain JSON, as a webhook would carry it
            receipt_ctx = prepare(ctx, event)
            with ledger.write() as tx:
                receipt = store_and_apply(tx, receipt_ctx, event, raw)
            if not receipt.duplicate:
                report.stored += 1
                if receipt.outcome is not None and receipt.outcome.value == "applied":
                    report.applied += 1
            if progress:
                progress(1)
    if newest is not None and newest != cursor:
        _save_cursor(ledger, newest)
    report.cursor = newest
    reread_intents(ledger, client, ctx, report, pace=limiter.wait)
    if campaign is not None:
        # Joins paid while nothing recorded it (a crash, a lost webhook): admitted
        # once each, and the fees of members admitted since begun.
        finished = joining.finish(ledger, client, ctx, campaign, emulated=emulated)
        report.fees_started = finished.fees_started
        report.notes.extend(finished.notes)
        with ledger.read() as conn:
            report.joined = sorted(joined_members(conn) - members_before)
    now = now or datetime.now(UTC)
    swept = leftovers.sweep(ledger, client, ctx, now=now, stored_now=stored_now, pace=limiter.wait)
    report.leftovers_removed = [item.as_json() for item in swept.removed]
    report.leftover_pledges_cancelled = swept.cancelled
    report.notes.extend(swept.notes)
    report.abandoned = cardforms.close_abandoned(
        ledger,
        client,
        ctx,
        now=now,
        after=abandon_after,
        stored_now=stored_now,
        pace=limiter.wait,
    )
    # What pledges that ended unpaid left at Stripe (a crash, an outage, or a
    # pledge abandoned above): saved cards and customer records.
    forgotten = cardforms.forget_unpaid(ledger, client, ctx, now=stored_now, pace=limiter.wait)
    report.cards_removed, report.customers_removed = forgotten.cards, forgotten.customers
    with ledger.write() as tx:
        retry_deferred(tx, ctx)
    with ledger.read() as conn:
        report.deferred = deferred_count(conn)
    report.notes.extend(ctx.notes)
    return report


def reread_intents(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    report: SyncReport,
    *,
    pace: Callable[[], None] | None = None,
) -> None:
    """Pending pledges with a card form, and charges left in flight: ask Stripe."""
    from fundraiser.ledger import schema

    with ledger.read() as conn:
        rows = list(
            conn.execute(
                sa.select(
                    schema.pledges.c.id, schema.pledges.c.stripe_intent, schema.pledges.c.status
                ).where(
                    schema.pledges.c.status.in_([Status.PENDING.value, Status.PROCESSING.value]),
                    schema.pledges.c.stripe_intent.is_not(None),
                )
            )
        )
    for _pledge_id, intent_id, status in rows:
        if status == Status.PROCESSING.value and not str(intent_id).startswith("pi_"):
            continue  # collect's own recovery finds that charge (or makes it)
        report.intents_checked += 1
        if pace is not None:
            pace()
        intent = retrieve_intent(client, str(intent_id))
        if pace is not None and intent.get("status") == "succeeded":
            pace()  # saving the card on its customer reads (and may write) once more
        try:
            ensure_attached(client, intent)
        except CardError:
            continue  # the bank refused to save the card: the pledge stays pending
        with ledger.write() as tx:
            outcome = apply_intent(tx, ctx, intent)
        if outcome.value == "applied":
            report.intents_moved += 1
