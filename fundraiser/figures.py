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
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fundraiser.config import Campaign
from fundraiser.errors import UserInputError
from fundraiser.ledger.reader import Reader, as_reader, stamp
from fundraiser.membership import standings
from fundraiser.money import Money
from fundraiser.statuses import HELD, LIVE, Source, Status

# SQLAlchemy is for the callers that build their queries with it (the pledge
# service, the site build); the figures themselves read through ledger.reader.
if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection


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


# The rules that pick pledges, written once as SQL text over `pledges` that SQLite
# and PostgreSQL both read, from the status groups (statuses.py); `Where` carries
# a rule's bound values. The figures run them through ledger.reader, and
# `counted()`, `holding()`... give the same text to queries built with SQLAlchemy.


@dataclass(frozen=True)
class Where:
    """A condition on `pledges` as SQL text (in parentheses), `?` for each value."""

    sql: str
    params: tuple[Any, ...] = ()

    def both(self, other: Where, joiner: str = "AND") -> Where:
        return Where(f"({self.sql} {joiner} {other.sql})", self.params + other.params)

    def clause(self) -> sa.TextClause:
        """The same condition for a query built with SQLAlchemy (values bound, each
        under a name of its own, so a query may use a rule twice)."""
        import sqlalchemy as sa

        parts = self.sql.split("?")
        names = [f"figures_{index}" for index in range(len(self.params))]
        text = parts[0] + "".join(f":{n}{part}" for n, part in zip(names, parts[1:], strict=True))
        return sa.text(text).bindparams(
            *(sa.bindparam(n, v, unique=True) for n, v in zip(names, self.params, strict=True))
        )


def among(statuses: Collection[Status]) -> Where:
    """Pledges in one of `statuses` (our own names, written in: no value to bind)."""
    names = ", ".join(f"'{status.value}'" for status in sorted(statuses))
    return Where(f"(pledges.status IN ({names}))")


#: Online pledges whose card form is not complete: no card saved, no money.
UNCONFIRMED = Where(
    f"(pledges.source = '{Source.ONLINE.value}' AND pledges.status = '{Status.PENDING.value}')"
)
#: Pledges that count in public figures: live ones, except online pledges whose
#: card was never saved (a backer who left the card form is not a backer).
COUNTED = among(LIVE).both(Where(f"(NOT {UNCONFIRMED.sql})"))


@cache  # the pledge service asks on every pledge; a clause is never changed in place
def unconfirmed() -> sa.TextClause:
    """UNCONFIRMED, for a query built with SQLAlchemy."""
    return UNCONFIRMED.clause()


@cache
def counted() -> sa.TextClause:
    """COUNTED, for a query built with SQLAlchemy."""
    return COUNTED.clause()


def hold_start(now: datetime, hold: timedelta) -> str:
    """The stamp after which an unconfirmed pledge still holds its place."""
    return stamp(now - hold)


def held_since(since: str) -> Where:
    """Unconfirmed pledges made after `since` (a stamp): they still hold a place.

    Stamps are compared as text: every stamp is ISO 8601 in UTC to the microsecond
    (ledger.stamp), which sorts as the moments do.
    """
    return UNCONFIRMED.both(Where("(pledges.created_at > ?)", (since,)))


def holding(since: str) -> sa.TextClause:
    """held_since, for a query built with SQLAlchemy."""
    return held_since(since).clause()


def tier_counts(
    conn: Reader | Connection, *, include_unconfirmed: bool = False, holds_since: str | None = None
) -> dict[str, int]:
    """Places taken per tier: by pledges that count, and by unconfirmed ones made
    after `holds_since` (their hold has not ended). `include_unconfirmed` counts
    every unconfirmed pledge however old: what is still open at Stripe, which the
    pledge service checks before it gives a place away, so no tier is oversold."""
    if include_unconfirmed:
        live = among(LIVE)
    elif holds_since is not None:
        live = COUNTED.both(held_since(holds_since), "OR")
    else:
        live = COUNTED
    rows = as_reader(conn).rows(
        "SELECT pledges.tier, count(*) FROM pledges "
        f"WHERE pledges.tier IS NOT NULL AND {live.sql} GROUP BY pledges.tier",
        live.params,
    )
    return {row[0]: int(row[1]) for row in rows}


