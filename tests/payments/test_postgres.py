"""The pledge service and payments on a real PostgreSQL ledger, not only SQLite."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.payments.client import as_dict
from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.conftest import Cli, PostgresServer
from tests.payments.test_collect import after
from tests.payments.test_webhooks import deliver, event
from tests.service.test_pledges import PLEDGE, post, save_card, sdk
from tests.stripe_fixtures import TestClient, make_settings

localstripe = stripe_fixtures.localstripe
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg_url(postgres: PostgresServer) -> str:
    return postgres.new_database()


@pytest.fixture
def pg_service(
    small_goal: Path, campaign_dir: Path, pg_url: str, stripe_env: dict[str, str]
) -> Iterator[TestClient]:
    settings = replace(make_settings(campaign_dir, pg_url, stripe_env), pledge_burst=50)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def test_pledge_webhook_twice_collect_and_refund_on_postgres(
    pg_service: TestClient, stripe_env: dict[str, str], campaign_dir: Path, pg_url: str
) -> None:
    created = post(pg_service, PLEDGE).json()
    save_card(stripe_env, created["client_secret"])
    seti = created["client_secret"].split("_secret_")[0]
    obj = as_dict(sdk(stripe_env).v1.setup_intents.retrieve(seti))
    evt = event("setup_intent.succeeded", obj, 1)
    first, second = deliver(pg_service, evt), deliver(pg_service, evt)
    assert (first.json()["duplicate"], second.json()["duplicate"]) == (False, True)
    cli = Cli(campaign_dir / "campaign.toml", pg_url)
    cli.ok("collect", env=after(stripe_env))
    refund = json.loads(
        cli.ok(
            "pledges", "refund", "1", "--amount", "50.00", "--json", env=after(stripe_env)
        ).output
    )
    assert (refund["refunded"], refund["status"]) == (5000, "paid")
    ledger = open_ledger(pg_url)
    with ledger.read() as conn:
        row = conn.execute(schema.pledges.select()).one()
        stored = conn.execute(sa.select(sa.func.count()).select_from(schema.stripe_events)).scalar()
        mails = sorted(conn.execute(sa.select(schema.outbox.c.kind)).scalars().all())
    assert (row.status, row.paid_amount, row.refunded_amount) == ("paid", 20000, 5000)
    assert stored == 1 and mails == ["pledge_received", "refund_sent"]
    assert ledger.verify().ok
    ledger.dispose()
