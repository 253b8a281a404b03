"""A service stopped between Stripe and the ledger leaves nothing at Stripe after a sync.

Issue 13, item 11: killed between creating a pledge's Stripe customer and card
form and recording them, the service left the backer's name and email, and an
open card form, at Stripe for ever. `fundraiser stripe sync` now finds our
objects (by our metadata) that no pledge names and removes them.

The kill is real: `fundraiser serve` as a process on PostgreSQL, its ledger write
held by a trigger that sleeps (a real database feature, not a mock of our code),
then SIGKILL. On SQLite the write is stopped by a trigger that aborts it. The
emulator ignores idempotency keys (see STRIPE_NOTES), so the sweep is what
these tests prove.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
import stripe as stripe_sdk

from fundraiser.demo import shifted_campaign
from fundraiser.ledger import open_ledger, schema
from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.conftest import Cli, PostgresServer
from tests.service.test_pledges import PLEDGE, sdk
from tests.service_process import Served
from tests.stripe_fixtures import LocalStripe, TestClient, make_settings

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env


@pytest.fixture
def open_now(campaign_dir: Path) -> Path:
    """The example campaign with its crowd round open now: here the service runs on
    the real clock, as Stripe stamps its objects with it."""
    path = campaign_dir / "campaign.toml"
    text = path.read_text(encoding="utf-8")
    path.write_text(shifted_campaign(text, datetime.now(UTC)), encoding="utf-8")
    return path


def ours(localstripe: LocalStripe, kind: str, pledge_id: int) -> list[dict[str, Any]]:
    return [
        o
        for o in localstripe.all(kind)
        if (o.get("metadata") or {}).get("pledge_id") == str(pledge_id)
    ]


def pledge(url: str, pledge_id: int) -> Any:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return conn.execute(
                sa.select(schema.pledges).where(schema.pledges.c.id == pledge_id)
            ).one()
    finally:
        ledger.dispose()


def journal_actions(url: str) -> list[str]:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return [str(a) for a in conn.execute(sa.select(schema.journal.c.action)).scalars()]
    finally:
        ledger.dispose()


def at(hours: float) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def customer_exists(env: dict[str, str], customer: str) -> bool:
    try:
        found = sdk(env).v1.customers.retrieve(customer)
    except stripe_sdk.InvalidRequestError as exc:
        assert exc.http_status == 404
        return False
    return not getattr(found, "deleted", False)


PG_HOLD_RECORD = """
CREATE FUNCTION hold_record() RETURNS trigger AS $$
BEGIN
    PERFORM pg_sleep(30);
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER hold_record BEFORE UPDATE ON pledges FOR EACH ROW
    WHEN (OLD.stripe_intent IS NULL AND NEW.stripe_intent IS NOT NULL)
    EXECUTE FUNCTION hold_record();
