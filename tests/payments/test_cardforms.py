"""Open card forms are closed at Stripe before a pledge is cancelled, and abandoned ones swept."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import stripe as stripe_sdk

from fundraiser import pledges
from fundraiser.ledger import open_ledger, schema
from fundraiser.payments.client import as_dict
from fundraiser.payments.events import id_of
from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.payments.test_collect import after, authorized, listed
from tests.payments.test_webhooks import deliver, event
from tests.service.test_pledges import PLEDGE, confirm, post, save_card, sdk
from tests.stripe_fixtures import NOW, LocalStripe, TestClient, copy_campaign, make_settings

localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

CORNERSTONE = {**PLEDGE, "tier": "cornerstone"}


def later(env: dict[str, str], hours: float) -> dict[str, str]:
    """The CLI's clock `hours` after the service's (which stamps the pledges)."""
    return {**env, "FUNDRAISER_NOW": (NOW + timedelta(hours=hours)).isoformat()}


def intent_of(body: dict[str, str]) -> str:
    return body["client_secret"].split("_secret_")[0]


def ledger_bytes(cli: Cli) -> bytes:
    return Path(cli.db_url.removeprefix("sqlite:///")).read_bytes()


@pytest.fixture
def keep_it_all(
    small_goal: Path, campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> Iterator[TestClient]:
    copy_campaign(campaign_dir, 'mode = "all-or-nothing"', 'mode = "keep-it-all"')
    with TestClient(create_app(make_settings(campaign_dir, sqlite_url, stripe_env))) as client:
        yield client


def test_sync_closes_forms_left_unfinished_and_gives_the_place_back(
    small_goal: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
) -> None:
    copy_campaign(campaign_dir, "limit = 50", "limit = 1")  # one cornerstone place
    settings = make_settings(campaign_dir, sqlite_url, stripe_env)
    with TestClient(create_app(settings)) as client:
        left = post(client, CORNERSTONE).json()
        full = post(client, {**CORNERSTONE, "email": "grace@example.org"})
        assert full.status_code == 409 and full.json()["field"] == "tier"

        fresh = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=stripe_env).output)
        assert fresh["abandoned"] == []
        assert listed(sqlite_cli)[left["pledge_id"]]["status"] == "pending"

        customer = customer_of(sqlite_cli, left["pledge_id"]) or ""
        assert at_stripe(stripe_env, customer)
        swept = sqlite_cli.ok("stripe", "sync", env=later(stripe_env, 3))
        assert f"closed 1 abandoned card form: pledge {left['pledge_id']}" in swept.output
        assert not at_stripe(stripe_env, customer)  # nothing of the backer stays there
        assert customer_of(sqlite_cli, left["pledge_id"]) is None
        assert listed(sqlite_cli)[left["pledge_id"]]["status"] == "cancelled"
        stripe = sdk(stripe_env)
        assert stripe.v1.setup_intents.retrieve(intent_of(left)).status == "canceled"
        # The form can no longer save a card, and the place is free again.
        retry = post(client, {**CORNERSTONE, "email": "grace@example.org"})
        assert retry.status_code == 201, retry.text

        again = json.loads(
            sqlite_cli.ok("stripe", "sync", "--json", env=later(stripe_env, 1)).output
        )
    # Rerun an hour after the new pledge: nothing more to close.
    assert again["abandoned"] == []
    assert listed(sqlite_cli)[retry.json()["pledge_id"]]["status"] == "pending"


def test_sync_keeps_a_form_completed_at_stripe(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    body = post(service, PLEDGE).json()
    save_card(stripe_env, body["client_secret"])  # the confirm call never came
    result = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=later(stripe_env, 3)).output)
    assert result["abandoned"] == [] and result["intents_moved"] == 1
    assert listed(sqlite_cli)[body["pledge_id"]]["status"] == "authorized"
    assert sdk(stripe_env).v1.setup_intents.retrieve(intent_of(body)).status == "succeeded"


def test_organizer_cancel_closes_the_card_form_or_changes_nothing(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    body = post(service, PLEDGE).json()
    pid = str(body["pledge_id"])
    before = ledger_bytes(sqlite_cli)
    no_key = sqlite_cli("pledges", "cancel", pid, env={"STRIPE_SECRET_KEY": ""})
    assert no_key.exit_code != 0 and "Traceback" not in no_key.output
    assert "card form is still open at Stripe" in no_key.output
    assert "STRIPE_SECRET_KEY" in no_key.output
    assert ledger_bytes(sqlite_cli) == before
    assert sdk(stripe_env).v1.setup_intents.retrieve(intent_of(body)).status != "canceled"

    done = sqlite_cli.ok("pledges", "cancel", pid, env=stripe_env)
    assert f"Pledge {pid} is now cancelled." in done.output
    assert sdk(stripe_env).v1.setup_intents.retrieve(intent_of(body)).status == "canceled"
    assert listed(sqlite_cli)[int(pid)]["status"] == "cancelled"


def test_a_form_paid_before_the_cancel_is_recorded_not_cancelled(
    keep_it_all: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    body = post(keep_it_all, PLEDGE).json()
    assert body["mode"] == "payment"
    stripe = sdk(stripe_env)
    # The backer pays in the browser; no webhook or confirm call has reached us yet.
    stripe.v1.payment_intents.update(intent_of(body), params={"payment_method": "pm_card_visa"})
    stripe.v1.payment_intents.confirm(intent_of(body))
    result = sqlite_cli("pledges", "cancel", str(body["pledge_id"]), env=stripe_env)
    assert result.exit_code != 0 and "Traceback" not in result.output
    assert "is paid: it can no longer be cancelled, only refunded" in result.output
    row = listed(sqlite_cli)[body["pledge_id"]]
    assert (row["status"], row["paid"]) == ("paid", 20000)
    assert stripe.v1.payment_intents.retrieve(intent_of(body)).status == "succeeded"
    assert len(localstripe.succeeded_charges()) == 1 and localstripe.all("refunds") == []


def test_the_sweep_records_a_payment_it_finds_instead_of_cancelling(
    keep_it_all: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    paid = post(keep_it_all, PLEDGE).json()
    left = post(keep_it_all, {**PLEDGE, "email": "grace@example.org"}).json()
    stripe = sdk(stripe_env)
    stripe.v1.payment_intents.update(intent_of(paid), params={"payment_method": "pm_card_visa"})
    stripe.v1.payment_intents.confirm(intent_of(paid))
    result = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=later(stripe_env, 3)).output)
    assert result["abandoned"] == [left["pledge_id"]]
    rows = listed(sqlite_cli)
    assert rows[paid["pledge_id"]]["status"] == "paid"
    assert rows[left["pledge_id"]]["status"] == "cancelled"
    assert stripe.v1.payment_intents.retrieve(intent_of(left)).status == "canceled"


def test_money_for_a_pledge_already_over_is_recorded_once_and_reported(
    keep_it_all: TestClient,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = post(keep_it_all, PLEDGE).json()
    stripe = sdk(stripe_env)
    stripe.v1.payment_intents.update(intent_of(body), params={"payment_method": "pm_card_visa"})
    stripe.v1.payment_intents.confirm(intent_of(body))
    # A cancel that never reached Stripe (the ledger's own call, as before forms were closed).
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.write() as tx:
        pledges.transition(
            tx, body["pledge_id"], pledges.Status.CANCELLED, reason="cancelled by an organizer"
        )
    paid = as_dict(stripe.v1.payment_intents.retrieve(intent_of(body)))
    with caplog.at_level(logging.WARNING):
        for n in (1, 2):  # two deliveries of the news, as distinct events
            assert (
                deliver(keep_it_all, event("payment_intent.succeeded", paid, n)).status_code == 200
            )
    assert listed(sqlite_cli)[body["pledge_id"]]["status"] == "cancelled"
    with ledger.read() as conn:
        found = (
            conn.execute(
                sa.select(schema.journal.c.data).where(
                    schema.journal.c.action == "payment.orphaned"
                )
            )
            .scalars()
            .all()
        )
    ledger.dispose()
    assert len(found) == 1
    entry = json.loads(found[0])
    assert (entry["id"], entry["amount"], entry["status"]) == (
        body["pledge_id"],
        20000,
        "cancelled",
    )
    charge = paid["latest_charge"]["id"]  # the emulator expands it
    assert entry["charge"] == charge
    assert "is cancelled but Stripe took £200.00" in caplog.text
    # The organizer sees it in `status` until Stripe says the charge is refunded.
    status = json.loads(sqlite_cli.ok("status", "--json").output)
    [line] = status["attention"]
    assert f"£200.00 for pledge {body['pledge_id']}, which is cancelled (charge {charge}" in line
    assert "Needs attention" in sqlite_cli.ok("status").output
    stripe.v1.refunds.create(params={"charge": charge})  # from the dashboard, say
    refunded = as_dict(stripe.v1.charges.retrieve(charge))
    for n in (3, 4):
        assert deliver(keep_it_all, event("charge.refunded", refunded, n)).status_code == 200
    assert json.loads(sqlite_cli.ok("status", "--json").output)["attention"] == []
    assert "Needs attention" not in sqlite_cli.ok("status").output
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.read() as conn:
        actions = (
            conn.execute(
                sa.select(schema.journal.c.action).where(
                    schema.journal.c.action.like("payment.orphan%")
                )
            )
            .scalars()
            .all()
        )
    ledger.dispose()
    assert actions == ["payment.orphaned", "payment.orphan_refunded"]
    assert listed(sqlite_cli)[body["pledge_id"]]["status"] == "cancelled"


def test_the_same_form_sent_again_after_its_pledge_was_closed_says_reload(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    first = post(service, PLEDGE, **{"Idempotency-Key": "form-1"})
    assert first.status_code == 201
    sqlite_cli.ok("stripe", "sync", env=later(stripe_env, 3))
    forms = len(localstripe.all("setup_intents"))
    again = post(service, PLEDGE, **{"Idempotency-Key": "form-1"})
    assert again.status_code == 409 and again.json()["field"] == "Idempotency-Key"
    assert "reload the page to pledge again" in again.json()["error"]
    assert len(localstripe.all("setup_intents")) == forms  # no new card form
    fresh = post(service, PLEDGE, **{"Idempotency-Key": "form-2"})
    assert fresh.status_code == 201 and fresh.json()["pledge_id"] != first.json()["pledge_id"]


def saved_card_customer(env: dict[str, str], sqlite_cli: Cli, pledge_id: int) -> str | None:
    """Whose customer the pledge's saved card is on now, at Stripe."""
    method = card_of(sqlite_cli, pledge_id)
    assert method, "the ledger names no saved card"
    return id_of(sdk(env).v1.payment_methods.retrieve(method).customer)


