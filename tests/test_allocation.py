"""Allocation: hand-computed plans for each rule, and properties that must always hold."""

from __future__ import annotations

import dataclasses
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fundraiser.allocation import (
    AllocationError,
    AllocationInvariantBroken,
    Allotment,
    PaidPledge,
    Plan,
    Remainder,
    RemainderReason,
    allocate,
    check_plan,
)
from fundraiser.config import ScaleBack, ShareTerms
from fundraiser.errors import CurrencyMismatch
from fundraiser.money import Money
from fundraiser.people import person_key

FRACTION = RemainderReason.FRACTION
CAP = RemainderReason.CAP
BELOW = RemainderReason.BELOW_MINIMUM
SCALE = RemainderReason.SCALE_BACK
START = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


def terms(
    price: int = 1000, low: int = 1, high: int = 10, policy: ScaleBack = ScaleBack.FIRST_COME
) -> ShareTerms:
    return ShareTerms(eur(price), low, high, policy)


def at(minute: int) -> str:
    return (START + timedelta(minutes=minute)).isoformat().replace("+00:00", "Z")


def pledge(pledge_id: int, who: str, minor: int, minute: int, currency: str = "EUR") -> PaidPledge:
    email = f"{who}@example.org"
    return PaidPledge(
        pledge_id=pledge_id,
        person_key=person_key(email),
        name=who.title(),
        email=email,
        amount=Money(minor, currency),
        paid_at=at(minute),
    )


def by_person(plan: Plan) -> dict[str, Allotment]:
    return {a.person_key.split("@")[0]: a for a in plan.allotments}


def shares_of(plan: Plan) -> dict[str, int]:
    return {who: a.shares for who, a in by_person(plan).items()}


def rems(allotment: Allotment) -> list[tuple[int, RemainderReason, int]]:
    return [(r.pledge_id, r.reason, r.amount.amount) for r in allotment.remainders]


# -- per-person rules -------------------------------------------------------


def test_person_key_ignores_case_and_space() -> None:
    assert person_key("  Ada.Lovelace@Example.ORG \n") == "ada.lovelace@example.org"


def test_whole_shares_and_fraction_refund() -> None:
    plan = allocate([pledge(1, "ada", 2500, 0)], terms())
    (ada,) = plan.allotments
    assert (ada.shares, ada.paid, ada.existing_shares) == (2, eur(2500), 0)
    assert ada.remainders == (Remainder(1, "ada@example.org", eur(500), FRACTION),)
    assert plan.admitted == (ada,)
    assert (plan.total_shares, plan.total_paid, plan.total_remainders) == (2, eur(2500), eur(500))


def test_one_member_per_person_details_from_earliest_pledge() -> None:
    late = pledge(1, "ada", 1500, 30)
    early = pledge(2, "ada", 700, 10)._replace(person_key="  ADA@Example.org ", name="Ada L.")
    plan = allocate([late, early], terms())
    (ada,) = plan.allotments
    assert ada.person_key == "ada@example.org"
    assert (ada.name, ada.first_paid_at) == ("Ada L.", at(10))
    assert ada.pledge_ids == (2, 1)  # by paid_at, not by id
    assert (ada.shares, ada.paid) == (2, eur(2200))
    # Kept money comes from the earliest pledge (2) first; the fraction off the latest.
    assert rems(ada) == [(1, FRACTION, 200)]


def test_cap_and_fraction_attributed_from_latest_pledge_backwards() -> None:
    pledges = [pledge(1, "bo", 3000, 0), pledge(2, "bo", 2500, 1), pledge(3, "bo", 1200, 2)]
    (bo,) = allocate(pledges, terms(high=5)).allotments
    # 6700 paid: 6 whole shares, capped at 5. Keeps 5000 from pledges 1 and 2.
    # Refunds laid from pledge 3 backwards: CAP 1000 then FRACTION 700.
    assert bo.shares == 5
    assert rems(bo) == [(2, FRACTION, 500), (3, CAP, 1000), (3, FRACTION, 200)]


