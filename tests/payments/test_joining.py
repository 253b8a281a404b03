"""A join's money at Stripe (the emulator, a process): a crash anywhere between the share
payment, the admission and the fee is mended by `fundraiser stripe sync`, once; a fee
event that never arrived is read from Stripe's event list."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fundraiser.config import load_campaign
from fundraiser.ledger import Ledger, open_ledger, schema
from fundraiser.membership import joining
from fundraiser.payments import joining as paying
from fundraiser.payments.env import payments_from_env
from fundraiser.payments.events import Context
from fundraiser.payments.plans import ensure_plan
from tests import joinfixtures, stripe_fixtures
from tests.conftest import Cli
from tests.joinfixtures import (
    JOIN,
    JOIN_NOW,
    confirm_join,
    join_client,
    post_join,
    save_card,
    sdk,
)
from tests.stripe_fixtures import LocalStripe, TestClient, copy_campaign

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env
join_service = joinfixtures.join_service


@pytest.fixture
def join_service_board(
    campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> Iterator[TestClient]:
    """The example campaign as it is: the board admits each join."""
    with join_client(campaign_dir, sqlite_url, stripe_env) as client:
        yield client


LATER = {"FUNDRAISER_NOW": (JOIN_NOW + timedelta(minutes=10)).isoformat()}


def rows(url: str, table: sa.Table) -> list[Any]:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return list(conn.execute(sa.select(table)).all())
    finally:
        ledger.dispose()


def _sync(cli: Cli, env: dict[str, str]) -> dict[str, Any]:
    done = cli.ok("stripe", "sync", "--json", env={**env, **LATER})
    return dict(json.loads(done.output))


def _opened(url: str, cli: Cli, env: dict[str, str]) -> tuple[Ledger, Context, Any]:
    ledger = open_ledger(url)
    ledger.clock = lambda: "2027-03-01T09:05:00.000000Z"
    campaign = load_campaign(cli.campaign)
    found = payments_from_env(env, ledger, campaign)
    return ledger, found.ctx, (found.client, campaign)


def test_a_crash_after_stripe_took_the_money_is_mended_by_sync_once(
    join_service: TestClient,
    stripe_env: dict[str, str],
    sqlite_url: str,
    sqlite_cli: Cli,
    localstripe: LocalStripe,
) -> None:
    body = post_join(join_service, JOIN).json()
    save_card(stripe_env, body["client_secret"])
    # The service charges the shares and stops before it records anything.
    ledger, ctx, (client, _campaign) = _opened(sqlite_url, sqlite_cli, stripe_env)
    try:
        (pledge,) = rows(sqlite_url, schema.pledges)
        setup = sdk(stripe_env).v1.setup_intents.retrieve(pledge.stripe_intent).to_dict()
        charged = paying._charge(ledger, client, ctx, pledge, setup)
    finally:
        ledger.dispose()
    assert charged["status"] == "succeeded"
    assert rows(sqlite_url, schema.members) == []
    report = _sync(sqlite_cli, stripe_env)
    assert report["joined"] == [1] and report["fees_started"] == [1]
    again = _sync(sqlite_cli, stripe_env)
    assert again["joined"] == [] and again["fees_started"] == []
    # The page's confirm after all that: the same member, no second charge.
    assert confirm_join(join_service, body).json()["member_number"] == 1
    assert [m.number for m in rows(sqlite_url, schema.members)] == [1]
    assert len(rows(sqlite_url, schema.register_entries)) == 1
    assert len(localstripe.succeeded_charges()) == 2  # the shares and the first fee
    assert len(localstripe.all("subscriptions")) == 1
    (pledge,) = rows(sqlite_url, schema.pledges)
    assert (pledge.status, pledge.stripe_intent) == ("paid", charged["id"])


def test_a_crash_between_admission_and_the_fee_is_mended_by_sync_once(
    join_service: TestClient,
    stripe_env: dict[str, str],
    sqlite_url: str,
    sqlite_cli: Cli,
    localstripe: LocalStripe,
) -> None:
    body = post_join(join_service, JOIN).json()
    save_card(stripe_env, body["client_secret"])
    ledger, ctx, (client, campaign) = _opened(sqlite_url, sqlite_cli, stripe_env)
    try:
        # Paid and admitted in one write; then the service stops before the fee.
        assert paying.pay(ledger, client, ctx, campaign, body["pledge_id"]) is None
        assert [m.number for m in rows(sqlite_url, schema.members)] == [1]
        assert rows(sqlite_url, schema.fee_subscriptions) == []
        # And a second run stopped after Stripe made the subscription, before our record.
        with ledger.read() as conn:
            (item,) = joining.fees_to_start(conn)
        assert campaign.membership is not None and campaign.membership.fee is not None
        plan = ensure_plan(client, campaign.coop.name, campaign.membership.fee, item.rate)
        method = {"default_payment_method": item.payment_method}
        client.v1.customers.update(item.customer, params={"invoice_settings": method})
        made = client.v1.subscriptions.create(
            params={
                "customer": item.customer,
                "items": [{"plan": plan}],
                "metadata": ctx.keys.metadata(item.pledge_id, purpose="fee"),
            }
        )
    finally:
        ledger.dispose()
    report = _sync(sqlite_cli, stripe_env)
    assert report["fees_started"] == [1]
    assert _sync(sqlite_cli, stripe_env)["fees_started"] == []
    (fee,) = rows(sqlite_url, schema.fee_subscriptions)
    assert fee.stripe_subscription == made.id  # found again, not made twice
    assert len(localstripe.all("subscriptions")) == 1
    assert len(rows(sqlite_url, schema.members)) == 1


def test_sync_reads_a_fee_event_the_webhook_never_delivered(
    join_service: TestClient,
    stripe_env: dict[str, str],
    sqlite_url: str,
    sqlite_cli: Cli,
) -> None:
    body = post_join(join_service, JOIN).json()
    save_card(stripe_env, body["client_secret"])
    assert confirm_join(join_service, body).json()["fee_started"] is True
    (fee,) = rows(sqlite_url, schema.fee_subscriptions)
    assert fee.ended_at is None
    # The member ends their fee at Stripe; its event reaches no webhook.
    sdk(stripe_env).v1.subscriptions.cancel(fee.stripe_subscription)
    _sync(sqlite_cli, stripe_env)
    (fee,) = rows(sqlite_url, schema.fee_subscriptions)
    assert fee.ended_at is not None
    report = sqlite_cli.ok("members", "fees", "--json", env=LATER)
    assert json.loads(report.output)["counts"]["ended"] == 1
    # The first invoice, applied when the fee began, is not applied again from the list.
    assert len(rows(sqlite_url, schema.fee_invoices)) == 1


def test_sepa_direct_debit_in_euros(
    campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str], localstripe: LocalStripe
) -> None:
    joinfixtures.automatic(campaign_dir)
    copy_campaign(campaign_dir, 'currency = "GBP"', 'currency = "EUR"')
    with join_client(campaign_dir, sqlite_url, stripe_env) as service:
        made = post_join(service, {**JOIN, "method": "sepa_debit"})
        assert made.status_code == 201, made.text
        body = made.json()
        assert (body["method"], body["currency"]) == ("sepa_debit", "EUR")
        # What Stripe.js does with the IBAN element (the emulator's has none).
        stripe = sdk(stripe_env)
        account = stripe.v1.payment_methods.create(
            params={"type": "sepa_debit", "sepa_debit": {"iban": "DE89370400440532013000"}}
        )
        seti = body["client_secret"].split("_secret_")[0]
        stripe.v1.setup_intents.confirm(seti, params={"payment_method": account.id})
        done = confirm_join(service, body).json()
    assert done["member_number"] == 1 and done["fee_started"] is True
    (join,) = rows(sqlite_url, schema.joins)
    assert join.method == "sepa_debit"
    (pledge,) = rows(sqlite_url, schema.pledges)
    intent = stripe.v1.payment_intents.retrieve(pledge.stripe_intent)
    # The shares were debited from the account (the emulator at once; Stripe in days).
    assert (intent.payment_method, intent.status) == (account.id, "succeeded")
    (sub,) = localstripe.all("subscriptions")
    assert sub["items"]["data"][0]["plan"]["currency"] == "eur"


def test_board_admission_then_sync_begins_the_fee(
    join_service_board: TestClient, stripe_env: dict[str, str], sqlite_url: str, sqlite_cli: Cli
) -> None:
    body = post_join(join_service_board, JOIN).json()
    save_card(stripe_env, body["client_secret"])
    waiting = confirm_join(join_service_board, body).json()
    assert waiting["paid"] is True and waiting["application"] == "waiting"
    assert waiting["member_number"] is None and waiting["fee_started"] is False
    assert rows(sqlite_url, schema.members) == []
    sqlite_cli.ok("members", "admit", "1", env=LATER)
    report = _sync(sqlite_cli, stripe_env)
    assert report["fees_started"] == [1]
    (fee,) = rows(sqlite_url, schema.fee_subscriptions)
    assert (fee.member_number, fee.rate) == (1, "standard")