def card_of(sqlite_cli: Cli, pledge_id: int) -> str | None:
    """The saved card's id the ledger holds for a pledge."""
    return _stripe_id(sqlite_cli, pledge_id, schema.pledges.c.stripe_payment_method)


def customer_of(sqlite_cli: Cli, pledge_id: int) -> str | None:
    """The Stripe customer's id the ledger holds for a pledge."""
    return _stripe_id(sqlite_cli, pledge_id, schema.pledges.c.stripe_customer)


def _stripe_id(sqlite_cli: Cli, pledge_id: int, column: sa.Column[str]) -> str | None:
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.read() as conn:
        found = conn.execute(sa.select(column).where(schema.pledges.c.id == pledge_id)).scalar()
    ledger.dispose()
    return found


def at_stripe(env: dict[str, str], customer: str) -> bool:
    """Whether Stripe still has the customer record (name, email)."""
    try:
        found = sdk(env).v1.customers.retrieve(customer)
    except stripe_sdk.InvalidRequestError as exc:
        assert exc.http_status == 404
        return False
    return not getattr(found, "deleted", False)


def test_cancelling_a_pledge_with_a_saved_card_removes_the_card_from_stripe(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    backer = post(service, {**PLEDGE, "email": "backer@example.org"}).json()
    save_card(stripe_env, backer["client_secret"])
    by_backer = backer["pledge_id"]
    assert confirm(service, backer).json()["status"] == "authorized"
    [by_organizer, kept] = authorized(service, stripe_env, ["4242424242424242"] * 2)
    methods = {pid: card_of(sqlite_cli, pid) for pid in (by_backer, by_organizer, kept)}
    customers = {pid: customer_of(sqlite_cli, pid) or "" for pid in methods}
    assert all(saved_card_customer(stripe_env, sqlite_cli, pid) for pid in methods)
    assert all(at_stripe(stripe_env, customer) for customer in customers.values())
    token = backer["manage_url"].rsplit("/", 1)[1]
    assert service.post(f"/api/manage/{token}/cancel").json()["status"] == "cancelled"
    sqlite_cli.ok("pledges", "cancel", str(by_organizer), env=stripe_env)
    stripe = sdk(stripe_env)
    for pid in (by_backer, by_organizer):
        assert listed(sqlite_cli)[pid]["status"] == "cancelled"
        assert card_of(sqlite_cli, pid) is None  # the ledger forgets the card's id too
        assert id_of(stripe.v1.payment_methods.retrieve(methods[pid]).customer) is None
        # The backer's name and email go too: the customer record is deleted.
        assert customer_of(sqlite_cli, pid) is None
        assert not at_stripe(stripe_env, customers[pid])
    assert saved_card_customer(stripe_env, sqlite_cli, kept)  # an authorized pledge keeps it
    assert at_stripe(stripe_env, customers[kept]) and customer_of(sqlite_cli, kept)
    again = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=stripe_env).output)
    assert again["cards_removed"] == [] and again["customers_removed"] == []