def test_below_minimum_refunds_everything() -> None:
    pledges = [pledge(1, "cy", 1000, 0), pledge(2, "cy", 900, 1), pledge(3, "di", 2000, 2)]
    plan = allocate(pledges, terms(low=2))
    cy, di = plan.allotments
    assert (cy.shares, rems(cy)) == (0, [(1, BELOW, 1000), (2, BELOW, 900)])
    assert (di.shares, rems(di)) == (2, [])
    assert plan.admitted == (di,)


def test_existing_holders_skip_the_minimum_but_not_the_cap() -> None:
    pledges = [pledge(1, "ed", 1000, 0), pledge(2, "fi", 3500, 1), pledge(3, "gu", 2000, 2)]
    plan = allocate(
        pledges,
        terms(low=2, high=10),
        existing={"ED@example.org": 1, "fi@example.org": 9, "gu@example.org": 12},
    )
    ed, fi, gu = plan.allotments
    assert (ed.shares, ed.existing_shares, rems(ed)) == (1, 1, [])
    assert (fi.shares, rems(fi)) == (1, [(2, CAP, 2000), (2, FRACTION, 500)])
    # Already above a (lowered) cap: no new shares, all refunded, and the plan is valid.
    assert (gu.shares, gu.existing_shares, rems(gu)) == (0, 12, [(3, CAP, 2000)])
    assert plan.admitted == ()


def test_zero_amount_pledge_gets_no_zero_remainders() -> None:
    plan = allocate(
        [pledge(1, "ha", 0, 0), pledge(2, "ha", 1000, 1), pledge(3, "io", 0, 2)], terms()
    )
    ha, io = plan.allotments
    assert (ha.shares, ha.remainders, io.shares, io.remainders) == (1, (), 0, ())


def test_empty_plan() -> None:
    plan = allocate([], terms(), offer_max_shares=5)
    assert (plan.allotments, plan.total_shares, plan.total_paid) == ((), 0, eur(0))
    assert (plan.currency, plan.price, plan.available) == ("EUR", eur(1000), 5)


def test_members_in_admission_order_with_exact_timestamps() -> None:
    # As text "...00Z" sorts after "...00.5Z"; as instants it is earlier.
    a = pledge(9, "jo", 1000, 0)._replace(paid_at="2027-01-04T09:00:00Z")
    b = pledge(1, "ki", 1000, 0)._replace(paid_at="2027-01-04T09:00:00.500000Z")
    c = pledge(5, "lu", 1000, 0)._replace(paid_at="2027-01-04T10:00:00+01:00")
    d = pledge(4, "mo", 1000, 0)._replace(paid_at="2027-01-04T09:00:00")
    plan = allocate([a, b, c, d], terms())
    # c, d and a are the same instant: ties go to the lower pledge id.
    assert [x.pledge_ids[0] for x in plan.allotments] == [4, 5, 9, 1]


# -- scale-back policies ----------------------------------------------------


def test_no_scale_back_when_the_offer_has_room() -> None:
    pledges = [pledge(1, "a", 4000, 0), pledge(2, "b", 5000, 1)]
    plan = allocate(pledges, terms(), offer_max_shares=9)
    assert shares_of(plan) == {"a": 4, "b": 5}
    assert plan.remainders == ()


def test_first_come_partial_then_skip_then_later_small_holder() -> None:
    pledges = [
        pledge(1, "a", 4000, 0),
        pledge(2, "b", 5000, 1),
        pledge(3, "c", 3000, 2),
        pledge(4, "e", 1000, 3),
    ]
    # 12 in the offer, 2 already held by e: 10 available for 13 wanted.
    plan = allocate(pledges, terms(low=2), offer_max_shares=12, existing={"e@example.org": 2})
    assert plan.available == 10
    assert shares_of(plan) == {"a": 4, "b": 5, "c": 0, "e": 1}
    assert rems(by_person(plan)["c"]) == [(3, SCALE, 3000)]


