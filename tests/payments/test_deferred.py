"""Deferred Stripe events: one waiting for what a later event of the same write teaches."""

from __future__ import annotations

import json
import time
from typing import Any

import sqlalchemy as sa

from fundraiser.ledger import Ledger, open_ledger, schema
from fundraiser.money import Money
from fundraiser.payments.events import Context, Outcome
from fundraiser.payments.webhooks import Item, Receipt, apply_batch
from fundraiser.pledges import NewPledge, Source, create_many
from fundraiser.stripekeys import ledger_keys


def seed(ledger: Ledger, count: int) -> list[int]:
    items = [
        NewPledge(
            name=f"Backer {n}",
            email=f"backer{n}@example.org",
            address="1 Test Street",
            amount=Money(5000, "GBP"),
            round="crowd",
            source=Source.ONLINE,
            shares=1,
        )
        for n in range(count)
    ]
    with ledger.write() as tx:
        ids = create_many(tx, items)
        for pid in ids:
            tx.update(
                schema.pledges,
                {"id": pid},
                stripe_intent=f"seti_{pid}",
                stripe_customer=f"cus_{pid}",
                livemode=False,
            )
        tx.record("test.seed", "pledges", {"pledges": len(ids)})
    return ids


def card_saved(pid: int, namespace: str) -> dict[str, Any]:
    return {
        "id": f"evt_seti_{pid}",
        "object": "event",
        "type": "setup_intent.succeeded",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": f"seti_{pid}",
                "object": "setup_intent",
                "status": "succeeded",
                "customer": f"cus_{pid}",
                "payment_method": f"pm_{pid}",
                "metadata": {"pledge_id": str(pid), "ledger": namespace},
                "livemode": False,
            }
        },
    }


def charge_failed(pid: int, namespace: str) -> dict[str, Any]:
    """An off-session charge that failed: it waits for the card saved before it."""
    return {
        "id": f"evt_pi_failed_{pid}",
        "object": "event",
        "type": "payment_intent.payment_failed",
        "created": int(time.time()),
        "livemode": False,
        "data": {
            "object": {
                "id": f"pi_{pid}",
                "object": "payment_intent",
                "status": "requires_payment_method",
                "amount": 5000,
                "customer": f"cus_{pid}",
                "last_payment_error": {"code": "card_declined", "decline_code": "expired_card"},
                "metadata": {"pledge_id": str(pid), "ledger": namespace, "attempt": "1"},
                "livemode": False,
            }
        },
    }


def test_an_event_deferred_mid_write_is_applied_by_a_later_one_of_that_write(
    sqlite_url: str,
) -> None:
    # One write (a batch of webhooks): the first event finds nothing waiting; the
    # second waits (the pledge's card is not saved yet); the third saves that card,
    # and the one waiting is applied in the same write, not left for another event.
    ledger = open_ledger(sqlite_url)
    try:
        first, second = seed(ledger, 2)
        namespace = ledger_keys(ledger).namespace
        ctx = Context(keys=ledger_keys(ledger))
        events = [
            card_saved(first, namespace),
            charge_failed(second, namespace),
            card_saved(second, namespace),
        ]
        items: list[Item] = [(ctx, e, json.dumps(e)) for e in events]
        receipts = apply_batch(ledger, items)
        assert all(isinstance(r, Receipt) for r in receipts), receipts
        outcomes = [r.outcome for r in receipts if isinstance(r, Receipt)]
        assert outcomes == [Outcome.APPLIED, Outcome.DEFERRED, Outcome.APPLIED]
        with ledger.read() as conn:
            query = sa.select(schema.pledges.c.id, schema.pledges.c.status)
            statuses = {pid: status for pid, status in conn.execute(query)}
            unapplied = conn.execute(
                sa.select(schema.stripe_events.c.id).where(
                    schema.stripe_events.c.applied_at.is_(None)
                )
            ).all()
            waiting = conn.execute(
                sa.select(schema.state.c.key).where(schema.state.c.key.like("deferred:%"))
            ).all()
        assert statuses == {first: "authorized", second: "payment_failed"}
        assert unapplied == [] and waiting == []
    finally:
        ledger.dispose()
