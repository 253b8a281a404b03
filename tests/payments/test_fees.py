"""Fee events through the webhook: Stripe's invoice and subscription shapes, applied once."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fundraiser.config import Interval, Rate, load_campaign
from fundraiser.ledger import open_ledger, schema
from fundraiser.membership import fees
from fundraiser.money import Money
from fundraiser.payments.fees import fee_event
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.membership.memberhelp import make_members
from tests.payments.test_webhooks import deliver, event
from tests.stripe_fixtures import TestClient

localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

#: Stripe's own example invoice (from its openapi fixtures, fixtures3.json), kept in the
#: repository so the test runs from any checkout.
INVOICE = Path(__file__).resolve().parent / "stripe" / "invoice.json"


def stamp(day: str) -> int:
    return int(datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp())


def invoice(number: str, sub: str, start: str, end: str, *, paid: bool) -> dict[str, Any]:
    """Stripe's own example invoice, made one of a member's monthly fees."""
    obj = json.loads(INVOICE.read_text())
    obj = {**obj, "id": number, "currency": "gbp", "amount_due": 300}
    obj["amount_paid"] = 300 if paid else 0
    obj["status"] = "paid" if paid else "open"
    obj["subscription"] = None  # the newer shape: named under parent
    obj["parent"] = {
        "type": "subscription_details",
        "subscription_details": {"metadata": {}, "subscription": sub},
    }
    line = {**obj["lines"]["data"][0], "period": {"start": stamp(start), "end": stamp(end)}}
    obj["lines"] = {**obj["lines"], "data": [line]}
    return obj


def test_invoice_events_in_stripes_shape_become_fee_events() -> None:
    paid = fee_event(
        "invoice.paid", invoice("in_1", "sub_1", "2027-03-01", "2027-04-01", paid=True), 1
    )
    assert paid is not None
    assert (paid.subscription, paid.invoice, paid.amount, paid.currency) == (
        "sub_1",
        "in_1",
        300,
        "GBP",
    )
    assert (paid.period_start, paid.period_end) == ("2027-03-01", "2027-04-01")
    lone = json.loads(INVOICE.read_text())
    lone["parent"] = None
    assert fee_event("invoice.paid", lone, 1) is None  # not a subscription's invoice


@pytest.mark.keep_it_all  # members made before the deadline
def test_fee_webhooks_are_applied_once_and_the_board_sees_them(
    service: TestClient, sqlite_url: str, campaign_dir: Path, sqlite_cli: Cli
) -> None:
    ledger = open_ledger(sqlite_url)
    campaign = load_campaign(campaign_dir / "campaign.toml")
    make_members(ledger, campaign, 3)
    with ledger.write() as tx:
        for n in (1, 2, 3):
            fees.start(
                tx,
                member_number=n,
                rate=Rate.STANDARD,
                amount=Money(300, "GBP"),
                interval=Interval.MONTH,
                started_on="2026-12-01",
                stripe_subscription=f"sub_m{n}",
                stripe_customer=f"cus_m{n}",
            )
    ledger.dispose()
    month = ("2026-12-01", "2027-01-01")
    paid = event("invoice.paid", invoice("in_m1", "sub_m1", *month, paid=True), 1)
    also = event("invoice.payment_succeeded", invoice("in_m1", "sub_m1", *month, paid=True), 2)
    failed = event("invoice.payment_failed", invoice("in_m2", "sub_m2", *month, paid=False), 3)
    gone = event("customer.subscription.deleted", {"id": "sub_m3", "ended_at": stamp(month[0])}, 4)
    stranger = event("invoice.paid", invoice("in_x", "sub_unknown", *month, paid=True), 5)
    for delivery in (paid, paid, also, failed, gone, failed, stranger):
        assert deliver(service, delivery).status_code == 200

    ledger = open_ledger(sqlite_url)
    with ledger.read() as conn:
        invoices = conn.execute(
            sa.select(schema.fee_invoices.c.id, schema.fee_invoices.c.status).order_by(
                schema.fee_invoices.c.id
            )
        ).all()
        outcomes = {
            row.id: row.applied_at
            for row in conn.execute(
                sa.select(schema.stripe_events.c.id, schema.stripe_events.c.applied_at)
            )
        }
    ledger.dispose()
    assert [tuple(r) for r in invoices] == [("in_m1", "paid"), ("in_m2", "failed")]
    assert outcomes[stranger["id"]] is None  # kept to apply once its subscription is known

    # The CLI's clock is 2026-12-10: member 1 paid, 2 failed (late), 3 ended.
    report = json.loads(sqlite_cli.ok("members", "fees", "--json").output)
    assert report["counts"] == {"current": 1, "due": 0, "late": 1, "lapsed": 0, "ended": 1}
    assert [(f["member"], f["standing"], f["lapses_on"]) for f in report["fees"]] == [
        (2, "late", "2026-12-31")
    ]
    words = sqlite_cli.ok("members", "fees").output
    assert "1 current, 0 due, 1 late, 0 lapsed, 1 ended" in words
    assert "£6.00 a month from the fees still standing" in words


#: Stripe's own example subscription (fixtures3.json), kept beside the invoice.
SUBSCRIPTION = Path(__file__).resolve().parent / "stripe" / "subscription.json"


def updated(sub: str, plan: str, amount: int, *, status: str = "active") -> dict[str, Any]:
    """Stripe's example subscription, billed by `plan` (the newer shape: a price on the item)."""
    obj = json.loads(SUBSCRIPTION.read_text())
    item = obj["items"]["data"][0]
    price = {**item["price"], "id": plan, "unit_amount": amount, "currency": "gbp"}
    obj["items"]["data"][0] = {**item, "price": price}
    return {**obj, "id": sub, "status": status, "currency": "gbp"}


