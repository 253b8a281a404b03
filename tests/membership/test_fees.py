"""Membership fees: events applied once in any order, standing by the rules' grace days."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundraiser.config import Campaign, Interval, Rate, load_campaign
from fundraiser.ledger import Ledger, open_ledger, schema
from fundraiser.membership import fees
from fundraiser.membership.fees import EventKind, FeeEvent, Outcome, Standing
from fundraiser.money import Money
from tests.membership.memberhelp import make_members

# Members are made before the deadline here: a keep-it-all campaign may issue shares then.
pytestmark = pytest.mark.keep_it_all


GBP3 = Money(300, "GBP")


@pytest.fixture
def campaign(campaign_dir: Path) -> Campaign:
    return load_campaign(campaign_dir / "campaign.toml")


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    opened = open_ledger(db_url)
    yield opened
    opened.dispose()


def subscribe(ledger: Ledger, number: int, sub: str, rate: Rate = Rate.STANDARD) -> int:
    with ledger.write("2027-03-01T09:00:00Z") as tx:
        return fees.start(
            tx,
            member_number=number,
            rate=rate,
            amount=GBP3 if rate != Rate.FREE else Money(0, "GBP"),
            interval=Interval.MONTH,
            started_on="2027-03-01",
            stripe_subscription=sub,
            stripe_customer=f"cus_{number}",
        )


def paid(sub: str, month: int, *, at: str = "") -> FeeEvent:
    return FeeEvent(
        EventKind.INVOICE_PAID,
        sub,
        f"in_{sub}_{month}",
        300,
        "GBP",
        f"2027-{month:02d}-01",
        f"2027-{month + 1:02d}-01",
        at or f"2027-{month:02d}-02T00:00:00Z",
    )


def failed(sub: str, month: int) -> FeeEvent:
    return FeeEvent(
        EventKind.PAYMENT_FAILED,
        sub,
        f"in_{sub}_{month}",
        300,
        "GBP",
        f"2027-{month:02d}-01",
        f"2027-{month + 1:02d}-01",
        f"2027-{month:02d}-01T06:00:00Z",
    )


def deleted(sub: str, when: str) -> FeeEvent:
    return FeeEvent(EventKind.SUBSCRIPTION_DELETED, sub, at=when)


def apply(ledger: Ledger, event: FeeEvent) -> Outcome:
    with ledger.write("2027-06-01T00:00:00Z") as tx:
        return fees.apply(tx, event)


def standing_of(ledger: Ledger, number: int, today: str) -> fees.Fee:
    with ledger.read() as conn:
        found = fees.fees(conn, today=date.fromisoformat(today), grace_days=30)
    return fees.latest_by_member(found)[number]


def test_a_paid_month_is_current_then_due_then_late_after_a_failure_then_lapsed(
    ledger: Ledger, campaign: Campaign
) -> None:
    make_members(ledger, campaign, 1)
    subscribe(ledger, 1, "sub_a")
    assert standing_of(ledger, 1, "2027-03-01").standing is Standing.DUE  # nothing paid yet
    assert apply(ledger, paid("sub_a", 3)) is Outcome.APPLIED
    fee = standing_of(ledger, 1, "2027-03-15")
    assert (fee.standing, fee.paid_through) == (Standing.CURRENT, "2027-04-01")
    assert standing_of(ledger, 1, "2027-04-02").standing is Standing.DUE
    assert apply(ledger, failed("sub_a", 4)) is Outcome.APPLIED
    late = standing_of(ledger, 1, "2027-04-20")
    assert (late.standing, late.overdue_since, late.lapses_on) == (
        Standing.LATE,
        "2027-04-01",
        "2027-05-01",
    )
    assert standing_of(ledger, 1, "2027-05-01").standing is Standing.LATE  # the last day of grace
    lapsed = standing_of(ledger, 1, "2027-05-02")
    assert lapsed.standing is Standing.LAPSED
    # The retried invoice is paid at last: the membership stands again at once.
    assert apply(ledger, paid("sub_a", 4)) is Outcome.APPLIED
    assert standing_of(ledger, 1, "2027-05-02").standing is Standing.DUE
    assert standing_of(ledger, 1, "2027-04-20").standing is Standing.CURRENT


def test_a_replayed_webhook_pays_a_fee_once(ledger: Ledger, campaign: Campaign) -> None:
    make_members(ledger, campaign, 1)
    subscribe(ledger, 1, "sub_a")
    assert apply(ledger, paid("sub_a", 3)) is Outcome.APPLIED
    assert apply(ledger, paid("sub_a", 3)) is Outcome.DUPLICATE
    assert apply(ledger, failed("sub_a", 3)) is Outcome.DUPLICATE  # paid stays paid
    with ledger.read() as conn:
        rows = conn.execute(sa.select(schema.fee_invoices.c.id, schema.fee_invoices.c.status))
        assert [tuple(r) for r in rows] == [("in_sub_a_3", "paid")]
        actions = conn.execute(
            sa.select(schema.journal.c.action).where(schema.journal.c.action.like("fees.%"))
        ).scalars()
        assert list(actions) == ["fees.start", "fees.paid"]


def test_an_event_for_an_unknown_subscription_changes_nothing(
    ledger: Ledger, campaign: Campaign
) -> None:
    make_members(ledger, campaign, 1)
    assert apply(ledger, paid("sub_nobody", 3)) is Outcome.UNKNOWN
    with ledger.read() as conn:
        assert (
            conn.execute(sa.select(sa.func.count()).select_from(schema.fee_invoices)).scalar() == 0
        )


def test_an_ended_fee_and_a_free_place(ledger: Ledger, campaign: Campaign) -> None:
    make_members(ledger, campaign, 2)
    subscribe(ledger, 1, "sub_a")
    subscribe(ledger, 2, "sub_free", Rate.FREE)
    apply(ledger, paid("sub_a", 3))
    assert apply(ledger, deleted("sub_a", "2027-03-20T10:00:00Z")) is Outcome.APPLIED
    assert apply(ledger, deleted("sub_a", "2027-03-20T10:00:00Z")) is Outcome.DUPLICATE
    assert standing_of(ledger, 1, "2027-03-21").standing is Standing.ENDED
    assert standing_of(ledger, 2, "2028-01-01").standing is Standing.CURRENT  # no fee to pay
    with ledger.read() as conn:
        why = fees.suspended(conn, today=date(2027, 3, 21), grace_days=30)
    assert why == {1: "fee ended on 2027-03-20"}


def test_the_board_report_counts_and_lists_oldest_first(ledger: Ledger, campaign: Campaign) -> None:
    make_members(ledger, campaign, 4)
    for n in range(1, 5):
        subscribe(ledger, n, f"sub_{n}")
    apply(ledger, paid("sub_1", 3))  # current on 2027-03-20
    apply(ledger, failed("sub_2", 3))  # late
    apply(ledger, paid("sub_3", 1))  # paid through February 1st: 47 days ago, lapsed
    with ledger.read() as conn:
        report = fees.report(conn, today=date(2027, 3, 20), grace_days=30, currency="GBP")
    assert report.counts == {
        "current": 1,
        "due": 1,  # member 4: nothing paid since starting on March 1st
        "late": 1,
        "lapsed": 1,
        "ended": 0,
    }
    assert [(f.member_number, f.standing.value) for f in report.attention] == [
        (3, "lapsed"),
        (2, "late"),
        (4, "due"),
    ]
    assert report.per_month == Money(900, "GBP")  # the lapsed fee is not counted


# -- order does not matter ----------------------------------------------------------

SUBS = ("sub_1", "sub_2", "sub_3")


def _events() -> list[FeeEvent]:
    """A season of events for three members: renewals, failures, retries, an ending."""
    return [
        paid("sub_1", 3),
        paid("sub_1", 4),
        failed("sub_1", 5),
        paid("sub_1", 5, at="2027-05-09T00:00:00Z"),
        failed("sub_2", 3),
        paid("sub_2", 3, at="2027-03-05T00:00:00Z"),
        failed("sub_2", 4),
        paid("sub_3", 3),
        failed("sub_3", 4),
        deleted("sub_3", "2027-04-20T00:00:00Z"),
    ]


def _state(ledger: Ledger) -> list[tuple[object, ...]]:
    with ledger.read() as conn:
        subs = conn.execute(
            sa.select(
                schema.fee_subscriptions.c.stripe_subscription,
                schema.fee_subscriptions.c.paid_through,
                schema.fee_subscriptions.c.failing_since,
                schema.fee_subscriptions.c.ended_at,
            ).order_by(schema.fee_subscriptions.c.id)
        ).all()
        invoices = conn.execute(
            sa.select(schema.fee_invoices.c.id, schema.fee_invoices.c.status).order_by(
                schema.fee_invoices.c.id
            )
        ).all()
        standings = [
            (f.member_number, f.standing.value)
            for f in fees.fees(conn, today=date(2027, 6, 10), grace_days=30)
        ]
    return [*map(tuple, subs), *map(tuple, invoices), *standings]


@pytest.fixture(scope="module")
def base_ledger(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three members with a fee each, made once: every run starts from a copy."""
    folder = tmp_path_factory.mktemp("fees-base")
    campaign = load_campaign(Path(__file__).resolve().parents[2] / "campaign.toml")
    ledger = open_ledger(f"sqlite:///{folder / 'ledger.sqlite'}")
    try:
        make_members(ledger, campaign, 3)
        for n, sub in enumerate(SUBS, start=1):
            subscribe(ledger, n, sub)
    finally:
        ledger.dispose()
    return folder / "ledger.sqlite"


