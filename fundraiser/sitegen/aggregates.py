"""Aggregate queries for the transparency page: sums and counts, never people.

Every query here selects amounts, counts, dates, round ids or display names
that backers chose to publish. None selects a name, an email or an address,
and none returns one row per pledge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.bands import SizeBand, size_bands
from fundraiser.config import Campaign
from fundraiser.figures import counted, founding
from fundraiser.ledger import schema
from fundraiser.money import Money

_NET = schema.pledges.c.amount - schema.pledges.c.refunded_amount


@dataclass(frozen=True)
class DayTotal:
    day: date
    amount: Money
    pledges: int


@dataclass(frozen=True)
class Band:
    size: SizeBand  # in shares of the offer's price (fundraiser.bands)
    pledges: int
    amount: Money

    @property
    def label(self) -> str:
        return self.size.label


@dataclass(frozen=True)
class RoundTotal:
    id: str
    name: str
    amount: Money
    pledges: int
    backers: int


def raised_per_day(conn: Connection, campaign: Campaign) -> list[DayTotal]:
    """Live money pledged per day in the campaign's time zone, gaps filled with zero.

    The database groups by UTC quarter-hour (created_at is ISO 8601 in UTC), so
    Python can fold the buckets into local days for any real UTC offset,
    including :30 and :45 ones, without dialect-specific time zone SQL.
    """
    stamp = schema.pledges.c.created_at
    hour = sa.func.substr(stamp, 1, 13)
    minute = sa.func.substr(stamp, 15, 2)
    quarter = sa.case((minute < "15", 0), (minute < "30", 1), (minute < "45", 2), else_=3)
    rows = conn.execute(
        sa.select(hour, quarter, sa.func.sum(_NET), sa.func.count())
        .where(counted(), founding(campaign))
        .group_by(hour, quarter)
    )
    zone = ZoneInfo(campaign.campaign.timezone)
    amounts: dict[date, int] = defaultdict(int)
    counts: dict[date, int] = defaultdict(int)
    for hour_text, quarter_index, amount, count in rows:
        start = datetime.fromisoformat(f"{hour_text}:00").replace(tzinfo=UTC)
        day = (start + timedelta(minutes=15 * int(quarter_index))).astimezone(zone).date()
        amounts[day] += int(amount or 0)
        counts[day] += int(count)
    if not amounts:
        return []
    currency = campaign.currency
    first, last = min(amounts), max(amounts)
    days = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        days.append(DayTotal(day, Money(amounts.get(day, 0), currency), counts.get(day, 0)))
    return days


def pledge_sizes(conn: Connection, campaign: Campaign) -> list[Band]:
    """Live pledges counted by size band (in shares of the offer's price)."""
    price = campaign.shares.price
    sizes = size_bands(campaign.shares.max_shares)
    # Band i holds amounts from its first share up to (not including) band i + 1's.
    whens = [(nxt.low * price.amount > _NET, index) for index, nxt in enumerate(sizes[1:])]
    band: sa.ColumnElement[int] = sa.case(*whens, else_=len(sizes) - 1) if whens else sa.literal(0)
    rows = conn.execute(
        sa.select(band, sa.func.count(), sa.func.sum(_NET))
        .where(counted(), founding(campaign))
        .group_by(band)
    )
    found = {int(index): (int(count), int(amount or 0)) for index, count, amount in rows}
    bands = []
    for index, size in enumerate(sizes):
        count, amount = found.get(index, (0, 0))
        bands.append(Band(size, count, Money(amount, campaign.currency)))
    return bands


def round_totals(conn: Connection, campaign: Campaign) -> list[RoundTotal]:
    """Money, pledges and distinct backers per round, in the campaign's round order."""
    rows = conn.execute(
        sa.select(
            schema.pledges.c.round,
            sa.func.sum(_NET),
            sa.func.count(),
            sa.func.count(sa.distinct(schema.pledges.c.person_key)),
        )
        .where(counted(), founding(campaign))
        .group_by(schema.pledges.c.round)
    )
    found = {str(r): (int(a or 0), int(n), int(b)) for r, a, n, b in rows}
    totals = []
    for round_ in campaign.rounds:
        amount, count, backers = found.pop(round_.id, (0, 0, 0))
        totals.append(
            RoundTotal(round_.id, round_.name, Money(amount, campaign.currency), count, backers)
        )
    # Pledges recorded against a round the campaign no longer lists still count.
    for round_id, (amount, count, backers) in sorted(found.items()):
        totals.append(
            RoundTotal(round_id, round_id, Money(amount, campaign.currency), count, backers)
        )
    return totals


def display_names(conn: Connection) -> list[str]:
    """Public names that backers with a live pledge chose to show, alphabetically.

    Sorted by name, not by pledge time, so the list cannot be matched up with
    the per-day chart to guess who gave what.
    """
    column = schema.pledges.c.display_name
    rows = conn.execute(
        sa.select(column).distinct().where(counted(), column.is_not(None), column != "")
    )
    names = {str(name).strip() for (name,) in rows if str(name).strip()}
    return sorted(names, key=lambda name: (name.casefold(), name))