@pytest.mark.keep_it_all  # a member made before the deadline
def test_a_subscription_moved_to_another_plan_at_stripe_moves_the_members_rate(
    service: TestClient, sqlite_url: str, campaign_dir: Path
) -> None:
    from fundraiser.config.model import Fee
    from fundraiser.payments.plans import plan_id, rate_of

    campaign = load_campaign(campaign_dir / "campaign.toml")
    fee = campaign.membership.fee if campaign.membership else None
    assert isinstance(fee, Fee) and fee.supporter is not None
    supporter = plan_id(campaign.coop.name, fee, Rate.SUPPORTER)
    assert rate_of(supporter) == "supporter" and rate_of("price_1PgafmB7WZ01zgkW6dKueIc5") is None
    ledger = open_ledger(sqlite_url)
    make_members(ledger, campaign, 1)
    with ledger.write() as tx:
        fees.start(
            tx,
            member_number=1,
            rate=Rate.STANDARD,
            amount=fee.amount,
            interval=Interval.MONTH,
            started_on="2026-12-01",
            stripe_subscription="sub_up",
            stripe_customer="cus_up",
        )
    ledger.dispose()

    def rate_now() -> tuple[str, int, str | None]:
        ledger = open_ledger(sqlite_url)
        with ledger.read() as conn:
            row = conn.execute(
                sa.select(
                    schema.fee_subscriptions.c.rate,
                    schema.fee_subscriptions.c.amount,
                    schema.fee_subscriptions.c.ended_at,
                )
            ).one()
        ledger.dispose()
        return row.rate, row.amount, row.ended_at

    moved = event("customer.subscription.updated", updated("sub_up", supporter, 600), 1)
    older = event("customer.subscription.updated", updated("sub_up", "price_dash", 450), 2)
    older["created"] = moved["created"] - 60  # delivered late: Stripe's order is not ours
    for delivery in (moved, moved, older):
        assert deliver(service, delivery).status_code == 200
    assert rate_now() == ("supporter", 600, None)
    # A plan made by hand in Stripe's dashboard: the amount it bills, the rate kept.
    by_hand = event("customer.subscription.updated", updated("sub_up", "price_dash", 450), 3)
    by_hand["created"] = moved["created"] + 60
    assert deliver(service, by_hand).status_code == 200
    assert rate_now() == ("supporter", 450, None)
    ended = updated("sub_up", supporter, 600, status="canceled")
    ended["ended_at"] = stamp("2027-01-15")
    assert deliver(service, event("customer.subscription.updated", ended, 4)).status_code == 200
    assert rate_now()[2] is not None and rate_now()[2].startswith("2027-01-15")