def test_first_come_partial_holding_at_or_above_minimum() -> None:
    plan = allocate(
        [pledge(1, "a", 4000, 0), pledge(2, "b", 8000, 1), pledge(3, "b", 550, 2)],
        terms(low=2),
        offer_max_shares=10,
    )
    assert shares_of(plan) == {"a": 4, "b": 6}
    # b keeps 6000 from pledge 2. Refunds fill pledge 3 (550) then pledge 2 (2000),
    # in the order SCALE (2000) then FRACTION (550).
    assert rems(by_person(plan)["b"]) == [(2, SCALE, 1450), (2, FRACTION, 550), (3, SCALE, 550)]


def test_several_reasons_fill_pledges_from_the_latest_backwards() -> None:
    pledges = [pledge(1, "a", 4000, 0), pledge(2, "a", 3300, 1)]
    plan = allocate(pledges, terms(high=5), offer_max_shares=3)
    (a,) = plan.allotments
    # 7300 paid: 7 whole shares, capped at 5, scaled back to 3. Kept 3000 from pledge 1.
    # Refund line: pledge 2 (3300) then pledge 1 (1000), filled SCALE 2000, CAP 2000,
    # FRACTION 300.
    assert a.shares == 3
    assert rems(a) == [(1, CAP, 700), (1, FRACTION, 300), (2, SCALE, 2000), (2, CAP, 1300)]


def test_small_first() -> None:
    pledges = [
        pledge(1, "a", 6000, 0),
        pledge(2, "b", 3000, 1),
        pledge(3, "c", 2000, 2),
        pledge(4, "d", 3000, 3),
    ]
    plan = allocate(pledges, terms(low=2, policy=ScaleBack.SMALL_FIRST), offer_max_shares=10)
    # Filled c(2), b(3), d(3), then a gets the last 2 of 6.
    assert shares_of(plan) == {"a": 2, "b": 3, "c": 2, "d": 3}
    assert [a.pledge_ids[0] for a in plan.allotments] == [1, 2, 3, 4]  # member order unchanged
    assert rems(by_person(plan)["a"]) == [(1, SCALE, 4000)]


def test_small_first_skips_a_part_holding_below_minimum() -> None:
    pledges = [pledge(1, "a", 5000, 0), pledge(2, "b", 3000, 1), pledge(3, "c", 3000, 2)]
    plan = allocate(pledges, terms(low=3, policy=ScaleBack.SMALL_FIRST), offer_max_shares=8)
    assert shares_of(plan) == {"a": 0, "b": 3, "c": 3}


def test_pro_rata_largest_remainder() -> None:
    pledges = [pledge(1, "a", 6000, 0), pledge(2, "b", 3000, 1), pledge(3, "c", 2000, 2)]
    plan = allocate(pledges, terms(policy=ScaleBack.PRO_RATA), offer_max_shares=10)
    # Quotas 60/11, 30/11, 20/11 -> floors 5, 2, 1; two left go to c (9/11) and b (8/11).
    assert shares_of(plan) == {"a": 5, "b": 3, "c": 2}
    assert rems(by_person(plan)["a"]) == [(1, SCALE, 1000)]


def test_pro_rata_ties_go_by_admission_order() -> None:
    pledges = [pledge(2, "b", 3000, 1), pledge(1, "a", 3000, 0)]
    plan = allocate(pledges, terms(policy=ScaleBack.PRO_RATA), offer_max_shares=5)
    assert shares_of(plan) == {"a": 3, "b": 2}


def test_pro_rata_drops_newcomers_below_minimum_and_recomputes() -> None:
    pledges = [
        pledge(1, "a", 10000, 0),
        pledge(2, "b", 3000, 1),
        pledge(3, "c", 2000, 2),
        pledge(4, "e", 2000, 3),
    ]
    plan = allocate(
        pledges,
        terms(low=2, high=20, policy=ScaleBack.PRO_RATA),
        offer_max_shares=10,
        existing={"e@example.org": 1},
    )
    # Round 1 (17 wanted, 9 available): a 5, b 2, c 1, e 1 -> c drops out.
    # Round 2 (15 wanted): 90/15, 27/15, 18/15 -> a 6, b 1, e 1 + 1 left to b (12/15)
    # -> a 6, b 2, e 1. Stable; e keeps a part holding below the minimum: already a member.
    assert shares_of(plan) == {"a": 6, "b": 2, "c": 0, "e": 1}
    by = by_person(plan)
    assert rems(by["a"]) == [(1, SCALE, 4000)]
    assert rems(by["b"]) == [(2, SCALE, 1000)]
    assert rems(by["c"]) == [(3, SCALE, 2000)]
    assert rems(by["e"]) == [(4, SCALE, 1000)]


