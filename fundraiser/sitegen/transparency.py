"""The transparency page's charts and tables, from SiteData: the pledges, and the
co-op's books summed up (money in and out by month and category, the balance)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from babel.dates import format_date
from markupsafe import Markup

from fundraiser.books.spending import MIN_TRANSACTIONS, Line, Spending
from fundraiser.formatting import local_date, local_month
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
class MonthRow:
    label: str  # "March 2027"
    iso: str  # "2027-03", for <time datetime>
    money_in: str
    money_out: str
    balance: str  # at the month's end


@dataclass(frozen=True)
class CategoryRow:
    label: str  # the category, or "Other" in the co-op's language
    money_in: str  # "" when no money came in from it
    money_out: str  # "" when none went out to it


@dataclass(frozen=True)
class MonthCategories:
    label: str
    iso: str
    rows: tuple[CategoryRow, ...]


@dataclass(frozen=True)
class BooksView:
    """The books as the page shows them: every figure formatted, every word translated."""

    currency: str
    balance: str
    last_entry: str | None  # "31 March 2027"; None: the books hold no transaction yet
    last_entry_iso: str | None
    first_month: str | None  # "January 2026": None when no money moved yet
    money_in: str
    money_out: str
    chart_in: Markup | None
    chart_out: Markup | None
    months: tuple[MonthRow, ...]
    came_in: tuple[CategoryRow, ...]  # the whole period (money_out empty)
    went_out: tuple[CategoryRow, ...]  # the whole period (money_in empty)
    detail: tuple[MonthCategories, ...]  # each month by category
    fewest: int = MIN_TRANSACTIONS  # the folding rule, for the words that explain it


@dataclass(frozen=True)
class Transparency:
    days: Chart
    sizes: Chart
    books: BooksView | None = None  # None: campaign.toml names no books


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
    books = None if data.books is None else books_view(data.books, language)
    return Transparency(Chart(days_svg, day_rows), Chart(sizes_svg, size_rows), books)


def books_view(books: Spending, language: Language) -> BooksView:
    """The books' summary in the co-op's language: money and months as its readers write them."""
    locale = language.locale
    currency = books.currency

    def cash(amount: int) -> str:
        return money(Money(amount, currency), locale=locale)

    def label(line: Line) -> str:
        return line.category if line.category is not None else language.gettext("Other")

    def month_chart(chart_id: str, values: list[int], title: str, summary: str) -> Markup:
        months = books.months
        points = [
            Point(local_month(m.first_day, short=True, locale=locale), v, cash(v))
            for m, v in zip(months, values, strict=True)
        ]
        best = max(range(len(values)), key=lambda i: (values[i], -i))
        description = (
            summary
            % {
                "total": cash(sum(values)),
                "months": number(len(months), locale=locale),
                "first": local_month(months[0].first_day, locale=locale),
                "last": local_month(months[-1].first_day, locale=locale),
            }
            + " "
            + language.gettext("The most in one month was %(best)s, in %(best_month)s.")
            % {
                "best": cash(values[best]),
                "best_month": local_month(months[best].first_day, locale=locale),
            }
        )
        return bar_chart(
            points,
            chart_id=chart_id,
            title=title,
            description=description,
            axis_label=lambda value: money_short(Money(value, currency), locale=locale),
            highest=max(max(m.money_in, m.money_out) for m in months),
        )

    chart_in = chart_out = None
    count = len(books.months)
    if books.months:
        chart_in = month_chart(
            "chart-money-in",
            [m.money_in for m in books.months],
            language.gettext("Money in per month"),
            language.ngettext(
                "%(total)s came in over %(months)s month, from %(first)s to %(last)s.",
                "%(total)s came in over %(months)s months, from %(first)s to %(last)s.",
                count,
            ),
        )
        chart_out = month_chart(
            "chart-money-out",
            [m.money_out for m in books.months],
            language.gettext("Money out per month"),
            language.ngettext(
                "%(total)s went out over %(months)s month, from %(first)s to %(last)s.",
                "%(total)s went out over %(months)s months, from %(first)s to %(last)s.",
                count,
            ),
        )

    def by_category(came_in: tuple[Line, ...], went_out: tuple[Line, ...]) -> list[CategoryRow]:
        """One row per category, in or out; the named ones by size, "Other" last."""
        ins = {line.category: line.amount for line in came_in}
        outs = {line.category: line.amount for line in went_out}
        order = sorted(
            set(ins) | set(outs),
            key=lambda c: (c is None, -(ins.get(c, 0) + outs.get(c, 0)), c or ""),
        )
        return [
            CategoryRow(
                label(Line(c, 0)),
                cash(ins[c]) if c in ins else "",
                cash(outs[c]) if c in outs else "",
            )
            for c in order
        ]

    last = books.last_entry
    return BooksView(
        currency=currency,
        balance=cash(books.balance),
        last_entry=None if last is None else local_date(last, locale=locale),
        last_entry_iso=None if last is None else last.isoformat(),
        first_month=(
            local_month(books.months[0].first_day, locale=locale) if books.months else None
        ),
        money_in=cash(books.money_in),
        money_out=cash(books.money_out),
        chart_in=chart_in,
        chart_out=chart_out,
        months=tuple(
            MonthRow(
                local_month(m.first_day, locale=locale),
                m.first_day.strftime("%Y-%m"),
                cash(m.money_in),
                cash(m.money_out),
                cash(m.balance),
            )
            for m in books.months
        ),
        came_in=tuple(CategoryRow(label(x), cash(x.amount), "") for x in books.came_in),
        went_out=tuple(CategoryRow(label(x), "", cash(x.amount)) for x in books.went_out),
        detail=tuple(
            MonthCategories(
                local_month(m.first_day, locale=locale),
                m.first_day.strftime("%Y-%m"),
                tuple(by_category(m.came_in, m.went_out)),
            )
            for m in books.months
        ),
    )
