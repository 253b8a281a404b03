"""Webhooks: signatures, exactly-once storage, and order-independent application.

Events come from the emulator where it sends them (payment_intent.*), and are
built from the emulator's real objects and signed with the real HMAC where it
cannot (setup_intent.*, charge.refunded, refund.*, charge.dispute.*).
"""

from __future__ import annotations

import contextlib
import json
import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import stripe

from fundraiser.errors import WebhookRejected
from fundraiser.ledger import Ledger, open_ledger, schema
from fundraiser.payments.client import as_dict
from fundraiser.payments.events import Context
from fundraiser.payments.webhooks import receive, signature_header
from fundraiser.stripekeys import ledger_keys
from tests import stripe_fixtures
from tests.service.test_pledges import PLEDGE, post, save_card, sdk
from tests.stripe_fixtures import (
    WEBHOOK_SECRET,
    LocalStripe,
    TestClient,
)

# pytest finds fixtures by name in the module: bind the shared ones here.
localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env


def deliver(client: TestClient, event: dict[str, Any], *, secret: str = WEBHOOK_SECRET) -> Any:
    body = json.dumps(event).encode()
    return client.post(
        "/api/stripe/webhook",
        content=body,
        headers={
            "content-type": "application/json",
            "stripe-signature": signature_header(body, secret),
        },
    )


def event(kind: str, obj: dict[str, Any], n: int) -> dict[str, Any]:
    return {
        "id": f"evt_test_{n:04d}_{kind.replace('.', '_')}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def count_events(url: str) -> int:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(schema.stripe_events)).scalar()
            )
    finally:
        ledger.dispose()


def test_bad_and_stale_signatures_store_nothing(service: TestClient, sqlite_url: str) -> None:
    good = event("customer.created", {"id": "cus_x", "object": "customer"}, 1)
    body = json.dumps(good).encode()
    cases = [
        signature_header(body, "whsec_wrong"),
        signature_header(body, WEBHOOK_SECRET, int(time.time()) - 400),
        "t=1,v1=",
        "",
    ]
    for header in cases:
        answer = service.post(
            "/api/stripe/webhook",
            content=body,
            headers={"content-type": "application/json", "stripe-signature": header},
        )
        assert answer.status_code == 400, header
        assert answer.json()["field"] == "Stripe-Signature"
    # Re-serialised JSON (not the raw body) does not verify either.
    answer = service.post(
        "/api/stripe/webhook",
        content=json.dumps(good, indent=1).encode(),
        headers={
            "content-type": "application/json",
            "stripe-signature": signature_header(body, WEBHOOK_SECRET),
        },
    )
    assert answer.status_code == 400
    assert count_events(sqlite_url) == 0


def test_same_webhook_twice_is_applied_once(
    service: TestClient, stripe_env: dict[str, str], sqlite_url: str
) -> None:
    created = post(service, PLEDGE).json()
    save_card(stripe_env, created["client_secret"])
    seti = created["client_secret"].split("_secret_")[0]
    obj = as_dict(sdk(stripe_env).v1.setup_intents.retrieve(seti))
    evt = event("setup_intent.succeeded", obj, 1)
    first, second = deliver(service, evt), deliver(service, evt)
    assert first.status_code == second.status_code == 200
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    assert count_events(sqlite_url) == 1
    ledger = open_ledger(sqlite_url)
    with ledger.read() as conn:
        row = conn.execute(schema.pledges.select()).one()
        mails = conn.execute(sa.select(schema.outbox.c.kind)).scalars().all()
    assert row.status == "authorized" and row.stripe_payment_method
    assert mails == ["pledge_received"]


# -- a realistic stream, replayed in order and shuffled with duplicates ----------


