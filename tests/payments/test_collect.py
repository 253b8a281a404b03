"""fundraiser collect against the emulator: charge, fail, release, retry, and SIGKILL safety."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.stripekeys import ledger_keys
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.service.test_pledges import PLEDGE, confirm, post, sdk
from tests.stripe_fixtures import (
    AFTER_DEADLINE,
    LocalStripe,
    TestClient,
    copy_campaign,
)

# pytest finds fixtures by name in the module: bind the shared ones here.
localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

AUTH_CARD = "4000002500003155"  # 3-D Secure: saved on-session, refused off-session
DECLINE = "pm_card_chargeCustomerFail"  # saves, then declines every charge


def authorized(service: TestClient, env: dict[str, str], cards: list[str]) -> list[int]:
    """Pledges whose cards were saved, as the page and the confirm call would leave them."""
    client = sdk(env)
    ids = []
    for n, card in enumerate(cards):
        body = post(service, {**PLEDGE, "email": f"p{n}-{random.random()}@example.org"}).json()
        seti = body["client_secret"].split("_secret_")[0]
        if card.isdigit():
            pm = client.v1.payment_methods.create(
                params={
                    "type": "card",
                    "card": {"number": card, "exp_month": 12, "exp_year": 2030, "cvc": "123"},
                }
            ).id
            client.v1.setup_intents.confirm(seti, params={"payment_method": pm})
            client.v1.setup_intents.confirm(seti)  # the backer completes 3-D Secure
        else:
            client.v1.setup_intents.confirm(seti, params={"payment_method": card})
        answer = confirm(service, body).json()
        assert answer["status"] == "authorized", answer
        ids.append(body["pledge_id"])
    return ids


def listed(cli: Cli) -> dict[int, dict[str, Any]]:
    result = cli.ok("pledges", "list", "--json", env={"FUNDRAISER_NOW": AFTER_DEADLINE})
    return {p["id"]: p for p in json.loads(result.output)}


def after(env: dict[str, str], **extra: str) -> dict[str, str]:
    return {**env, "FUNDRAISER_NOW": AFTER_DEADLINE, **extra}


def test_collect_charges_marks_failures_and_mails_fix_links(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    ids = authorized(service, stripe_env, ["pm_card_visa", "pm_card_visa", DECLINE, AUTH_CARD])
    early = sqlite_cli("collect", env=stripe_env)
    assert early.exit_code == 2 and "open until" in early.output
    dry = sqlite_cli.ok("collect", "--dry-run", env=after(stripe_env))
    assert "Would charge 4 pledges, £800.00" in dry.output
    assert "If 5-10% fail: £720.00 to £760.00" in dry.output
    assert localstripe.succeeded_charges() == []
    done = sqlite_cli.ok("collect", "--json", env=after(stripe_env))
    result = json.loads(done.output)["result"]
    assert result["paid"] == 2 and result["collected"] == 40000
    assert result["failures"] == {"authentication_required": 1, "card_declined": 1}
    rows = listed(sqlite_cli)
    assert [rows[i]["status"] for i in ids] == ["paid", "paid", "payment_failed", "payment_failed"]
    assert len(localstripe.succeeded_charges()) == 2
    # Rerunning charges nothing more.
    sqlite_cli.ok("collect", env=after(stripe_env))
    assert len(localstripe.succeeded_charges()) == 2
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.read() as conn:
        mails = conn.execute(
            sa.select(schema.outbox.c.pledge_id, schema.outbox.c.data).where(
                schema.outbox.c.kind == "payment_failed"
            )
        ).all()
    assert sorted(m.pledge_id for m in mails) == ids[2:]
    fix_url = json.loads(mails[0].data)["fix_url"]
    assert fix_url.startswith("http://testserver/manage/")

    # The backer follows the link, saves a working card; collect charges it.
    token = fix_url.rsplit("/", 1)[1]
    assert service.get(f"/api/manage/{token}").json()["can_fix"] is True
    form = service.post(f"/api/manage/{token}/fix").json()
    seti = form["client_secret"].split("_secret_")[0]
    sdk(stripe_env).v1.setup_intents.confirm(seti, params={"payment_method": "pm_card_visa"})
    fixed = service.post(f"/api/manage/{token}/fix/confirm", json={"setup_intent": seti}).json()
    assert fixed["status"] == "authorized"
    sqlite_cli.ok("collect", env=after(stripe_env))
    assert listed(sqlite_cli)[mails[0].pledge_id]["status"] == "paid"
    assert len(localstripe.succeeded_charges()) == 3


def test_retry_lapses_after_the_fix_window(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    [pid] = authorized(service, stripe_env, [DECLINE])
    sqlite_cli.ok("collect", env=after(stripe_env))
    late = after(stripe_env, FUNDRAISER_NOW="2027-03-20T09:00:00+00:00")
    result = sqlite_cli.ok("collect", "--retry", env=late)
    assert "1 pledge lapsed" in result.output
    assert listed(sqlite_cli)[pid]["status"] == "failed"


def test_goal_missed_releases_everyone_and_charges_nothing(
    service: TestClient,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    localstripe: LocalStripe,
    campaign_dir: Path,
) -> None:
    ids = authorized(service, stripe_env, ["pm_card_visa"])
    copy_campaign(campaign_dir, 'goal = "100.00"', 'goal = "5000.00"')
    dry = sqlite_cli.ok("collect", "--dry-run", env=after(stripe_env))
    assert "Would release 1 pledge" in dry.output
    sqlite_cli.ok("collect", env=after(stripe_env))
    assert listed(sqlite_cli)[ids[0]]["status"] == "released"
    assert localstripe.succeeded_charges() == []
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.read() as conn:
        kinds = conn.execute(sa.select(schema.outbox.c.kind)).scalars().all()
    assert "campaign_failed" in kinds


@pytest.mark.tampers
def test_a_charge_made_before_a_crash_is_found_not_repeated(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    """The process died after Stripe charged and before the ledger heard: rerun finds it."""
    [pid] = authorized(service, stripe_env, ["pm_card_visa"])
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.engine.begin() as conn:  # behind the journal's back: a state to start from
        conn.execute(
            schema.pledges.update()
            .where(schema.pledges.c.id == pid)
            .values(status="processing", attempts=1)
        )
        row = conn.execute(schema.pledges.select().where(schema.pledges.c.id == pid)).one()
    keys = ledger_keys(ledger)
    sdk(stripe_env).v1.payment_intents.create(
        params={
            "amount": int(row.amount),
            "currency": "gbp",
            "customer": row.stripe_customer,
            "payment_method": row.stripe_payment_method,
            "off_session": True,
            "confirm": True,
            "metadata": keys.metadata(pid, attempt=1),
        }
    )
    sqlite_cli.ok("collect", env=after(stripe_env))
    assert listed(sqlite_cli)[pid]["status"] == "paid"
    assert len(localstripe.succeeded_charges()) == 1


_RUN = "import sys\nfrom fundraiser.cli import main\nmain(sys.argv[1:])\n"


def test_collect_killed_at_random_points_charges_each_pledge_at_most_once(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    cards = ["pm_card_visa"] * 20 + [DECLINE] * 4
    ids = authorized(service, stripe_env, cards)
    env = {**os.environ, **after(stripe_env), "PYTHONPATH": str(Path(__file__).parents[2])}
    args = [
        sys.executable,
        "-c",
        _RUN,
        "--campaign",
        str(sqlite_cli.campaign),
        "--db",
        sqlite_cli.db_url,
        "collect",
        "--rate",
        "15",
    ]
    rng = random.Random(7)
    kills = 0
    for run in range(12):
        proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        if run < 6:
            # Wait until this run has charged something (start-up time varies with
            # load), then kill it at a random point in the middle of its work.
            before = len(localstripe.all("charges"))
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if len(localstripe.all("charges")) > before:
                    break
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.25))
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                kills += 1
        proc.wait(timeout=120)
        assert proc.stdout and proc.stderr
        out, err = proc.stdout.read(), proc.stderr.read()
        proc.stdout.close()
        proc.stderr.close()
        if proc.returncode == 0 and run >= 6:
            break
        assert proc.returncode in (0, -signal.SIGKILL) or b"in flight" in out + err, (out, err)
    else:
        raise AssertionError("collect never finished")
    assert kills >= 1
    charged = Counter(c["customer"] for c in localstripe.succeeded_charges())
    assert charged and max(charged.values()) == 1
    rows = listed(sqlite_cli)
    states = Counter(rows[i]["status"] for i in ids)
    assert states == {"paid": 20, "payment_failed": 4}
    assert sum(charged.values()) == 20


def test_card_forms_left_open_at_the_deadline_are_closed(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, localstripe: LocalStripe
) -> None:
    [saved] = authorized(service, stripe_env, ["pm_card_visa"])
    open_form = post(service, {**PLEDGE, "email": "late@example.org"}).json()
    seti = open_form["client_secret"].split("_secret_")[0]
    dry = sqlite_cli.ok("collect", "--dry-run", env=after(stripe_env))
    assert "1 online pledge never saved a card: not charged; its card form would be closed" in (
        " ".join(dry.output.split())
    )
    assert sdk(stripe_env).v1.setup_intents.retrieve(seti).status != "canceled"
    done = json.loads(sqlite_cli.ok("collect", "--json", env=after(stripe_env)).output)
    assert done["result"]["forms_closed"] == 1 and done["result"]["paid"] == 1
    rows = listed(sqlite_cli)
    assert (rows[saved]["status"], rows[open_form["pledge_id"]]["status"]) == ("paid", "cancelled")
    # Closed at Stripe: finishing the form now would save nothing.
    assert sdk(stripe_env).v1.setup_intents.retrieve(seti).status == "canceled"
    assert len(localstripe.succeeded_charges()) == 1
    again = json.loads(sqlite_cli.ok("collect", "--json", env=after(stripe_env)).output)
    assert again["result"]["forms_closed"] == 0 and len(localstripe.succeeded_charges()) == 1


def test_the_rate_limiter_spaces_calls_and_refuses_zero() -> None:
    from fundraiser.errors import UserInputError
    from fundraiser.payments.ratelimit import RateLimiter

    limiter = RateLimiter(50)  # one call per 20 ms, the first at once
    started = time.monotonic()
    for _ in range(11):
        limiter.wait()
    assert time.monotonic() - started >= 0.2 - 0.005  # a floor: a slow machine only adds
    assert limiter.calls == 11
    with pytest.raises(UserInputError, match="--rate"):
        RateLimiter(0)


def test_goal_missed_owes_bank_payments_back_and_releases_cards(
    service: TestClient,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    localstripe: LocalStripe,
    campaign_dir: Path,
) -> None:
    """A card saved and a bank transfer received, goal missed: the card is never charged,
    the transfer is owed back in full (issue 13, item 1)."""
    [card] = authorized(service, stripe_env, ["pm_card_visa"])
    sqlite_cli.ok(
        "pledges", "add", "--name", "Bea Bank", "--email", "bea@example.org", "--address",
        "1 Bank Row", "--amount", "150.00", "--status", "paid", "--reference", "BT-9",
    )  # fmt: skip
    copy_campaign(campaign_dir, 'goal = "100.00"', 'goal = "5000.00"')
    done = json.loads(sqlite_cli.ok("collect", "--json", env=after(stripe_env)).output)
    assert done["plan"]["decision"] == "release" and done["plan"]["paid_offline"] == 1
    assert done["result"]["owed_back"] == 1
    assert listed(sqlite_cli)[card]["status"] == "released"
    assert localstripe.succeeded_charges() == []
    owed = json.loads(sqlite_cli.ok("refunds", "list", "--json").output)
    assert [(r["email"], r["method"], r["amount"]) for r in owed] == [
        ("bea@example.org", "bank", 15000)
    ]
    assert owed[0]["remainders"][0]["reason"] == "goal missed"
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.read() as conn:
        told = conn.execute(
            sa.select(schema.outbox.c.to_email).where(schema.outbox.c.kind == "campaign_failed")
        ).scalars()
        assert sorted(told) == sorted(["bea@example.org", listed(sqlite_cli)[card]["email"]])
    ledger.dispose()
