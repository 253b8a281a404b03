"""The transparency page's charts and tables, from SiteData."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from babel.dates import format_date
from markupsafe import Markup

from fundraiser.i18n import Language
from fundraiser.money import Money
from fundraiser.sitegen.charts import Point, bar_chart
from fundraiser.sitegen.data import SiteData
from fundraiser.sitegen.filters import money, money_short, number


@dataclass(frozen=True)
class Row:
    label: str
    amount: str
    pledges: str


@dataclass(frozen=True)
class Chart:
    svg: Markup | None  # None when there is nothing to draw yet
    rows: tuple[Row, ...]  # the same figures as a table


@dataclass(frozen=True)
class Transparency:
    days: Chart
    sizes: Chart


def _day_label(day: date, locale: str) -> str:
    return str(format_date(day, "d MMM", locale=locale))


def build(data: SiteData, language: Language) -> Transparency:
    """The charts and their tables, in the co-op's language."""
    locale = language.locale
    currency = data.campaign.currency

    def axis_money(value: int) -> str:
        return money_short(Money(value, currency), locale=locale)

    def axis_count(value: int) -> str:
        return number(value, locale=locale)

    def pledges_text(count: int) -> str:
        shown = number(count, locale=locale)
        return language.ngettext("%(count)s pledge", "%(count)s pledges", count) % {"count": shown}

    def shares_text(label: str) -> str:
        # A band's label is a count ("1") or a range ("5-9"): one share, or shares.
        many = 1 if label == "1" else 2
        return language.ngettext("%(band)s share", "%(band)s shares", many) % {"band": label}

    days_svg = None
    if data.days:
        best = max(data.days, key=lambda d: d.amount.amount)
        total = sum(d.amount.amount for d in data.days)
        points = [
            Point(_day_label(d.day, locale), d.amount.amount, money(d.amount, locale=locale))
            for d in data.days
        ]
        days = len(data.days)
        days_svg = bar_chart(
            points,
            chart_id="chart-days",
            title=language.gettext("Money pledged per day"),
            description=language.ngettext(
                "%(total)s pledged over %(days)s day, from %(first)s to %(last)s. The most in "
                "one day was %(best)s, on %(best_day)s.",
                "%(total)s pledged over %(days)s days, from %(first)s to %(last)s. The most in "
                "one day was %(best)s, on %(best_day)s.",
                days,
            )
            % {
                "total": money(Money(total, currency), locale=locale),
                "days": number(days, locale=locale),
                "first": _day_label(data.days[0].day, locale),
                "last": _day_label(data.days[-1].day, locale),
                "best": money(best.amount, locale=locale),
                "best_day": _day_label(best.day, locale),
            },
            axis_label=axis_money,
        )
    day_rows = tuple(
        Row(
            str(format_date(d.day, "long", locale=locale)),
            money(d.amount, locale=locale),
            number(d.pledges, locale=locale),
        )
        for d in data.days
        if d.pledges
    )

    sizes_svg = None
    if any(b.pledges for b in data.bands):
        busiest = max(data.bands, key=lambda b: b.pledges)
        sizes_svg = bar_chart(
            [Point(b.label, b.pledges, pledges_text(b.pledges)) for b in data.bands],
            chart_id="chart-sizes",
            title=language.gettext("Pledges by size, in shares"),
            description=language.gettext(
                "How many pledges fall in each size band, counted in shares of %(price)s. "
                "The most common band is %(band)s, with %(pledges)s."
            )
            % {
                "price": money(data.campaign.shares.price, locale=locale),
                "band": shares_text(busiest.label),
                "pledges": pledges_text(busiest.pledges),
            },
            axis_label=axis_count,
            max_labels=len(data.bands),
        )
    size_rows = tuple(
        Row(
            shares_text(b.label),
            money(b.amount, locale=locale),
            number(b.pledges, locale=locale),
        )
        for b in data.bands
    )
    return Transparency(Chart(days_svg, day_rows), Chart(sizes_svg, size_rows))