def _snapshot(url: str) -> dict[str, Any]:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            rows = [
                (
                    r.id,
                    r.status,
                    r.paid_amount,
                    r.refunded_amount,
                    r.stripe_intent,
                    r.stripe_charge,
                    r.stripe_payment_method,
                    r.failure_code,
                    r.fix_until is not None,
                    r.attempts,
                )
                for r in conn.execute(schema.pledges.select().order_by(schema.pledges.c.id))
            ]
            events = sorted(conn.execute(sa.select(schema.stripe_events.c.id)).scalars())
            flags = sorted(
                (f.entry_id, f.pledge_id, f.reason, f.resolved_at is not None)
                for f in conn.execute(schema.register_flags.select())
            )
            # A failure superseded by a later success may or may not have been
            # mailed, depending on which arrived first: the state is what must agree.
            mails = sorted(
                conn.execute(
                    sa.select(schema.outbox.c.dedupe_key).where(
                        schema.outbox.c.kind != "payment_failed"
                    )
                ).scalars()
            )
        return {"pledges": rows, "events": events, "flags": flags, "mails": mails}
    finally:
        ledger.dispose()


def _replay(base: Path, target: Path, stream: list[dict[str, Any]], env: dict[str, str]) -> str:
    shutil.copy(base, target)
    url = f"sqlite:///{target}"
    ledger = open_ledger(url)
    client = sdk(env)
    ctx = Context(
        keys=ledger_keys(ledger),
        fetch_charge=lambda cid: as_dict(client.v1.charges.retrieve(cid)),
    )
    try:
        for evt in stream:
            body = json.dumps(evt).encode()
            receive(ledger, ctx, body, signature_header(body, WEBHOOK_SECRET), WEBHOOK_SECRET)
    finally:
        ledger.dispose()
    return url


def _charge(client: stripe.StripeClient, ns: str, row: Any, attempt: int, pm: str) -> None:
    with contextlib.suppress(stripe.CardError):
        client.v1.payment_intents.create(
            params={
                "amount": int(row.amount),
                "currency": "gbp",
                "customer": row.stripe_customer,
                "payment_method": pm,
                "off_session": True,
                "confirm": True,
                "metadata": {"pledge_id": str(row.id), "ledger": ns, "attempt": str(attempt)},
            }
        )


