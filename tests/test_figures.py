"""Campaign figures: the one place the ledger becomes public numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fundraiser.config import Campaign, load_campaign
from fundraiser.figures import TIER_PLACES, compute, tier_counts, tier_places
from fundraiser.ledger import Ledger, open_ledger, stamp
from fundraiser.money import Money
from fundraiser.pledges import (
    ENDED_UNPAID,
    HELD,
    LIVE,
    SECURED,
    TRANSITIONS,
    NewPledge,
    Source,
    Status,
    create,
    transition,
)

ROOT = Path(__file__).resolve().parent.parent
DURING = datetime(2026, 12, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
def campaign() -> Campaign:
    return load_campaign(ROOT / "campaign.toml")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def pledge(
    ledger: Ledger,
    email: str,
    pounds: int,
    *,
    moves: tuple[Status, ...] = (),
    source: Source = Source.OFFLINE,
    tier: str | None = None,
    round_id: str = "crowd",
    at: str | None = None,
) -> int:
    with ledger.write(at) as tx:
        pid = create(
            tx,
            NewPledge(
                name=f"Person {email}",
                email=email,
                address="1 Secret Lane",
                amount=Money(pounds * 100, "GBP"),
                round=round_id,
                source=source,
                tier=tier,
            ),
        )
        for move in moves:
            transition(tx, pid, move)
    return pid


def test_the_status_groups_agree_with_the_table() -> None:
    assert SECURED <= LIVE and HELD <= LIVE
    assert not LIVE & ENDED_UNPAID
    for status in ENDED_UNPAID:
        assert TRANSITIONS[status] == frozenset()


def test_pledged_counts_live_pledges_and_paid_counts_money_held(
    ledger: Ledger, campaign: Campaign
) -> None:
    pledge(ledger, "a@example.org", 100)  # promised by hand: counts
    pledge(ledger, "b@example.org", 200, moves=(Status.PAID,))
    pledge(ledger, "c@example.org", 400, moves=(Status.CANCELLED,))  # over: not counted
    pledge(ledger, "d@example.org", 800, source=Source.ONLINE)  # card form left: not a backer
    pledge(ledger, "e@example.org", 50, source=Source.ONLINE, moves=(Status.AUTHORIZED,))
    pledge(ledger, "B@Example.org ", 25, round_id="seed")  # same person as b
    with ledger.read() as conn:
        figures = compute(conn, campaign, DURING)
    assert figures.pledged == Money((100 + 200 + 50 + 25) * 100, "GBP")
    assert figures.paid == Money(200 * 100, "GBP")
    assert figures.backers == 3  # a, b (twice), e
    assert figures.by_round["seed"] == Money(2500, "GBP")
    assert figures.by_round["crowd"] == Money(35000, "GBP")
    assert figures.state == "open"
    assert figures.percent == 37500 * 100 // campaign.campaign.goal.amount


def test_refunds_come_off_both_totals(ledger: Ledger, campaign: Campaign) -> None:
    pid = pledge(ledger, "a@example.org", 300, moves=(Status.PAID,))
    with ledger.write() as tx:
        transition(tx, pid, Status.REFUNDED)
    with ledger.read() as conn:
        figures = compute(conn, campaign, DURING)
    assert figures.pledged.amount == 0 and figures.paid.amount == 0 and figures.backers == 0


def test_state_and_days_left_follow_the_clock(ledger: Ledger, campaign: Campaign) -> None:
    deadline = campaign.campaign.deadline
    with ledger.read() as conn:
        before = compute(conn, campaign, campaign.campaign.opens.replace(year=2025))
        last_second = compute(conn, campaign, deadline - timedelta(seconds=1))
        after = compute(conn, campaign, deadline)
    assert before.state == "upcoming"
    assert last_second.state == "open" and last_second.days_left == 1
    assert after.state == "closed" and after.days_left == 0 and after.seconds_left == 0


def test_tier_places_exclude_unconfirmed_forms_unless_asked(
    ledger: Ledger, campaign: Campaign
) -> None:
    pledge(ledger, "a@example.org", 1000, tier="founder", source=Source.ONLINE)  # form open
    pledge(
        ledger,
        "b@example.org",
        1000,
        tier="founder",
        source=Source.ONLINE,
        moves=(Status.AUTHORIZED,),
    )
    with ledger.read() as conn:
        assert tier_counts(conn) == {"founder": 1}
        assert tier_counts(conn, include_unconfirmed=True) == {"founder": 2}
        figures = compute(conn, campaign, DURING)
    founder = next(t for t in figures.tiers if t.id == "founder")
    assert founder.taken == 1 and founder.left == (founder.limit or 0) - 1


def test_one_tiers_places_agree_with_the_counts_and_come_from_an_index_alone(
    db_url: str,
) -> None:
    """The pledge service counts a tier's places on every pledge: the same numbers as
    tier_counts (on SQLite and PostgreSQL), read from the tier's entries of an index,
    whatever the ledger holds."""
    ledger = open_ledger(db_url)
    try:
        _places_agree(ledger)
    finally:
        ledger.dispose()


def _places_agree(ledger: Ledger) -> None:
    moves: list[tuple[Status, ...]] = [
        (),
        (Status.AUTHORIZED,),
        (Status.AUTHORIZED, Status.PAID),
        (Status.CANCELLED,),
        (Status.FAILED,),
        (Status.AUTHORIZED, Status.PROCESSING, Status.PAYMENT_FAILED),
    ]
    n = 0
    for minutes in (5, 20, 40, 90):  # made this long before DURING
        at = stamp(DURING - timedelta(minutes=minutes))
        for tier in ("founder", "supporter", None):
            for source in (Source.ONLINE, Source.OFFLINE):
                for path in moves:
                    n += 1
                    with ledger.write(at) as tx:
                        pid = create(
                            tx,
                            NewPledge(
                                f"P{n}",
                                f"p{n}@example.org",
                                "1 Lane",
                                Money(1000, "GBP"),
                                "crowd",
                                source=source,
                                tier=tier,
                            ),
                        )
                        for move in path:
                            transition(tx, pid, move)
    since = stamp(DURING - timedelta(minutes=30))
    with ledger.read() as conn:
        held = tier_counts(conn, holds_since=since)
        every = tier_counts(conn, include_unconfirmed=True)
        for tier in ("founder", "supporter", "nobody"):
            assert tier_places(conn, tier, since) == (held.get(tier, 0), every.get(tier, 0))
        assert 0 < held["founder"] < every["founder"]  # the holds that ended differ
        if not ledger.is_sqlite:
            return
        params = (since, "founder")  # the hold's start, the tier
        explained = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + TIER_PLACES, params)
        plan = " ".join(str(row[3]) for row in explained)
    assert "COVERING INDEX ix_pledges_tier_places" in plan, plan


def test_published_figures_carry_no_personal_data(ledger: Ledger, campaign: Campaign) -> None:
    pledge(ledger, "secret.person@example.org", 100, moves=(Status.PAID,))
    with ledger.read() as conn:
        text = json.dumps(compute(conn, campaign, DURING).as_json())
    for private in ("secret.person", "Person", "Secret Lane", "@"):
        assert private not in text


def test_people_joining_after_the_deadline_are_not_backers_of_the_campaign(
    ledger: Ledger, campaign: Campaign
) -> None:
    from fundraiser.sitegen import aggregates

    pledge(ledger, "a@example.org", 100, moves=(Status.PAID,))
    after = stamp(campaign.campaign.deadline + timedelta(days=3))
    pledge(ledger, "late@example.org", 5000, moves=(Status.PAID,), at=after)
    pledge(ledger, "a@example.org", 50, moves=(Status.PAID,), at=after)  # a top-up
    closed = campaign.campaign.deadline + timedelta(days=10)
    with ledger.read() as conn:
        figures = compute(conn, campaign, closed)
        days = aggregates.raised_per_day(conn, campaign)
        rounds = aggregates.round_totals(conn, campaign)
        sizes = aggregates.pledge_sizes(conn, campaign)
    assert (figures.pledged, figures.paid, figures.backers) == (
        Money(10000, "GBP"),
        Money(10000, "GBP"),
        1,
    )
    assert [(d.amount.amount, d.pledges) for d in days] == [(10000, 1)]
    assert sum(r.amount.amount for r in rounds) == 10000
    assert sum(b.pledges for b in sizes) == 1


# -- membership after the campaign ------------------------------------------------------


@pytest.mark.keep_it_all  # members made before the deadline
def test_membership_figures_count_members_fees_and_free_places(
    ledger: Ledger, campaign: Campaign
) -> None:
    from fundraiser.config import Interval, Rate
    from fundraiser.membership import fees
    from fundraiser.membership.fees import EventKind, FeeEvent
    from tests.membership.memberhelp import make_members

    make_members(ledger, campaign, 5)  # admitted on 2027-03-01
    rates = {1: Rate.STANDARD, 2: Rate.SUPPORTER, 3: Rate.SUPPORTER, 4: Rate.FREE, 5: Rate.REDUCED}
    amounts = {Rate.STANDARD: 300, Rate.SUPPORTER: 600, Rate.FREE: 0, Rate.REDUCED: 100}
    with ledger.write() as tx:
        for number, rate in rates.items():
            fees.start(
                tx,
                member_number=number,
                rate=rate,
                amount=Money(amounts[rate], "GBP"),
                interval=Interval.MONTH,
                started_on="2027-03-01",
                stripe_subscription=f"sub_{number}",
            )
        for number in (1, 2, 3):
            fees.apply(
                tx,
                FeeEvent(
                    EventKind.INVOICE_PAID,
                    f"sub_{number}",
                    f"in_{number}",
                    amounts[rates[number]],
                    "GBP",
                    "2027-03-01",
                    "2027-04-01",
                ),
            )
    # Member 5 never paid: by April 15th the reduced fee has lapsed and counts for nothing.
    with ledger.read() as conn:
        april = compute(conn, campaign, datetime(2027, 4, 15, 12, tzinfo=UTC)).as_json()
        march = compute(conn, campaign, datetime(2027, 3, 20, 12, tzinfo=UTC)).as_json()
    assert april["membership"] == {
        "members": 5,
        "joined_this_month": 0,
        "fees_per_month": 300 + 600 + 600,  # standard, two supporters (due, in grace)
        "free_places_funded": 2,  # two supporters pay £3 a month above the standard £3
        "free_places_taken": 1,
    }
    assert march["membership"]["joined_this_month"] == 5
    assert march["membership"]["fees_per_month"] == 1600  # the reduced fee still stands
    text = json.dumps(april)
    for private in ("Member 1", "High Street", "@", "sub_", "cus_"):
        assert private not in text


def test_no_membership_no_membership_figures(ledger: Ledger, tmp_path: Path) -> None:
    text = (ROOT / "campaign.toml").read_text()
    path = tmp_path / "campaign.toml"
    path.write_text(text[: text.index("\n# Joining after the campaign")] + "\n")
    with ledger.read() as conn:
        assert compute(conn, load_campaign(path), DURING).as_json()["membership"] is None
