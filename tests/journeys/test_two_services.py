"""More than one machine (issue 15, item 6): two `fundraiser serve` processes on one
PostgreSQL, as behind a load-balancing proxy.

Backers pledge through both at once and no limited tier is oversold; Stripe's
webhook, delivered to both at once and more than once, is applied once; and
`fundraiser collect` charges the cards while both keep answering.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.payments.client import as_dict
from fundraiser.payments.webhooks import signature_header
from tests import stripe_fixtures
from tests.conftest import Cli, PostgresServer, proved
from tests.service.test_pledges import PLEDGE, save_card, sdk
from tests.service_process import Served
from tests.stripe_fixtures import AFTER_DEADLINE, WEBHOOK_SECRET, copy_campaign

localstripe = stripe_fixtures.localstripe
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

pytestmark = pytest.mark.postgres

PLACES = 5
BACKERS = 16


@pytest.fixture
def pg_url(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[str]:
    url = postgres.new_database()
    yield url
    proved(url, request)  # what both processes wrote, the journal proves


@pytest.fixture
def two(
    small_goal: Path,
    campaign_dir: Path,
    pg_url: str,
    stripe_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[list[Served]]:
    copy_campaign(campaign_dir, "limit = 50", f"limit = {PLACES}")
    toml = campaign_dir / "campaign.toml"
    first = Served(toml, pg_url, stripe_env, tmp_path / "a.log")
    try:
        second = Served(toml, pg_url, stripe_env, tmp_path / "b.log")
    except BaseException:
        first.stop()
        raise
    try:
        yield [first, second]
    finally:
        first.stop()
        second.stop()


def race(calls: list[Any]) -> list[Any]:
    """Run the calls at once, each on its own thread; their results (or errors) in order."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(index: int) -> None:
        start.wait()
        try:
            results[index] = calls[index]()
        except Exception as exc:  # returned to the test, which asserts on it
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def pledge(server: Served, n: int) -> httpx.Response:
    # Each backer comes through the proxy from their own address.
    return httpx.post(
        f"{server.url}/api/pledges",
        json={**PLEDGE, "tier": "cornerstone", "email": f"backer{n}@example.org"},
        headers={"X-Forwarded-For": f"198.51.100.{n + 1}", "Idempotency-Key": f"b-{n}"},
        timeout=60,
    )


def deliver(server: Served, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    return httpx.post(
        f"{server.url}/api/stripe/webhook",
        content=body,
        headers={
            "content-type": "application/json",
            "stripe-signature": signature_header(body, WEBHOOK_SECRET),
        },
        timeout=60,
    )


def event(n: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"evt_two_{n}",
        "object": "event",
        "type": kind,
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj},
    }


def rows(url: str, query: Any) -> list[Any]:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return list(conn.execute(query).all())
    finally:
        ledger.dispose()