def test_shuffled_duplicated_stream_matches_in_order(
    service: TestClient,
    stripe_env: dict[str, str],
    sqlite_url: str,
    localstripe: LocalStripe,
    tmp_path: Path,
) -> None:
    client = sdk(stripe_env)
    made = []
    for n in range(5):
        body = post(service, {**PLEDGE, "email": f"backer{n}@example.org"}).json()
        made.append(body)
    base_path = Path(sqlite_url.removeprefix("sqlite:///"))
    ledger = open_ledger(sqlite_url)
    ns = ledger_keys(ledger).namespace
    with ledger.write() as tx:  # shares issued from pledge 2, to see them flagged
        tx.insert(
            schema.members,
            ("number", "person_key", "name", "address", "admitted_on", "created_at"),
            [(1, "backer2@example.org", "B", "A", "2027-03-02", tx.now)],
        )
        tx.insert(
            schema.register_entries,
            (
                "member_number",
                "kind",
                "shares",
                "amount",
                "currency",
                "pledge_id",
                "entry_date",
                "created_at",
            ),
            [(1, "issue", 4, 20000, "GBP", made[2]["pledge_id"], "2027-03-02", tx.now)],
        )
        tx.record("shares.issue", "register", {"test": "shares from pledge 2"})
    ledger.dispose()
    # SQLite's own copy: the service still has the ledger open, and in WAL mode its
    # last commits may be in the log beside the file rather than in it.
    with (
        contextlib.closing(sqlite3.connect(base_path)) as source,
        contextlib.closing(sqlite3.connect(tmp_path / "base.sqlite")) as copy,
    ):
        source.backup(copy)

    stream: list[dict[str, Any]] = []
    seen: set[str] = set()
    n = 0

    def emulator_events() -> None:
        for evt in localstripe.all("events"):
            if evt["id"] not in seen and evt["type"].startswith("payment_intent."):
                seen.add(evt["id"])
                stream.append(evt)

    def synth(kind: str, obj: dict[str, Any]) -> None:
        nonlocal n
        n += 1
        stream.append(event(kind, obj, n))

    # Cards saved (the emulator sends no setup_intent events: we build them).
    cards = [
        "pm_card_visa",
        "pm_card_visa",
        "pm_card_visa",
        "pm_card_chargeCustomerFail",
        "pm_card_chargeCustomerFail",
    ]
    for body, card in zip(made, cards, strict=True):
        save_card(stripe_env, body["client_secret"], card)
        seti = body["client_secret"].split("_secret_")[0]
        synth("setup_intent.succeeded", as_dict(client.v1.setup_intents.retrieve(seti)))
    with open_ledger(sqlite_url).read() as conn:
        rows = {r.id: r for r in conn.execute(schema.pledges.select())}
    ids = [b["pledge_id"] for b in made]
    # Charges: three succeed, one fails then succeeds on a fixed card, one fails for good.
    for pid, pm in zip(ids, ["pm_card_visa"] * 3 + cards[3:], strict=True):
        _charge(client, ns, rows[pid], 1, pm)
    emulator_events()
    _charge(client, ns, rows[ids[3]], 2, "pm_card_visa")
    emulator_events()
    charges = {c["customer"]: c for c in localstripe.succeeded_charges()}
    ch0, ch1, ch2 = (charges[rows[i].stripe_customer] for i in ids[:3])
    # Pledge 0: a partial refund, then the rest (charge.refunded and refund.created).
    r1 = as_dict(client.v1.refunds.create(params={"charge": ch0["id"], "amount": 5000}))
    synth("charge.refunded", as_dict(client.v1.charges.retrieve(ch0["id"])))
    synth("refund.created", r1)
    r2 = as_dict(client.v1.refunds.create(params={"charge": ch0["id"]}))
    synth("charge.refunded", as_dict(client.v1.charges.retrieve(ch0["id"])))
    synth("refund.created", r2)
    # Pledge 1: a dispute the co-op wins; pledge 2 (shares issued): one it loses.
    for charge, outcome, dp in ((ch1, "won", "dp_won"), (ch2, "lost", "dp_lost")):
        dispute = {
            "id": dp,
            "object": "dispute",
            "charge": charge["id"],
            "amount": charge["amount"],
            "payment_intent": charge["payment_intent"],
            "livemode": False,
        }
        synth("charge.dispute.created", {**dispute, "status": "needs_response"})
        synth("charge.dispute.updated", {**dispute, "status": "under_review"})
        synth("charge.dispute.closed", {**dispute, "status": outcome})

    in_order = _snapshot(
        _replay(tmp_path / "base.sqlite", tmp_path / "a.sqlite", stream, stripe_env)
    )
    by_id = {row[0]: row for row in in_order["pledges"]}
    statuses = [by_id[i][1] for i in ids]
    assert statuses == ["refunded", "paid", "refunded", "paid", "payment_failed"]
    assert by_id[ids[0]][3] == by_id[ids[0]][2] == 20000  # refunded in full, never more
    assert in_order["flags"] == [(1, ids[2], "disputed", False)]
    assert {f"refund-{r1['id']}", f"refund-{r2['id']}"} <= set(in_order["mails"])

    rng = random.Random(4)
    for trial in range(8):
        shuffled = [evt for evt in stream for _ in range(rng.randint(1, 3))]
        rng.shuffle(shuffled)
        url = _replay(tmp_path / "base.sqlite", tmp_path / f"s{trial}.sqlite", shuffled, stripe_env)
        assert _snapshot(url) == in_order, f"trial {trial}"


def test_verify_refuses_non_events() -> None:
    from fundraiser.payments.webhooks import verify

    body = b'{"id": "nope"}'
    with pytest.raises(WebhookRejected, match="not a Stripe event"):
        verify(body, signature_header(body, "s"), "s", now=time.time())
    assert isinstance(Ledger, type)
