"""The service's one ledger writer: a batch's jobs share one transaction and one journal append."""

from __future__ import annotations

import asyncio
import functools
import json
from typing import Any

import pytest
import sqlalchemy as sa

from fundraiser.ledger import Ledger, open_ledger, schema
from fundraiser.ledger.engine import KEYED, KEYED_LOCKS, key_number
from fundraiser.money import Money
from fundraiser.payments import intents, orphans, webhooks
from fundraiser.payments.events import Context
from fundraiser.pledges import NewPledge, Source, Status, create_many
from fundraiser.service.writer import Job, Writer
from fundraiser.stripekeys import ledger_keys


@pytest.fixture
def ledger(db_url: str) -> Any:
    opened = open_ledger(db_url)
    yield opened
    opened.dispose()


def seed(ledger: Ledger, count: int, status: Status = Status.PENDING) -> list[int]:
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
                stripe_customer=f"cus_{pid}",
                stripe_intent=f"seti_{pid}",
                status=status.value,
            )
        tx.record("test.seed", "pledges", {"pledges": len(ids)})
    ledger_keys(ledger)  # the ledger's namespace at Stripe, made (and journalled) once
    return ids


def paid(ledger: Ledger, pledge_id: int, event_id: str) -> dict[str, Any]:
    meta = {"pledge_id": str(pledge_id), "ledger": ledger_keys(ledger).namespace}
    return {
        "id": event_id,
        "object": "event",
        "type": "payment_intent.succeeded",
        "created": 1_790_000_000,
        "livemode": False,
        "data": {
            "object": {
                "id": f"pi_{pledge_id}",
                "object": "payment_intent",
                "status": "succeeded",
                "amount": 5000,
                "amount_received": 5000,
                "customer": f"cus_{pledge_id}",
                "payment_method": f"pm_{pledge_id}",
                "latest_charge": f"ch_{pledge_id}",
                "metadata": meta,
                "livemode": False,
            }
        },
    }


def job(ledger: Ledger, event: dict[str, Any]) -> Job[webhooks.Receipt]:
    ctx = Context(keys=ledger_keys(ledger))
    run = functools.partial(webhooks.store_and_apply, ctx=ctx, event=event, raw=json.dumps(event))
    return Job(run)


def journal(ledger: Ledger) -> list[tuple[int, str, str]]:
    j = schema.journal.c
    with ledger.read() as conn:
        rows = conn.execute(sa.select(j.seq, j.action, j.subject).order_by(j.seq)).all()
    return [(row.seq, row.action, row.subject) for row in rows]


def test_a_batch_of_webhooks_is_journalled_in_order_with_one_chain(ledger: Ledger) -> None:
    ids = seed(ledger, 3)
    before = len(journal(ledger))
    events = [paid(ledger, pid, f"evt_paid_{pid}") for pid in ids]
    receipts = Writer(ledger).write([job(ledger, e) for e in events])
    assert [r.outcome.value for r in receipts] == ["applied"] * 3
    added = journal(ledger)[before:]
    # Each event's own entries, in the order the jobs ran, numbered without a gap.
    assert [(action, subject) for _, action, subject in added] == [
        entry
        for pid in ids
        for entry in (
            ("pledge.paid", f"pledge:{pid}"),
            ("mail.queue", "outbox"),  # the "we have your pledge" mail
            ("stripe.event", f"event:evt_paid_{pid}"),
        )
    ]
    assert [seq for seq, _, _ in added] == list(range(before + 1, before + 1 + len(added)))
    assert ledger.verify().ok


def test_money_for_an_ended_pledge_twice_in_one_batch_is_journalled_once(ledger: Ledger) -> None:
    # Stripe's retry of a delivery it thinks lost comes under a new event id; the
    # batch holds its journal entries back, and the second must still see the first.
    (pid,) = seed(ledger, 1, Status.CANCELLED)
    events = [paid(ledger, pid, "evt_orphan_1"), paid(ledger, pid, "evt_orphan_2")]
    receipts = Writer(ledger).write([job(ledger, e) for e in events])
    assert [r.outcome.value for r in receipts] == ["applied", "unchanged"]
    taken = [a for _, a, _ in journal(ledger) if a == orphans.TAKEN]
    assert taken == [orphans.TAKEN]
    with ledger.read() as conn:
        assert [o.pledge_id for o in orphans.still_open(conn)] == [pid]


def test_a_job_that_holds_nothing_is_not_queued_behind_one_waiting_on_a_lock(
    ledger: Ledger,
) -> None:
    """PostgreSQL: a card form recorded on its own row goes in a lane of its own, so a
    batch waiting on a tier's lock (another process's pledge) does not hold it up.
    SQLite has one writer at a time: one lane."""
    writer = Writer(ledger)
    form_job = Job(functools.partial(intents.record_card_form, form=form_for(0)), whole=False)
    tier_job: Job[str] = Job(lambda tx: "admitted", locks=("tier:founder",), whole=False)
    if ledger.is_sqlite:
        assert len(writer.lanes) == 1 and writer.lane(form_job) == writer.lane(tier_job) == 0
        return
    (pid,) = seed(ledger, 1)
    with ledger.write() as tx:  # the card form not made yet
        tx.update(schema.pledges, {"id": pid}, stripe_intent=None)
        tx.record("test.unform", f"pledge:{pid}", {})
    form_job = Job(functools.partial(intents.record_card_form, form=form_for(pid)), whole=False)
    other = ledger.engine.connect()  # another process's write, holding the tier
    other.begin()
    other.exec_driver_sql(KEYED_LOCKS, (KEYED, [key_number("tier:founder")]))

    async def both() -> tuple[str, bool]:
        waiting = asyncio.ensure_future(writer.submit(tier_job))
        # The card form is recorded while the tier's batch waits for its lock.
        await asyncio.wait_for(writer.submit(form_job), timeout=20)
        blocked = not waiting.done()
        other.rollback()  # the other write ends: the tier's batch goes on
        return await asyncio.wait_for(waiting, timeout=20), blocked

    try:
        answer, blocked = asyncio.run(both())
    finally:
        other.close()
        writer.close()
    assert answer == "admitted" and blocked
    with ledger.read() as conn:
        row = conn.execute(sa.select(schema.pledges).where(schema.pledges.c.id == pid)).one()
    assert (row.stripe_customer, row.stripe_intent) == (f"cus_new{pid}", f"seti_new{pid}")


def form_for(pid: int) -> intents.CardForm:
    return intents.CardForm(pid, f"cus_new{pid}", f"seti_new{pid}", False, "setup")