def test_offer_already_full_issues_nothing() -> None:
    pledges = [pledge(1, "a", 2000, 0), pledge(2, "e", 1500, 1)]
    plan = allocate(pledges, terms(), offer_max_shares=3, existing={"e@example.org": 5})
    assert plan.available == 0
    assert shares_of(plan) == {"a": 0, "e": 0}
    assert rems(by_person(plan)["e"]) == [(2, SCALE, 1000), (2, FRACTION, 500)]


# -- refusals and the checker ------------------------------------------------


def test_mixed_currency_raises() -> None:
    with pytest.raises(CurrencyMismatch):
        allocate([pledge(1, "a", 1000, 0), pledge(2, "b", 1000, 1, "GBP")], terms())


@pytest.mark.parametrize(
    "bad",
    [
        [pledge(1, "a", 1000, 0), pledge(1, "b", 1000, 1)],
        [pledge(1, "a", -1, 0)],
        [pledge(1, "a", 1000, 0)._replace(paid_at="yesterday")],
    ],
)
def test_bad_pledges_raise(bad: list[PaidPledge]) -> None:
    with pytest.raises(AllocationError):
        allocate(bad, terms())


def test_bad_existing_and_offer_raise() -> None:
    with pytest.raises(AllocationError):
        allocate([], terms(), existing={"a@x.org": 1, "A@x.org ": 2})
    with pytest.raises(AllocationError):
        allocate([], terms(), offer_max_shares=-1)


def test_check_plan_catches_broken_plans() -> None:
    pledges = [pledge(1, "a", 2500, 0), pledge(2, "b", 3000, 1)]
    plan = allocate(pledges, terms(high=3), offer_max_shares=5)
    check_plan(plan, pledges)
    a, b = plan.allotments
    zero = Remainder(1, a.person_key, eur(0), CAP)
    broken = [
        dataclasses.replace(plan, allotments=(a._replace(shares=3), b)),
        dataclasses.replace(plan, allotments=(b, a)),
        dataclasses.replace(plan, allotments=(a._replace(remainders=(*a.remainders, zero)), b)),
        dataclasses.replace(plan, max_shares=2),
        dataclasses.replace(plan, min_shares=3),
        dataclasses.replace(plan, available=4),
    ]
    for bad in broken:
        with pytest.raises(AllocationInvariantBroken):
            check_plan(bad)


def test_check_plan_with_pledges_checks_each_pledge() -> None:
    pledges = [pledge(1, "a", 1000, 0), pledge(2, "a", 1700, 1)]
    plan = allocate(pledges, terms())
    (a,) = plan.allotments
    assert rems(a) == [(2, FRACTION, 700)]
    # Moving the refund to the earlier pledge keeps the person's sum, not the pledges'.
    moved = dataclasses.replace(
        plan,
        allotments=(a._replace(remainders=(Remainder(1, a.person_key, eur(700), FRACTION),)),),
    )
    check_plan(moved)
    with pytest.raises(AllocationInvariantBroken):
        check_plan(moved, pledges)
    with pytest.raises(AllocationInvariantBroken):
        check_plan(plan, pledges[:1])


# -- properties --------------------------------------------------------------