#: tier_places' query, from the rules above (every new pledge for a limited tier runs
#: it in the one writer): among the tier's live pledges, those that count or still
#: hold a place (`COUNTED` or `held_since`, whose one value is the hold's start), and all.
_PLACED = COUNTED.both(held_since(""), "OR")
TIER_PLACES = (
    f"SELECT count(*) FILTER (WHERE {_PLACED.sql}), count(*) FROM pledges "
    f"WHERE pledges.tier = ? AND {among(LIVE).sql}"
)


def tier_places(conn: Connection, tier: str, holds_since: str) -> tuple[int, int]:
    """One tier's places: those taken or held now (as `tier_counts` with
    `holds_since`), and those taken or held by any live pledge however old its
    hold (as with `include_unconfirmed`). Read from the tier's own entries of an
    index (tier, status, source, created_at): the work grows with the tier's
    live pledges, never with the ledger's."""
    found = as_reader(conn).rows(TIER_PLACES, (holds_since, tier))
    return int(found[0][0]), int(found[0][1])


def in_campaign(campaign: Campaign) -> Where:
    """Pledges of the campaign itself: all of them, unless the co-op takes members
    after it, when those made from the deadline on are joins (as issuing says)."""
    if campaign.membership is None:
        return Where("(1 = 1)")
    return Where("(pledges.created_at < ?)", (stamp(campaign.campaign.deadline),))


def founding(campaign: Campaign) -> sa.TextClause:
    """in_campaign, for a query built with SQLAlchemy."""
    return in_campaign(campaign).clause()


def compute(
    conn: Reader | Connection, campaign: Campaign, now: datetime, *, hold: timedelta | None = None
) -> Figures:
    """The figures at `now`; `hold` is the place hold (default: place_hold()).

    `conn` is a Reader (`fundraiser status`) or a SQLAlchemy Connection (the
    service, the site build): the same queries run through its driver."""
    reader = as_reader(conn)
    settings = campaign.campaign
    currency = settings.currency
    # The campaign's own figures: pledges made after its deadline are people joining
    # the co-op later (membership_figures counts them), not backers of the campaign.
    counts = COUNTED.both(in_campaign(campaign))
    pledged, backers = reader.one(
        "SELECT coalesce(sum(pledges.amount - pledges.refunded_amount), 0), "
        f"count(DISTINCT pledges.person_key) FROM pledges WHERE {counts.sql}",
        counts.params,
    )
    paid_in = among(HELD).both(in_campaign(campaign))
    (paid,) = reader.one(
        "SELECT coalesce(sum(pledges.paid_amount - pledges.refunded_amount), 0) "
        f"FROM pledges WHERE {paid_in.sql}",
        paid_in.params,
    )
    by_round = {r.id: Money(0, currency) for r in campaign.rounds}
    for round_id, amount in reader.rows(
        "SELECT pledges.round, sum(pledges.amount - pledges.refunded_amount) "
        f"FROM pledges WHERE {counts.sql} GROUP BY pledges.round",
        counts.params,
    ):
        by_round[round_id] = Money(int(amount), currency)
    taken = tier_counts(reader, holds_since=hold_start(now, place_hold() if hold is None else hold))
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
        membership=membership_figures(reader, campaign, now),
    )


def membership_figures(
    conn: Reader | Connection, campaign: Campaign, now: datetime
) -> MembershipFigures | None:
    """Members now, joined this month (in the campaign's time zone), fees, free places."""
    membership = campaign.membership
    if membership is None:
        return None
    reader = as_reader(conn)
    today = now.astimezone(ZoneInfo(campaign.campaign.timezone)).date()
    (current,) = reader.one("SELECT count(*) FROM members WHERE members.ceased_on IS NULL")
    (joined,) = reader.one(
        "SELECT count(*) FROM members WHERE members.admitted_on >= ? AND members.admitted_on <= ?",
        (today.replace(day=1).isoformat(), today.isoformat()),
    )
    currency = campaign.currency
    if membership.fee is None:
        found = standings.Places(0, 0, 0)
    else:
        found = standings.places(
            reader, membership.fee, today=today, grace_days=membership.grace_days
        )
    return MembershipFigures(
        int(current or 0),
        int(joined or 0),
        Money(found.per_month, currency),
        found.funded,
        found.taken,
    )
