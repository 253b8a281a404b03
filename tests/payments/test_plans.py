"""The fee's Product and Plans at Stripe: found again, never made twice, named by amount."""

from __future__ import annotations

import pytest

from fundraiser.config.model import Fee, Interval, Rate, Surplus
from fundraiser.errors import UserInputError
from fundraiser.money import Money
from fundraiser.payments.client import make_client
from fundraiser.payments.plans import ensure_plan, plan_id, product_id
from tests import stripe_fixtures
from tests.stripe_fixtures import LocalStripe

localstripe = stripe_fixtures.localstripe

FEE = Fee(
    Money(500, "GBP"),
    Interval.MONTH,
    reduced=Money(200, "GBP"),
    supporter=Money(1200, "GBP"),
    surplus=Surplus.FREE_PLACES,
)
COOP = 'Commons Social <Ltd> =HYPERLINK("x")'


def test_each_rate_is_one_plan_at_its_amount_and_a_rerun_finds_it(
    localstripe: LocalStripe,
) -> None:
    localstripe.reset()
    client = make_client("sk_test_plans", localstripe.url)
    paid = [rate for rate in FEE.rates() if rate != Rate.FREE]
    first = {rate: ensure_plan(client, COOP, FEE, rate) for rate in paid}
    again = {rate: ensure_plan(client, COOP, FEE, rate) for rate in first}
    assert first == again
    plans = {p["id"]: p for p in localstripe.all("plans")}
    assert set(plans) == set(first.values())
    assert {(p["amount"], p["currency"], p["interval"]) for p in plans.values()} == {
        (500, "gbp", "month"),
        (200, "gbp", "month"),
        (1200, "gbp", "month"),
    }
    assert all(p["product"] == product_id(COOP) for p in plans.values())
    assert all(pid.isascii() and "<" not in pid and "=" not in pid for pid in plans)


def test_a_new_amount_is_a_new_plan_and_a_free_place_has_none() -> None:
    raised = Fee(Money(600, "GBP"), Interval.MONTH)
    assert plan_id(COOP, FEE, Rate.STANDARD) != plan_id(COOP, raised, Rate.STANDARD)
    assert plan_id("Other co-op", FEE, Rate.STANDARD) != plan_id(COOP, FEE, Rate.STANDARD)
    with pytest.raises(UserInputError, match="no paid free rate"):
        plan_id(COOP, FEE, Rate.FREE)
    with pytest.raises(UserInputError, match="no paid reduced rate"):
        plan_id(COOP, raised, Rate.REDUCED)