def test_a_missed_goal_releases_pledges_and_removes_their_cards_once(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, campaign_dir: Path
) -> None:
    ids = authorized(service, stripe_env, ["4242424242424242"] * 2)
    methods = {pid: card_of(sqlite_cli, pid) for pid in ids}
    customers = {pid: customer_of(sqlite_cli, pid) or "" for pid in ids}
    copy_campaign(campaign_dir, 'goal = "100.00"', 'goal = "5000.00"')
    done = json.loads(sqlite_cli.ok("collect", "--json", env=after(stripe_env)).output)
    result = done["result"]
    assert (result["released"], result["cards_removed"], result["customers_removed"]) == (2, 2, 2)
    assert not any(at_stripe(stripe_env, customer) for customer in customers.values())
    stripe = sdk(stripe_env)
    for pid in ids:
        assert listed(sqlite_cli)[pid]["status"] == "released"
        assert id_of(stripe.v1.payment_methods.retrieve(methods[pid]).customer) is None
    rerun = json.loads(sqlite_cli.ok("collect", "--json", env=after(stripe_env)).output)
    assert (rerun["result"]["cards_removed"], rerun["result"]["customers_removed"]) == (0, 0)


def test_a_customer_already_deleted_at_stripe_is_forgotten_without_an_error(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    """A crash after Stripe deleted the customer but before the ledger knew: the rerun ends it."""
    body = post(service, PLEDGE).json()
    customer = customer_of(sqlite_cli, body["pledge_id"]) or ""
    sdk(stripe_env).v1.customers.delete(customer)
    swept = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=later(stripe_env, 3)).output)
    assert swept["abandoned"] == [body["pledge_id"]]
    assert listed(sqlite_cli)[body["pledge_id"]]["status"] == "cancelled"
    assert customer_of(sqlite_cli, body["pledge_id"]) is None
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.read() as conn:
        actions = conn.execute(sa.select(schema.journal.c.action)).scalars().all()
    ledger.dispose()
    assert actions.count("pledge.customer_removed") == 1