def run(base: Path, folder: Path, stream: list[FeeEvent]) -> list[tuple[object, ...]]:
    copy = folder / "ledger.sqlite"
    shutil.copyfile(base, copy)
    ledger = open_ledger(f"sqlite:///{copy}")
    try:
        for event in stream:
            apply(ledger, event)
        assert ledger.verify().ok
        return _state(ledger)
    finally:
        ledger.dispose()


def test_the_ordered_season_ends_as_its_events_say(base_ledger: Path, tmp_path: Path) -> None:
    state = run(base_ledger, tmp_path, _events())
    assert state[:3] == [
        ("sub_1", "2027-06-01", None, None),  # May's failure paid on retry
        ("sub_2", "2027-04-01", "2027-04-01", None),  # April failed and never paid
        ("sub_3", "2027-04-01", "2027-04-01", "2027-04-20T00:00:00Z"),
    ]
    # On June 10th: June's renewal not seen yet, April unpaid past grace, ended.
    assert state[-3:] == [(1, "due"), (2, "lapsed"), (3, "ended")]


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
def test_random_orders_and_duplicates_end_in_the_ordered_runs_states(
    base_ledger: Path, tmp_path_factory: pytest.TempPathFactory, data: st.DataObject
) -> None:
    events = _events()
    shuffled = data.draw(st.permutations(events), label="order")
    repeats = data.draw(
        st.lists(st.sampled_from(events), max_size=8), label="duplicates delivered again"
    )
    mixed = list(shuffled)
    for event in repeats:  # each duplicate lands somewhere in the stream
        mixed.insert(data.draw(st.integers(0, len(mixed)), label="where"), event)
    ordered = run(base_ledger, tmp_path_factory.mktemp("ordered"), events)
    assert run(base_ledger, tmp_path_factory.mktemp("mixed"), mixed) == ordered
