"""Members made quickly for tests and benchmarks: paid pledges issued as shares."""

from __future__ import annotations

from dataclasses import replace

from fundraiser import issuing
from fundraiser.config import Campaign, Mode
from fundraiser.ledger import Ledger, schema
from fundraiser.people import person_key

PLEDGE_COLUMNS = (
    "person_key",
    "name",
    "email",
    "address",
    "amount",
    "paid_amount",
    "paid_at",
    "reference",
)


def make_members(
    ledger: Ledger, campaign: Campaign, count: int, *, shares: int = 1, start: int = 1
) -> None:
    """`count` members, each having paid for `shares` by bank transfer, issued at once."""
    price = campaign.shares.price.amount * shares
    rows = []
    for n in range(start, start + count):
        email = f"member{n}@example.org"
        rows.append(
            (
                person_key(email),
                f"Member {n}",
                email,
                f"{n} High Street",
                price,
                price,
                "2026-12-01T10:00:00.000000Z",
                f"BULK-{n}",
            )
        )
    with ledger.write("2026-12-01T10:00:00.000000Z", bulk_work=True) as tx:
        tx.insert(
            schema.pledges,
            PLEDGE_COLUMNS,
            rows,
            {
                "created_at": tx.now,
                "updated_at": tx.now,
                "round": "crowd",
                "currency": campaign.currency,
                "status": "paid",
                "source": "offline",
            },
        )
        tx.record("pledges.import", "pledges", {"count": count})
    # Founding members as a keep-it-all offer issues them: an all-or-nothing one would
    # first need a close with its goal met (tests/test_closing.py), beside the point here.
    founding = replace(campaign, campaign=replace(campaign.campaign, mode=Mode.KEEP_IT_ALL))
    issuing.issue(ledger, founding, today="2027-03-01", now="2027-03-01T09:00:00.000000Z")
