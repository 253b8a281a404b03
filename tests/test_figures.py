"""Campaign figures: the one place the ledger becomes public numbers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fundraiser.config import Campaign, load_campaign
from fundraiser.figures import compute, tier_counts
from fundraiser.ledger import Ledger, open_ledger
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
) -> int:
    with ledger.write() as tx:
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


def test_published_figures_carry_no_personal_data(ledger: Ledger, campaign: Campaign) -> None:
    pledge(ledger, "secret.person@example.org", 100, moves=(Status.PAID,))
    with ledger.read() as conn:
        text = json.dumps(compute(conn, campaign, DURING).as_json())
    for private in ("secret.person", "Person", "Secret Lane", "@"):
        assert private not in text
