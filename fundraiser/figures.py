"""Campaign figures: aggregates only, safe to publish.

This is the one place that turns the ledger into public numbers, for
`fundraiser status`, the site build and GET /api/campaign. Nothing here may
carry an email, an address, a legal name or a per-person amount.

A place in a limited tier is taken by a pledge that counts, and held for a
short time (the place hold, FUNDRAISER_PLACE_HOLD_MINUTES, default 30) by an
online pledge whose card form is still being filled in. When the hold ends
the place is free in every figure at once, sync or no sync; the pledge
service closes the form at Stripe before it gives that place to someone else.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.config import Campaign
from fundraiser.errors import UserInputError
from fundraiser.ledger import bulk, schema, stamp
from fundraiser.membership import fees
from fundraiser.money import Money
from fundraiser.pledges import HELD, LIVE, Source, Status


@dataclass(frozen=True)
class TierFigures:
    id: str
    name: str
    shares: int
    price: Money
    limit: int | None
    taken: int

    @property
    def left(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.taken, 0)


@dataclass(frozen=True)
class MembershipFigures:
    """Membership after the campaign, as aggregates: counts and monthly totals only."""

    members: int  # current members
    joined_this_month: int
    fees_per_month: Money
    free_places_funded: int
    free_places_taken: int

    def as_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "joined_this_month": self.joined_this_month,
            "fees_per_month": self.fees_per_month.amount,
            "free_places_funded": self.free_places_funded,
            "free_places_taken": self.free_places_taken,
        }


@dataclass(frozen=True)
class Figures:
    currency: str
    goal: Money
    pledged: Money  # every live pledge, paid or not
    paid: Money  # received and still held
    backers: int  # distinct people with a live pledge
    opens: datetime
    deadline: datetime
    mode: str
    state: str  # upcoming, open, closed
    seconds_left: int
    by_round: dict[str, Money] = field(default_factory=dict)
    tiers: tuple[TierFigures, ...] = ()
    membership: MembershipFigures | None = None  # None: no one joins after the campaign

    @property
    def percent(self) -> int:
        """Whole per cent of the goal pledged (floored; may exceed 100)."""
        return self.pledged.amount * 100 // self.goal.amount if self.goal.amount else 0

    @property
    def days_left(self) -> int:
        return -(-self.seconds_left // 86400) if self.seconds_left > 0 else 0

    @property
    def goal_met(self) -> bool:
        return self.pledged >= self.goal

    def as_json(self) -> dict[str, Any]:
        return {
            "currency": self.currency,
            "goal": self.goal.amount,
            "pledged": self.pledged.amount,
            "paid": self.paid.amount,
            "backers": self.backers,
            "percent": self.percent,
            "goal_met": self.goal_met,
            "opens": self.opens.isoformat(),
            "deadline": self.deadline.isoformat(),
            "mode": self.mode,
            "state": self.state,
            "days_left": self.days_left,
            "by_round": {key: value.amount for key, value in self.by_round.items()},
            "tiers": [
                {
                    "id": t.id,
                    "name": t.name,
                    "shares": t.shares,
                    "price": t.price.amount,
                    "limit": t.limit,
                    "taken": t.taken,
                    "left": t.left,
                }
                for t in self.tiers
            ],
            "membership": None if self.membership is None else self.membership.as_json(),
        }


#: How long an online pledge without a saved card holds a limited tier's place.
HOLD_ENV = "FUNDRAISER_PLACE_HOLD_MINUTES"
DEFAULT_HOLD = timedelta(minutes=30)


def place_hold(environ: Mapping[str, str] | None = None) -> timedelta:
    """The place hold from the environment (FUNDRAISER_PLACE_HOLD_MINUTES), or 30 minutes."""
    raw = (os.environ if environ is None else environ).get(HOLD_ENV, "").strip()
    if not raw:
        return DEFAULT_HOLD
    if not raw.isdigit() or not 1 <= int(raw) <= 24 * 60:
        raise UserInputError(
            f"{HOLD_ENV}={raw!r} is not a number of minutes from 1 to 1440: "
            "give whole minutes, e.g. 30"
        )
    return timedelta(minutes=int(raw))


def unconfirmed() -> sa.ColumnElement[bool]:
    """Online pledges whose card form is not complete: no card saved, no money."""
    return sa.and_(
        schema.pledges.c.source == Source.ONLINE.value,
        schema.pledges.c.status == Status.PENDING.value,
    )


def counted() -> sa.ColumnElement[bool]:
    """Pledges that count in public figures: live ones, except online pledges whose
    card was never saved (a backer who left the card form is not a backer)."""
    return sa.and_(schema.pledges.c.status.in_([s.value for s in LIVE]), sa.not_(unconfirmed()))


def hold_start(now: datetime, hold: timedelta) -> str:
    """The stamp after which an unconfirmed pledge still holds its place."""
    return stamp(now - hold)


def holding(since: str) -> sa.ColumnElement[bool]:
    """Unconfirmed pledges made after `since` (a stamp): they still hold a place.

    Stamps are compared as text: every stamp is ISO 8601 in UTC to the microsecond
    (ledger.stamp), which sorts as the moments do.
    """
    return sa.and_(unconfirmed(), schema.pledges.c.created_at > since)


def tier_counts(
    conn: Connection, *, include_unconfirmed: bool = False, holds_since: str | None = None
) -> dict[str, int]:
    """Places taken per tier: by pledges that count, and by unconfirmed ones made
    after `holds_since` (their hold has not ended). `include_unconfirmed` counts
    every unconfirmed pledge however old: what is still open at Stripe, which the
    pledge service checks before it gives a place away, so no tier is oversold."""
    if include_unconfirmed:
        live: sa.ColumnElement[bool] = schema.pledges.c.status.in_([s.value for s in LIVE])
    elif holds_since is not None:
        live = sa.or_(counted(), holding(holds_since))
    else:
        live = counted()
    rows = conn.execute(
        sa.select(schema.pledges.c.tier, sa.func.count())
        .where(schema.pledges.c.tier.is_not(None), live)
        .group_by(schema.pledges.c.tier)
    )
    return {row[0]: int(row[1]) for row in rows}


#: tier_places' query, through the driver (every new pledge for a limited tier runs
#: it in the one writer): a live pledge takes a place unless it is unconfirmed
#: (`counted`), and an unconfirmed one made after the hold's start holds one
#: (`holding`); the columns are NOT NULL, so "not unconfirmed" is either inequality.
TIER_PLACES = (
    "SELECT count(*) FILTER (WHERE source <> ? OR status <> ? OR created_at > ?), count(*) "
    "FROM pledges WHERE tier = ? AND status IN ({})".format(", ".join("?" * len(LIVE)))
)
_LIVE_SORTED = tuple(sorted(s.value for s in LIVE))


def tier_places(conn: Connection, tier: str, holds_since: str) -> tuple[int, int]:
    """One tier's places: those taken or held now (as `tier_counts` with
    `holds_since`), and those taken or held by any live pledge however old its
    hold (as with `include_unconfirmed`). Read from the tier's own entries of an
    index (tier, status, source, created_at): the work grows with the tier's
    live pledges, never with the ledger's."""
    params = (Source.ONLINE.value, Status.PENDING.value, holds_since, tier, *_LIVE_SORTED)
    found = bulk.first(conn, TIER_PLACES, params)
    assert found is not None  # an aggregate without GROUP BY: always one row
    return int(found[0]), int(found[1])