#: Stripe's own example dispute (fixtures3.json).
DISPUTE = Path(__file__).resolve().parent / "stripe" / "dispute.json"


def disputed(n: int, *, status: str, charge: str, intent: str | None) -> dict[str, Any]:
    obj = json.loads(DISPUTE.read_text())
    return {**obj, "id": f"dp_fee{n}", "status": status, "charge": charge, "payment_intent": intent}


@pytest.mark.keep_it_all  # members made before the deadline
def test_a_fee_payment_the_bank_takes_back_is_unpaid_again_once(
    service: TestClient, sqlite_url: str, campaign_dir: Path, sqlite_cli: Cli
) -> None:
    ledger = open_ledger(sqlite_url)
    campaign = load_campaign(campaign_dir / "campaign.toml")
    make_members(ledger, campaign, 2)
    with ledger.write() as tx:
        for n in (1, 2):
            fees.start(
                tx,
                member_number=n,
                rate=Rate.STANDARD,
                amount=Money(300, "GBP"),
                interval=Interval.MONTH,
                started_on="2026-12-01",
                stripe_subscription=f"sub_d{n}",
                stripe_customer=f"cus_d{n}",
            )
    ledger.dispose()
    month = ("2026-12-01", "2027-01-01")
    # Stripe's newer invoice lists its payments; the older one named its charge.
    newer = invoice("in_d1", "sub_d1", *month, paid=True)
    newer["payments"] = {
        "object": "list",
        "data": [{"payment": {"type": "payment_intent", "payment_intent": "pi_fee1"}}],
    }
    older = {**invoice("in_d2", "sub_d2", *month, paid=True), "charge": "ch_fee2"}
    paid = [event("invoice.paid", newer, 1), event("invoice.paid", older, 2)]
    for delivery in paid:
        assert deliver(service, delivery).status_code == 200

    opened = event(
        "charge.dispute.created",
        disputed(1, status="needs_response", charge="ch_fee1", intent="pi_fee1"),
        3,
    )
    lost = event(
        "charge.dispute.closed", disputed(1, status="lost", charge="ch_fee1", intent="pi_fee1"), 4
    )
    won = event(
        "charge.dispute.closed", disputed(2, status="won", charge="ch_fee2", intent=None), 5
    )
    for delivery in (opened, lost, lost, won, paid[0]):  # the payment replayed after the loss
        assert deliver(service, delivery).status_code == 200

    ledger = open_ledger(sqlite_url)
    with ledger.read() as conn:
        statuses = dict(
            conn.execute(sa.select(schema.fee_invoices.c.id, schema.fee_invoices.c.status)).all()
        )
        pending = conn.execute(
            sa.select(sa.func.count())
            .select_from(schema.stripe_events)
            .where(schema.stripe_events.c.applied_at.is_(None))
        ).scalar()
    ledger.dispose()
    assert statuses == {"in_d1": "clawed_back", "in_d2": "paid"}
    assert pending == 0  # every dispute found its fee: none kept waiting
    # The CLI's clock is 2026-12-10: member 1's December is unpaid again, so late.
    report = json.loads(sqlite_cli.ok("members", "fees", "--json").output)
    assert [(f["member"], f["standing"]) for f in report["fees"]] == [(1, "late")]
    assert report["counts"]["current"] == 1