"""


def pg(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


def sleeping(url: str) -> int:
    """Backends of this database asleep in the trigger."""
    with pg(url) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND wait_event = 'PgSleep'"
        ).fetchone()
    return int(row[0]) if row else 0


def wait_for(check: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.mark.postgres
def test_a_service_killed_between_stripe_and_the_ledger_leaves_nothing_after_sync(
    open_now: Path,
    postgres: PostgresServer,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
    tmp_path: Path,
) -> None:
    url = postgres.new_database()
    open_ledger(url).dispose()  # the schema, before the trigger goes on it
    with pg(url) as conn:
        # A dead client's session ends within 100 ms, as it would with a keepalive.
        conn.execute("SELECT 1")
        name = url.rsplit("/", 1)[1]
        conn.execute(f'ALTER DATABASE "{name}" SET client_connection_check_interval = 100')
    served = Served(open_now, url, stripe_env, tmp_path / "serve.log", now=None)
    try:
        api = httpx.Client(base_url=served.url, timeout=60)
        kept = api.post("/api/pledges", json={**PLEDGE, "email": "kept@example.org"})
        assert kept.status_code == 201, kept.text
        kept_id = kept.json()["pledge_id"]
        with pg(url) as conn:
            conn.execute(PG_HOLD_RECORD)
        answers: list[Any] = []

        def pledge_and_lose_the_answer() -> None:
            with contextlib.suppress(httpx.HTTPError):
                answers.append(api.post("/api/pledges", json=PLEDGE))

        thread = threading.Thread(target=pledge_and_lose_the_answer)
        thread.start()
        # Stripe has the customer and the card form; the ledger's record of them waits.
        wait_for(lambda: sleeping(url) == 1, "the service's ledger write to reach the trigger")
        lost = kept_id + 1
        assert len(ours(localstripe, "customers", lost)) == 1
        assert len(ours(localstripe, "setup_intents", lost)) == 1
        served.kill()
        thread.join(timeout=30)
        assert answers == []  # the backer never got an answer
    finally:
        served.stop()
    wait_for(lambda: sleeping(url) == 0, "the killed service's session to end")
    with pg(url) as conn:
        conn.execute("DROP TRIGGER hold_record ON pledges")

    row = pledge(url, lost)
    assert (row.status, row.stripe_customer, row.stripe_intent) == ("pending", None, None)
    (customer,) = ours(localstripe, "customers", lost)
    (form,) = ours(localstripe, "setup_intents", lost)
    assert customer["email"] == PLEDGE["email"] and form["status"] == "requires_payment_method"

    cli = Cli(open_now, url)
    # Within the hour a request may still be in flight: nothing is touched yet.
    soon = json.loads(
        cli.ok("stripe", "sync", "--json", env={**stripe_env, "FUNDRAISER_NOW": at(0)}).output
    )
    assert soon["leftovers_removed"] == []
    assert customer_exists(stripe_env, customer["id"])

    later = cli.ok("stripe", "sync", env={**stripe_env, "FUNDRAISER_NOW": at(1.5)})
    assert "removed 2 objects at Stripe no pledge named" in later.output
    assert f": pledge {lost} cancelled" in later.output
    assert not customer_exists(stripe_env, customer["id"])  # name and email gone
    assert sdk(stripe_env).v1.setup_intents.retrieve(form["id"]).status == "canceled"
    assert pledge(url, lost).status == "cancelled"
    assert journal_actions(url).count("stripe.leftover_removed") == 2
    # The pledge that was recorded is left alone.
    kept_row = pledge(url, kept_id)
    assert kept_row.status == "pending" and customer_exists(stripe_env, kept_row.stripe_customer)
    form_kept = sdk(stripe_env).v1.setup_intents.retrieve(kept_row.stripe_intent)
    assert form_kept.status == "requires_payment_method"
    # Rerun: nothing more to remove.
    again = json.loads(
        cli.ok("stripe", "sync", "--json", env={**stripe_env, "FUNDRAISER_NOW": at(1.6)}).output
    )
    assert (again["leftovers_removed"], again["leftover_pledges_cancelled"]) == ([], [])


def test_a_stopped_ledger_write_keep_it_all_leaves_no_payment_form_after_sync(
    open_now: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
) -> None:
    text = open_now.read_text(encoding="utf-8")
    open_now.write_text(
        text.replace('mode = "all-or-nothing"', 'mode = "keep-it-all"'), encoding="utf-8"
    )
    settings = make_settings(campaign_dir, sqlite_url, stripe_env, now=datetime.now(UTC))
    with TestClient(create_app(settings), raise_server_exceptions=False) as service:
        kept = service.post("/api/pledges", json={**PLEDGE, "email": "kept@example.org"}).json()
        path = sqlite_url.removeprefix("sqlite:///")
        with sqlite3.connect(path) as conn:
            conn.execute(
                "CREATE TRIGGER stop_record BEFORE UPDATE ON pledges "
                "WHEN OLD.stripe_intent IS NULL AND NEW.stripe_intent IS NOT NULL "
                "BEGIN SELECT RAISE(ABORT, 'the disk is full'); END"
            )
        failed = service.post("/api/pledges", json=PLEDGE)
        assert failed.status_code == 500 and "client_secret" not in failed.text
        with sqlite3.connect(path) as conn:
            conn.execute("DROP TRIGGER stop_record")
    lost = kept["pledge_id"] + 1
    (form,) = ours(localstripe, "payment_intents", lost)
    (customer,) = ours(localstripe, "customers", lost)
    assert form["status"] == "requires_payment_method"

    cli = Cli(open_now, sqlite_url)
    swept = json.loads(
        cli.ok("stripe", "sync", "--json", env={**stripe_env, "FUNDRAISER_NOW": at(1.5)}).output
    )
    assert sorted((o["object"], o["id"]) for o in swept["leftovers_removed"]) == sorted(
        [("payment_intent", form["id"]), ("customer", customer["id"])]
    )
    assert swept["leftover_pledges_cancelled"] == [lost]
    assert {o["pledge_id"] for o in swept["leftovers_removed"]} == {lost}
    assert sdk(stripe_env).v1.payment_intents.retrieve(form["id"]).status == "canceled"
    assert not customer_exists(stripe_env, customer["id"])
    assert pledge(sqlite_url, lost).status == "cancelled"
    kept_row = pledge(sqlite_url, kept["pledge_id"])
    assert kept_row.status == "pending" and customer_exists(stripe_env, kept_row.stripe_customer)
