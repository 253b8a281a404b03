"""POST /api/join against the Stripe emulator (a process): a join paid by card becomes a
member with a fee subscription; declines, bad input and replays change nothing."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.links import MEMBER, TOP_UP, Signer
from fundraiser.payments.webhooks import signature_header
from tests import joinfixtures, stripe_fixtures
from tests.joinfixtures import (
    JOIN,
    JOIN_NOW,
    confirm_join,
    join_client,
    post_join,
    save_card,
    sdk,
)
from tests.stripe_fixtures import (
    LINK_SECRET,
    WEBHOOK_SECRET,
    LocalStripe,
    TestClient,
    copy_campaign,
)

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
join_service = joinfixtures.join_service


def rows(url: str, table: sa.Table) -> list[Any]:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return list(conn.execute(sa.select(table)).all())
    finally:
        ledger.dispose()


def test_a_join_paid_by_card_becomes_a_member_with_a_fee(
    join_service: TestClient,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
    sqlite_url: str,
) -> None:
    answer = post_join(join_service, JOIN, **{"Idempotency-Key": "join-1"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert (body["kind"], body["amount"], body["currency"]) == ("join", 10000, "GBP")
    assert body["client_secret"].startswith("seti_") and body["method"] == "card"
    again = post_join(join_service, JOIN, **{"Idempotency-Key": "join-1"})
    assert again.status_code == 200 and again.json()["pledge_id"] == body["pledge_id"]
    # Not paid yet: nothing admitted.
    assert confirm_join(join_service, body).json()["paid"] is False
    assert rows(sqlite_url, schema.members) == []
    save_card(stripe_env, body["client_secret"])
    done = confirm_join(join_service, body).json()
    assert done["paid"] is True and done["application"] == "admitted"
    assert done["member_number"] == 1 and done["fee_started"] is True
    # Asked again (a reload): the same member, the same single subscription.
    assert confirm_join(join_service, body).json()["member_number"] == 1
    (member,) = rows(sqlite_url, schema.members)
    assert (member.number, member.name) == (1, "Grace Hopper")
    (entry,) = rows(sqlite_url, schema.register_entries)
    assert (entry.member_number, entry.shares, entry.amount) == (1, 2, 10000)
    (fee,) = rows(sqlite_url, schema.fee_subscriptions)
    assert (fee.member_number, fee.rate, fee.amount, fee.interval) == (1, "standard", 300, "month")
    (invoice,) = rows(sqlite_url, schema.fee_invoices)
    assert (invoice.status, invoice.amount, invoice.subscription_id) == ("paid", 300, fee.id)
    subs = localstripe.all("subscriptions")
    assert [s["id"] for s in subs] == [fee.stripe_subscription]
    assert subs[0]["items"]["data"][0]["plan"]["amount"] == 300
    assert subs[0]["customer"] == fee.stripe_customer
    mails = [m.kind for m in rows(sqlite_url, schema.outbox)]
    assert "welcome" in mails
    figures = join_service.get("/api/campaign").json()
    assert figures["membership"]["members"] == 1
    text = json.dumps(figures)
    assert "grace@" not in text.lower() and "cus_" not in text and "sub_" not in text


def test_a_declined_card_leaves_no_member_and_nothing_owed(
    join_service: TestClient, stripe_env: dict[str, str], sqlite_url: str
) -> None:
    body = post_join(join_service, JOIN).json()
    save_card(stripe_env, body["client_secret"], "pm_card_chargeCustomerFail")
    refused = confirm_join(join_service, body)
    assert refused.status_code == 402 and refused.json()["field"] == "card"
    assert "declined" in refused.json()["error"].lower()
    answer = confirm_join(join_service, body).json()
    assert answer["paid"] is False and answer["member_number"] is None
    assert rows(sqlite_url, schema.members) == []
    assert rows(sqlite_url, schema.register_entries) == []
    assert rows(sqlite_url, schema.applications) == []
    assert rows(sqlite_url, schema.remainders) == []
    assert rows(sqlite_url, schema.fee_subscriptions) == []
    (pledge,) = rows(sqlite_url, schema.pledges)
    assert (pledge.status, pledge.paid_amount) == ("pending", 0)


def _event(intent: dict[str, Any], event_id: str) -> bytes:
    return json.dumps(
        {
            "id": event_id,
            "object": "event",
            "type": "payment_intent.succeeded",
            "created": int(JOIN_NOW.timestamp()),
            "livemode": False,
            "data": {"object": intent},
        }
    ).encode()


def test_a_replayed_webhook_admits_once(
    join_service: TestClient, stripe_env: dict[str, str], sqlite_url: str
) -> None:
    body = post_join(join_service, JOIN).json()
    save_card(stripe_env, body["client_secret"])
    assert confirm_join(join_service, body).json()["member_number"] == 1
    (pledge,) = rows(sqlite_url, schema.pledges)
    intent = sdk(stripe_env).v1.payment_intents.retrieve(pledge.stripe_intent).to_dict()
    assert intent["status"] == "succeeded"
    payload = _event(intent, "evt_join_paid_1")
    for duplicate in (False, True, True):
        answer = join_service.post(
            "/api/stripe/webhook",
            content=payload,
            headers={"Stripe-Signature": signature_header(payload, WEBHOOK_SECRET)},
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["duplicate"] is duplicate
    # The same payment under another event id (Stripe's retry of a lost one).
    other = _event(intent, "evt_join_paid_2")
    join_service.post(
        "/api/stripe/webhook",
        content=other,
        headers={"Stripe-Signature": signature_header(other, WEBHOOK_SECRET)},
    )
    assert [m.number for m in rows(sqlite_url, schema.members)] == [1]
    assert len(rows(sqlite_url, schema.register_entries)) == 1
    assert len(rows(sqlite_url, schema.fee_subscriptions)) == 1
    assert len(rows(sqlite_url, schema.applications)) == 1


@pytest.mark.parametrize(
    ("change", "field", "status", "words"),
    [
        ({"shares": 0}, "shares", 400, "from 1 to 200"),
        ({"shares": 201}, "shares", 400, "from 1 to 200"),
        ({"shares": "2"}, "shares", 400, "whole number"),
        ({"rate": "platinum"}, "rate", 400, "must be one of"),
        ({"rate": None}, "rate", 400, "must be one of standard, reduced, supporter, free"),
        ({"method": "sepa_debit"}, "method", 400, "euros only"),
        ({"method": "cheque"}, "method", 400, "card or sepa_debit"),
        ({"consent": False}, "consent", 400, "must be true"),
        ({"colour": "red"}, "colour", 400, "not a known field"),
        ({"name": "x" * 201}, "name", 400, "longer than 200"),
        ({"address": "a\x00b"}, "address", 400, "control characters"),
        ({"email": "nope"}, "email", 400, ""),
        ({"rate": "free"}, "rate", 409, "every free place"),
    ],
)
def test_bad_joins_name_the_field_and_change_nothing(
    join_service: TestClient,
    sqlite_url: str,
    change: dict[str, Any],
    field: str,
    status: int,
    words: str,
) -> None:
    answer = post_join(join_service, {**JOIN, **change})
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field
    assert words in answer.json()["error"]
    assert rows(sqlite_url, schema.pledges) == []
    assert rows(sqlite_url, schema.joins) == []


def test_joining_waits_for_the_campaign_to_close(service: TestClient) -> None:
    answer = post_join(service, JOIN)
    assert answer.status_code == 409
    assert "pledge page" in answer.json()["error"]


def test_the_cap_counts_what_an_email_already_pays_for(join_service: TestClient) -> None:
    first = post_join(join_service, {**JOIN, "shares": 150})
    assert first.status_code == 201
    over = post_join(join_service, {**JOIN, "shares": 60})
    assert over.status_code == 422
    message = over.json()["error"]
    assert "no one may hold more than 200 shares" in message and "150" not in message


def _token(number: int, purpose: str = TOP_UP, days: int = 1) -> str:
    return Signer(LINK_SECRET).sign(number, purpose, JOIN_NOW + timedelta(days=days))


def test_a_member_tops_up_with_their_link(
    join_service: TestClient, stripe_env: dict[str, str], sqlite_url: str
) -> None:
    first = post_join(join_service, JOIN).json()
    save_card(stripe_env, first["client_secret"])
    assert confirm_join(join_service, first).json()["member_number"] == 1
    terms = join_service.post("/api/join/top-up", json={"top_up": _token(1)})
    assert terms.json() == {"member_number": 1, "held": 2, "most": 198}
    body = {"top_up": _token(1), "shares": 3, "method": "card", "consent": True}
    answer = post_join(join_service, body)
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert (made["kind"], made["amount"]) == ("top-up", 15000)
    save_card(stripe_env, made["client_secret"])
    done = confirm_join(join_service, made).json()
    assert done["kind"] == "top-up" and done["member_number"] == 1
    entries = rows(sqlite_url, schema.register_entries)
    assert [(e.member_number, e.shares, e.kind) for e in entries] == [
        (1, 2, "issue"),
        (1, 3, "issue"),
    ]
    assert entries[1].certificate_number != entries[0].certificate_number
    assert len(rows(sqlite_url, schema.fee_subscriptions)) == 1  # a top-up has no fee
    # More than the cap allows, a name sent with it, or a fee rate: refused.
    assert post_join(join_service, {**body, "shares": 196}).json()["field"] == "shares"
    assert post_join(join_service, {**body, "name": "Eve"}).json()["field"] == "name"


@pytest.mark.parametrize(
    ("token", "words"),
    [
        (_token(1, days=-1), "this link has expired"),
        (_token(1, purpose=MEMBER), "this link is for something else"),
        (_token(1)[:-3] + "abc", "this link is not valid"),
        (Signer("another secret").sign(1, TOP_UP, JOIN_NOW + timedelta(days=1)), "not valid"),
        ("<script>alert(1)</script>", "not valid"),
    ],
)
def test_a_bad_top_up_link_is_refused_in_words(
    join_service: TestClient, sqlite_url: str, token: str, words: str
) -> None:
    for answer in (
        join_service.post("/api/join/top-up", json={"top_up": token}),
        post_join(join_service, {"top_up": token, "shares": 1, "consent": True}),
    ):
        assert answer.status_code == 403
        assert answer.json()["field"] == "top_up"
        assert words in answer.json()["error"]
    assert rows(sqlite_url, schema.pledges) == []


def test_free_places_are_those_the_supporters_fund(
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
) -> None:
    # A yearly fee: the emulator dates invoices by the real clock, months before this
    # test's (after the campaign, in 2027); a year's period still covers it.
    joinfixtures.automatic(campaign_dir)
    copy_campaign(campaign_dir, 'fee_interval = "month"', 'fee_interval = "year"')
    with join_client(campaign_dir, sqlite_url, stripe_env) as service:

        def joined(email: str, rate: str) -> dict[str, Any]:
            made = post_join(service, {**JOIN, "email": email, "rate": rate})
            assert made.status_code == 201, made.text
            save_card(stripe_env, made.json()["client_secret"])
            return dict(confirm_join(service, made.json()).json())

        none_yet = post_join(service, {**JOIN, "rate": "free"})
        assert none_yet.status_code == 409 and none_yet.json()["field"] == "rate"
        # £6 a year against a standard £3: one free place funded.
        assert joined("supporter@example.org", "supporter")["member_number"] == 1
        free = joined("free@example.org", "free")
        assert free["member_number"] == 2 and free["fee_started"] is True
        fees = {f.member_number: f for f in rows(sqlite_url, schema.fee_subscriptions)}
        assert (fees[2].rate, fees[2].amount, fees[2].stripe_subscription) == ("free", 0, None)
        assert len(localstripe.all("subscriptions")) == 1  # the supporter's only
        taken = post_join(service, {**JOIN, "email": "late@example.org", "rate": "free"})
        assert taken.status_code == 409 and taken.json()["field"] == "rate"
        assert "every free place the supporters fund is taken" in taken.json()["error"]
        figures = service.get("/api/campaign").json()["membership"]
        assert (figures["free_places_funded"], figures["free_places_taken"]) == (1, 1)