PEOPLE = ["ada", "bo", "cy", "di", "ed", "fi", "gu", "ha"]
FORMATS = ["{:%Y-%m-%dT%H:%M:%S}Z", "{:%Y-%m-%dT%H:%M:%S}+00:00", "{:%Y-%m-%dT%H:%M:%S.%f}Z"]


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[list[PaidPledge], ShareTerms, int | None, dict[str, int]]:
    price = draw(st.sampled_from([1, 250, 1000, 5000]))
    low = draw(st.integers(1, 3))
    share_terms = ShareTerms(
        eur(price),
        low,
        draw(st.integers(low, low + 8)),
        draw(st.sampled_from(list(ScaleBack))),
    )
    ids = draw(st.lists(st.integers(1, 10_000), max_size=40, unique=True))
    pledges: list[PaidPledge] = []
    for pledge_id in ids:
        who = draw(st.sampled_from(PEOPLE))
        spelled = draw(
            st.sampled_from(
                [f"{who}@example.org", f"{who.upper()}@EXAMPLE.ORG", f" {who.title()}@Example.org "]
            )
        )
        moment = START + timedelta(seconds=draw(st.integers(0, 50)))
        pledges.append(
            PaidPledge(
                pledge_id=pledge_id,
                person_key=spelled,
                name=f"{who} {pledge_id}",
                email=f"{who}@example.org",
                amount=eur(draw(st.integers(0, price * 6 + price - 1))),
                paid_at=draw(st.sampled_from(FORMATS)).format(moment),
            )
        )
    offer = draw(st.none() | st.integers(0, 24))
    holders = draw(st.lists(st.sampled_from(PEOPLE), unique=True, max_size=4))
    existing = {
        f"{w}@example.org": draw(st.integers(0, share_terms.max_shares + 1)) for w in holders
    }
    return pledges, share_terms, offer, existing


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_plan_keeps_every_rule(
    scenario: tuple[list[PaidPledge], ShareTerms, int | None, dict[str, int]],
) -> None:
    pledges, share_terms, offer, existing = scenario
    plan = allocate(pledges, share_terms, offer_max_shares=offer, existing=existing)
    price = share_terms.price.amount
    groups: dict[str, list[PaidPledge]] = defaultdict(list)
    for p in pledges:
        groups[p.person_key.strip().lower()].append(p)
    allotments = {a.person_key: a for a in plan.allotments}
    assert set(allotments) == set(groups)

    # Nothing created or lost, in total and per person.
    kept = sum(a.shares * price for a in plan.allotments)
    assert kept + plan.total_remainders.amount == sum(p.amount.amount for p in pledges)
    for key, a in allotments.items():
        assert a.paid.amount == sum(p.amount.amount for p in groups[key])
        assert a.shares * price + a.refunded.amount == a.paid.amount
        assert all(r.amount.amount > 0 and r.person_key == key for r in a.remainders)

    # Per pledge: kept from the earliest first, plus remainders, is the amount.
    for key, a in allotments.items():
        ordered = sorted(groups[key], key=lambda p: (moment(p.paid_at), p.pledge_id))
        assert a.pledge_ids == tuple(p.pledge_id for p in ordered)
        left = a.shares * price
        for p in ordered:
            keep = min(left, p.amount.amount)
            left -= keep
            refunds = [r for r in a.remainders if r.pledge_id == p.pledge_id]
            assert len({r.reason for r in refunds}) == len(refunds)
            assert keep + sum(r.amount.amount for r in refunds) == p.amount.amount

    # Caps, minimums, existing holdings and the offer maximum.
    held = {k.lower(): v for k, v in existing.items()}
    for key, a in allotments.items():
        assert a.existing_shares == held.get(key, 0)
        assert a.shares == 0 or a.existing_shares + a.shares <= share_terms.max_shares
        if a.existing_shares == 0:
            assert a.shares == 0 or a.shares >= share_terms.min_shares
        else:
            assert BELOW not in {r.reason for r in a.remainders}
    available = None if offer is None else max(0, offer - sum(existing.values()))
    assert plan.available == available
    if available is not None:
        assert plan.total_shares <= available

    # Scale back only when oversubscribed; otherwise everyone gets what they can buy.
    wanted: dict[str, int] = {}
    for key, a in allotments.items():
        can = max(0, min(a.paid.amount // price, share_terms.max_shares - a.existing_shares))
        wanted[key] = 0 if a.existing_shares == 0 and can < share_terms.min_shares else can
        scaled = sum(r.amount.amount for r in a.remainders if r.reason == SCALE)
        assert scaled == (wanted[key] - a.shares) * price
    if available is None or sum(wanted.values()) <= available:
        assert {k: a.shares for k, a in allotments.items()} == wanted

    # Member order is admission order; details come from the earliest pledge.
    keys = [(moment(a.first_paid_at), min(a.pledge_ids)) for a in plan.allotments]
    assert keys == sorted(keys)
    for key, a in allotments.items():
        assert moment(a.first_paid_at) == min(moment(p.paid_at) for p in groups[key])
        assert a.name.endswith(f" {a.pledge_ids[0]}")
    assert plan.admitted == tuple(a for a in plan.allotments if a.shares and not a.existing_shares)


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.randoms(use_true_random=False))
def test_same_plan_in_any_input_order(
    scenario: tuple[list[PaidPledge], ShareTerms, int | None, dict[str, int]],
    rnd: random.Random,
) -> None:
    pledges, share_terms, offer, existing = scenario
    plan = allocate(pledges, share_terms, offer_max_shares=offer, existing=existing)
    shuffled = list(pledges)
    rnd.shuffle(shuffled)
    assert allocate(shuffled, share_terms, offer_max_shares=offer, existing=existing) == plan
    assert (
        allocate(reversed(pledges), share_terms, offer_max_shares=offer, existing=existing) == plan
    )


@settings(max_examples=200, deadline=None)
@given(scenarios(), st.data())
def test_permuted_pledges_give_identical_plan(
    scenario: tuple[list[PaidPledge], ShareTerms, int | None, dict[str, int]],
    data: st.DataObject,
) -> None:
    pledges, share_terms, offer, existing = scenario
    permuted = data.draw(st.permutations(pledges))
    first = allocate(pledges, share_terms, offer_max_shares=offer, existing=existing)
    assert allocate(permuted, share_terms, offer_max_shares=offer, existing=existing) == first


def reference_shares(plan: Plan, share_terms: ShareTerms, available: int | None) -> dict[str, int]:
    """A plain re-statement of the rules, with exact fractions for pro-rata."""
    price, low, high = share_terms.price.amount, share_terms.min_shares, share_terms.max_shares
    order = [a.person_key for a in plan.allotments]
    new = {a.person_key for a in plan.allotments if a.existing_shares == 0}
    wanted = {}
    for a in plan.allotments:
        can = max(0, min(a.paid.amount // price, high - a.existing_shares))
        wanted[a.person_key] = 0 if a.person_key in new and can < low else can
    if available is None or sum(wanted.values()) <= available:
        return wanted
    if share_terms.scale_back == ScaleBack.PRO_RATA:
        pool = [k for k in order if wanted[k]]
        while True:
            demand = sum(wanted[k] for k in pool)
            quota = {k: Fraction(wanted[k] * min(available, demand), demand) for k in pool}
            got = {k: int(quota[k]) for k in pool}
            extra = available - sum(got.values()) if demand > available else 0
            for k in sorted(pool, key=lambda k: (got[k] - quota[k], order.index(k)))[:extra]:
                got[k] += 1
            if all(got[k] >= low for k in pool if k in new):
                return {k: got.get(k, 0) for k in order}
            pool = [k for k in pool if k not in new or got[k] >= low]
    if share_terms.scale_back == ScaleBack.SMALL_FIRST:
        order.sort(key=lambda k: wanted[k])
    got, left = {}, available
    for k in order:
        got[k] = min(wanted[k], left) if k not in new or min(wanted[k], left) >= low else 0
        left -= got[k]
    return got


@settings(max_examples=200, deadline=None)
@given(scenarios())
def test_shares_match_a_reference_statement_of_the_policies(
    scenario: tuple[list[PaidPledge], ShareTerms, int | None, dict[str, int]],
) -> None:
    pledges, share_terms, offer, existing = scenario
    plan = allocate(pledges, share_terms, offer_max_shares=offer, existing=existing)
    expected = reference_shares(plan, share_terms, plan.available)
    assert {a.person_key: a.shares for a in plan.allotments} == expected
