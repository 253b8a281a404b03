"""Property: cancelling a refunded pledge's shares creates and loses no money."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundraiser import issuing, pledges
from fundraiser.config import load_campaign
from fundraiser.ledger import open_ledger
from fundraiser.membership.cancellation import cancel_for_pledge
from fundraiser.money import Money
from fundraiser.register import holding
from tests.stripe_fixtures import copy_campaign

ROOT = Path(__file__).resolve().parents[2]
PRICE = 5000

# Per person: the pledges they paid (in pounds) and which of them are refunded later.
people = st.lists(
    st.lists(st.tuples(st.integers(10, 400), st.booleans()), min_size=1, max_size=3),
    min_size=1,
    max_size=4,
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(people)
def test_cancel_keeps_every_penny(plan: list[list[tuple[int, bool]]]) -> None:
    folder = Path(tempfile.mkdtemp())
    try:
        shutil.copy(ROOT / "campaign.toml", folder / "campaign.toml")
        # Shares are issued before the deadline here: a keep-it-all campaign may.
        copy_campaign(folder, 'mode = "all-or-nothing"', 'mode = "keep-it-all"')
        campaign = load_campaign(folder / "campaign.toml")
        ledger = open_ledger(campaign.default_database_url())
        items, refunded = [], []
        for person, paid in enumerate(plan):
            for pounds, refund in paid:
                items.append(
                    pledges.NewPledge(
                        f"P{person}",
                        f"p{person}@example.org",
                        "1 Road",
                        Money(pounds * 100, "GBP"),
                        "crowd",
                        status=pledges.Status.PAID,
                    )
                )
                refunded.append(refund)
        with ledger.write() as tx:
            ids = pledges.create_many(tx, items)
        issuing.issue(ledger, campaign, today="2026-12-10")
        lost = [pid for pid, refund in zip(ids, refunded, strict=True) if refund]
        for pid in lost:
            with ledger.write() as tx:
                paid = tx.execute(sa.text(f"SELECT paid_amount FROM pledges WHERE id={pid}"))
                pledges.transition(
                    tx, pid, pledges.Status.REFUNDED, extra={"refunded_amount": paid.scalar()}
                )
                cancel_for_pledge(tx, pid, "refunded")
        head = ledger.head()
        for pid in lost:  # a second run changes nothing
            with ledger.write() as tx:
                cancel_for_pledge(tx, pid, "refunded")
        assert ledger.head() == head
        with ledger.read() as conn:
            members = conn.execute(sa.text("SELECT number, person_key FROM members")).all()
            for number, key in members:
                shares, amount = holding(conn, number)
                assert shares >= 0 and amount == shares * PRICE
                kept = conn.execute(
                    sa.text(
                        "SELECT coalesce(sum(a.amount), 0) FROM allotments a "
                        "JOIN pledges p ON p.id = a.pledge_id "
                        f"WHERE p.person_key = '{key}' AND p.status = 'paid'"
                    )
                ).scalar()
                owed = conn.execute(
                    sa.text(
                        "SELECT coalesce(sum(r.amount), 0) FROM remainders r "
                        "JOIN pledges p ON p.id = r.pledge_id "
                        f"WHERE p.person_key = '{key}' AND r.reason = 'cancel' "
                        "AND p.status = 'paid'"
                    )
                ).scalar()
                # Money kept for shares = shares still held + leftovers listed for refund.
                assert kept == amount + owed
                assert 0 <= owed < PRICE
        ledger.dispose()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
