"""Refunds (never more than was paid) and `fundraiser stripe sync` against the emulator."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import stripe_fixtures
from tests.conftest import Cli
from tests.payments.test_collect import after, authorized, listed
from tests.service.test_pledges import PLEDGE, post, sdk
from tests.stripe_fixtures import (
    LocalStripe,
    TestClient,
    copy_campaign,
)

# pytest finds fixtures by name in the module: bind the shared ones here.
localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env


def paid_pledge(service: TestClient, env: dict[str, str], cli: Cli) -> int:
    [pid] = authorized(service, env, ["pm_card_visa"])
    cli.ok("collect", env=after(env))
    return pid


def refunds_in_emulator(localstripe: LocalStripe) -> int:
    return sum(r["amount"] for r in localstripe.all("refunds"))


def test_refund_partial_then_rest_never_more(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    pid = paid_pledge(service, stripe_env, sqlite_cli)
    env = after(stripe_env)
    first = json.loads(
        sqlite_cli.ok("pledges", "refund", str(pid), "--amount", "50.00", "--json", env=env).output
    )
    assert (first["amount"], first["refunded"], first["status"]) == (5000, 5000, "paid")
    too_much = sqlite_cli("pledges", "refund", str(pid), "--amount", "150.01", env=env)
    assert too_much.exit_code == 2 and "£150.00 left to refund" in too_much.output
    assert refunds_in_emulator(localstripe) == 5000
    rest = json.loads(sqlite_cli.ok("pledges", "refund", str(pid), "--json", env=env).output)
    assert (rest["amount"], rest["refunded"], rest["status"]) == (15000, 20000, "refunded")
    again = sqlite_cli("pledges", "refund", str(pid), env=env)
    assert again.exit_code == 2 and "refunded" in again.output
    assert refunds_in_emulator(localstripe) == 20000
    assert listed(sqlite_cli)[pid]["refunded"] == 20000


def test_refund_total_never_exceeds_payment(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    pid = paid_pledge(service, stripe_env, sqlite_cli)
    env = after(stripe_env)

    @settings(
        max_examples=12,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(st.integers(min_value=1, max_value=25000))
    def one_refund(pence: int) -> None:
        amount = f"{pence // 100}.{pence % 100:02d}"
        sqlite_cli("pledges", "refund", str(pid), "--amount", amount, env=env)
        assert refunds_in_emulator(localstripe) <= 20000
        row = listed(sqlite_cli)[pid]
        assert row["refunded"] == refunds_in_emulator(localstripe) <= row["paid"]

    one_refund()


def test_sync_saves_cards_whose_confirm_call_never_came(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    body = post(service, PLEDGE).json()
    seti = body["client_secret"].split("_secret_")[0]
    sdk(stripe_env).v1.setup_intents.confirm(seti, params={"payment_method": "pm_card_visa"})
    assert listed(sqlite_cli)[body["pledge_id"]]["status"] == "pending"
    result = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=stripe_env).output)
    assert result["intents_moved"] == 1
    assert listed(sqlite_cli)[body["pledge_id"]]["status"] == "authorized"
    again = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=stripe_env).output)
    assert again["events_new"] == 0 and again["intents_moved"] == 0


def test_sync_applies_missed_payment_events_keep_it_all(
    service: TestClient,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    campaign_dir: Path,
) -> None:
    copy_campaign(campaign_dir, 'mode = "all-or-nothing"', 'mode = "keep-it-all"')
    # A fresh service reads the changed campaign; the ledger is the same file.
    from fundraiser.service.app import create_app
    from tests.stripe_fixtures import make_settings

    settings = make_settings(campaign_dir, sqlite_cli.db_url, stripe_env)
    with TestClient(create_app(settings)) as kia:
        body = post(kia, PLEDGE).json()
    assert body["mode"] == "payment" and body["client_secret"].startswith("pi_")
    pi = body["client_secret"].split("_secret_")[0]
    client = sdk(stripe_env)
    # What Stripe.js does: the card on the PaymentIntent, confirmed (no webhook delivered).
    client.v1.payment_intents.update(pi, params={"payment_method": "pm_card_visa"})
    client.v1.payment_intents.confirm(pi)
    assert listed(sqlite_cli)[body["pledge_id"]]["status"] == "pending"
    result = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=stripe_env).output)
    assert result["events_new"] >= 1
    row = listed(sqlite_cli)[body["pledge_id"]]
    assert (row["status"], row["paid"]) == ("paid", 20000)
    # Resumable and idempotent: a second run finds nothing new to apply.
    again = json.loads(sqlite_cli.ok("stripe", "sync", "--json", env=stripe_env).output)
    assert again["events_new"] == 0 and again["events_applied"] == 0


def test_scale_back_remainder_is_refunded_to_the_card_once_and_shares_stay(
    service: TestClient,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    localstripe: LocalStripe,
    campaign_dir: Path,
) -> None:
    # An offer of at most 3 shares (GBP 150): a 4-share pledge is scaled back by one.
    toml = campaign_dir / "campaign.toml"
    toml.write_text(
        toml.read_text().replace('offer_maximum = "400000.00"', 'offer_maximum = "150.00"')
    )
    pid = paid_pledge(service, stripe_env, sqlite_cli)
    env = after(stripe_env)
    issued = json.loads(sqlite_cli.ok("shares", "issue", "--json", env=env).output)
    assert (issued["shares"], issued["refund_total"]) == (3, 5000)
    dry = sqlite_cli.ok("refunds", "send", "--dry-run", env=env)
    assert "1 card refund, £50.00" in dry.output and refunds_in_emulator(localstripe) == 0
    sqlite_cli.ok("refunds", "send", env=env)
    assert refunds_in_emulator(localstripe) == 5000
    again = sqlite_cli.ok("refunds", "send", env=env)
    assert "0 card refunds" in again.output
    assert refunds_in_emulator(localstripe) == 5000
    pledge = listed(sqlite_cli)[pid]
    assert (pledge["status"], pledge["paid"], pledge["refunded"]) == ("paid", 20000, 5000)
    [member] = json.loads(sqlite_cli.ok("members", "list", "--json", env=env).output)
    assert member["shares"] == 3 and member["amount_paid"] == 15000
    # Money that never became shares leaves the register alone: nothing flagged.
    assert json.loads(sqlite_cli.ok("members", "flagged", "--json", env=env).output) == []
    mails = json.loads(sqlite_cli.ok("mail", "list", "--json", env=env).output)
    assert [m["kind"] for m in mails].count("refund_sent") == 1