def test_two_services_on_one_postgresql_oversell_nothing_and_apply_each_webhook_once(
    two: list[Served],
    pg_url: str,
    campaign_dir: Path,
    stripe_env: dict[str, str],
) -> None:
    a, b = two
    answers = race([lambda n=n: pledge(two[n % 2], n) for n in range(BACKERS)])
    assert not [x for x in answers if isinstance(x, Exception)], answers
    codes = sorted(x.status_code for x in answers)
    assert codes == [201] * PLACES + [409] * (BACKERS - PLACES), [x.text for x in answers]
    made = [x.json() for x in answers if x.status_code == 201]
    # Both processes answered half the backers each, and both refused some.
    assert {x.url.port for x in answers if x.status_code == 409} == {a.port, b.port}
    live = rows(
        pg_url,
        sa.select(schema.pledges.c.id).where(
            schema.pledges.c.tier == "cornerstone", schema.pledges.c.status == "pending"
        ),
    )
    assert len(live) == PLACES

    # Every backer saves a card; Stripe tells us so, to both processes, three times each.
    stripe = sdk(stripe_env)
    events = []
    for n, body in enumerate(made):
        save_card(stripe_env, body["client_secret"])
        seti = body["client_secret"].split("_secret_")[0]
        obj = as_dict(stripe.v1.setup_intents.retrieve(seti))
        events.append(event(f"seti_{n}", "setup_intent.succeeded", obj))
    deliveries = race([lambda e=e, s=s: deliver(s, e) for e in events for s in (a, b, a, b, a, b)])
    assert all(d.status_code == 200 for d in deliveries), [d.text for d in deliveries]
    fresh = [d.json()["duplicate"] for d in deliveries].count(False)
    assert fresh == PLACES  # each event applied by exactly one process, once
    stored = rows(pg_url, sa.select(schema.stripe_events.c.id))
    assert len(stored) == PLACES
    statuses = rows(pg_url, sa.select(schema.pledges.c.id, schema.pledges.c.status))
    assert sorted(s for _, s in statuses if s != "cancelled") == ["authorized"] * PLACES
    mails = rows(pg_url, sa.select(schema.outbox.c.kind, schema.outbox.c.pledge_id))
    received = [p for kind, p in mails if kind == "pledge_received"]
    assert sorted(received) == sorted(body["pledge_id"] for body in made)

    # The deadline passes with the goal met; collect charges the cards while backers'
    # pages keep asking both services for the figures.
    stop = threading.Event()
    failures: list[str] = []
    asked = [0]

    def watch() -> None:
        with httpx.Client(timeout=30) as web:
            while not stop.is_set():
                for server in (a, b):
                    answer = web.get(f"{server.url}/api/campaign")
                    asked[0] += 1
                    if answer.status_code != 200:
                        failures.append(f"{answer.status_code} {answer.text}")

    watchers = [threading.Thread(target=watch) for _ in range(2)]
    for thread in watchers:
        thread.start()
    try:
        cli = Cli(campaign_dir / "campaign.toml", pg_url)
        result = cli.ok("collect", env={**stripe_env, "FUNDRAISER_NOW": AFTER_DEADLINE})
    finally:
        stop.set()
        for thread in watchers:
            thread.join(timeout=60)
    assert not failures, failures[:3]
    assert asked[0] > 2
    paid = rows(
        pg_url,
        sa.select(schema.pledges.c.stripe_intent, schema.pledges.c.amount).where(
            schema.pledges.c.status == "paid"
        ),
    )
    assert len(paid) == PLACES, result.output
    charged = {pi: stripe.v1.payment_intents.retrieve(pi) for pi, _ in paid if pi is not None}
    assert len(charged) == PLACES
    for pi, amount in paid:
        assert charged[pi].status == "succeeded" and charged[pi].amount == amount

    # Stripe's own news of those charges, late and twice over, changes nothing.
    news = [
        event(f"pi_{n}", "payment_intent.succeeded", as_dict(charged[pi]))
        for n, (pi, _) in enumerate(paid)
    ]
    late = race([lambda e=e, s=s: deliver(s, e) for e in news for s in (a, b)])
    assert all(d.status_code == 200 for d in late), [d.text for d in late]
    assert [d.json()["duplicate"] for d in late].count(False) == PLACES
    again = rows(
        pg_url,
        sa.select(sa.func.count())
        .select_from(schema.pledges)
        .where(schema.pledges.c.status == "paid"),
    )
    assert again[0][0] == PLACES
    receipts = rows(pg_url, sa.select(schema.outbox.c.kind))
    kinds = [k for (k,) in receipts]
    assert kinds.count("pledge_received") == PLACES
    assert "Traceback" not in a.text() + b.text()


def test_one_submit_sent_to_both_services_at_once_makes_one_pledge_and_one_card_form(
    two: list[Served], pg_url: str
) -> None:
    """A double click that a load balancer splits between two processes: one pledge,
    named by every answer, with one card form recorded (neither process holds the
    ledger while it checks: they wait on the backer's own lock)."""
    a, b = two
    body = {**PLEDGE, "tier": "cornerstone", "email": "twice@example.org"}

    def submit(server: Served) -> httpx.Response:
        return httpx.post(
            f"{server.url}/api/pledges",
            json=body,
            headers={"X-Forwarded-For": "198.51.100.77", "Idempotency-Key": "one-click"},
            timeout=60,
        )

    answers = race([lambda s=s: submit(s) for s in (a, b, a, b, a, b)])
    assert not [x for x in answers if isinstance(x, Exception)], answers
    assert sorted(x.status_code for x in answers) == [200] * 5 + [201], [x.text for x in answers]
    assert len({x.json()["pledge_id"] for x in answers}) == 1
    # Every answer's form was made with one idempotency key, so Stripe hands back
    # one form; the emulator ignores those keys (STRIPE_NOTES.md) and makes one per
    # answer, of which the ledger records the first.
    made = rows(pg_url, sa.select(schema.pledges.c.id, schema.pledges.c.stripe_intent))
    assert len(made) == 1 and made[0].stripe_intent is not None
    assert "Traceback" not in a.text() + b.text()