def founding(campaign: Campaign) -> sa.ColumnElement[bool]:
    """Pledges of the campaign itself: all of them, unless the co-op takes members
    after it, when those made from the deadline on are joins (as issuing says)."""
    if campaign.membership is None:
        return sa.true()
    return schema.pledges.c.created_at < stamp(campaign.campaign.deadline)


def compute(
    conn: Connection, campaign: Campaign, now: datetime, *, hold: timedelta | None = None
) -> Figures:
    """The figures at `now`; `hold` is the place hold (default: place_hold())."""
    settings = campaign.campaign
    currency = settings.currency
    held = [s.value for s in HELD]
    # The campaign's own figures: pledges made after its deadline are people joining
    # the co-op later (membership_figures counts them), not backers of the campaign.
    in_campaign = founding(campaign)
    pledged, backers = conn.execute(
        sa.select(
            sa.func.coalesce(
                sa.func.sum(schema.pledges.c.amount - schema.pledges.c.refunded_amount), 0
            ),
            sa.func.count(sa.distinct(schema.pledges.c.person_key)),
        ).where(counted(), in_campaign)
    ).one()
    paid = conn.execute(
        sa.select(
            sa.func.coalesce(
                sa.func.sum(schema.pledges.c.paid_amount - schema.pledges.c.refunded_amount), 0
            )
        ).where(schema.pledges.c.status.in_(held), in_campaign)
    ).scalar()
    by_round = {r.id: Money(0, currency) for r in campaign.rounds}
    for round_id, amount in conn.execute(
        sa.select(
            schema.pledges.c.round,
            sa.func.sum(schema.pledges.c.amount - schema.pledges.c.refunded_amount),
        )
        .where(counted(), in_campaign)
        .group_by(schema.pledges.c.round)
    ):
        by_round[round_id] = Money(int(amount), currency)
    taken = tier_counts(conn, holds_since=hold_start(now, place_hold() if hold is None else hold))
    price = campaign.shares.price
    tiers = tuple(
        TierFigures(t.id, t.name, t.shares, price * t.shares, t.limit, taken.get(t.id, 0))
        for t in campaign.tiers
    )
    if now < settings.opens:
        state = "upcoming"
    elif now < settings.deadline:
        state = "open"
    else:
        state = "closed"
    return Figures(
        currency=currency,
        goal=settings.goal,
        pledged=Money(int(pledged), currency),
        paid=Money(int(paid or 0), currency),
        backers=int(backers),
        opens=settings.opens,
        deadline=settings.deadline,
        mode=settings.mode.value,
        state=state,
        seconds_left=max(int((settings.deadline - now).total_seconds()), 0),
        by_round=by_round,
        tiers=tiers,
        membership=membership_figures(conn, campaign, now),
    )


def membership_figures(
    conn: Connection, campaign: Campaign, now: datetime
) -> MembershipFigures | None:
    """Members now, joined this month (in the campaign's time zone), fees, free places."""
    membership = campaign.membership
    if membership is None:
        return None
    today = now.astimezone(ZoneInfo(campaign.campaign.timezone)).date()
    members = schema.members
    current = conn.execute(sa.select(sa.func.count()).where(members.c.ceased_on.is_(None))).scalar()
    joined = conn.execute(
        sa.select(sa.func.count()).where(
            members.c.admitted_on >= today.replace(day=1).isoformat(),
            members.c.admitted_on <= today.isoformat(),
        )
    ).scalar()
    currency = campaign.currency
    if membership.fee is None:
        found = fees.Places(0, 0, 0)
    else:
        found = fees.places(conn, membership.fee, today=today, grace_days=membership.grace_days)
    return MembershipFigures(
        int(current or 0),
        int(joined or 0),
        Money(found.per_month, currency),
        found.funded,
        found.taken,
    )
