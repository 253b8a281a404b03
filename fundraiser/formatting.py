"""Money, numbers and dates as a reader of the campaign's language expects them (Babel).

One place for the figures a person reads: the site's Jinja filters
(sitegen.filters), the pledge service's private pages, the mails and the
certificates format with these, so "£1,250.00" and "28 February 2027" read
the same on all of them, and "1 250,00 €" and "28 février 2027" in French.
Dates are the day in the campaign's time zone, never the server's. Each
function takes the Babel locale (fundraiser.i18n.Language.locale).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache, partial
from typing import Any
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_datetime, format_skeleton
from babel.numbers import format_compact_currency, format_currency, format_decimal

from fundraiser.money import Money, exponent

_DECIMALS = re.compile(r"\.0+")


def babel_locale(language: str, default: str = "en_GB") -> str:
    """Babel's name for a BCP 47 tag from campaign.toml: 'en-GB' -> 'en_GB', 'fr' -> 'fr'
    (Babel's own name is taken as it is: 'en_GB' -> 'en_GB')."""
    try:
        return str(Locale.parse(language.strip().replace("_", "-"), sep="-"))
    except (ValueError, UnknownLocaleError):
        return default


def to_money(value: Any, currency: str | None = None) -> Money:
    """Money from Money, (minor units, currency) or minor units plus a currency."""
    if isinstance(value, Money):
        return value
    if isinstance(value, tuple | list) and len(value) == 2:
        return Money(int(value[0]), str(value[1]))
    if isinstance(value, int) and not isinstance(value, bool) and currency:
        return Money(value, currency)
    raise TypeError(
        f"the money filter needs Money, (minor units, currency) or minor units with a "
        f"currency, not {value!r}"
    )


@lru_cache(maxsize=32)
def _whole_pattern(locale: str) -> str:
    """The locale's currency pattern without decimals ('¤#,##0' for en_GB)."""
    pattern = Locale.parse(locale).currency_formats["standard"].pattern
    return _DECIMALS.sub("", pattern)


def money(
    value: Any, currency: str | None = None, *, whole: bool = False, locale: str = "en_GB"
) -> str:
    """'£1,250.00'; with whole=True, '£1,250' when there are no pennies to show."""
    amount = to_money(value, currency)
    exp = exponent(amount.currency)
    if whole and exp and amount.amount % 10**exp == 0:
        return str(
            format_currency(
                amount.decimal(),
                amount.currency,
                format=_whole_pattern(locale),
                currency_digits=False,
                locale=locale,
            )
        )
    return amount.format(locale)


def money_short(value: Any, currency: str | None = None, *, locale: str = "en_GB") -> str:
    """Compact money for chart axes: '£250K'."""
    amount = to_money(value, currency)
    return str(
        format_compact_currency(amount.decimal(), amount.currency, locale=locale, fraction_digits=1)
    )


def number(value: int | Decimal, *, locale: str = "en_GB") -> str:
    """'12,345'."""
    return str(format_decimal(value, locale=locale))


def _moment(value: date | datetime | str) -> date | datetime:
    """A date or datetime; ISO text (as the ledger stores them) is read first."""
    if isinstance(value, str):
        return datetime.fromisoformat(value) if "T" in value else date.fromisoformat(value)
    return value


@lru_cache(maxsize=32)
def _datetime_pattern(locale: str) -> str:
    """The locale's long date and short time, joined as it joins them, with the zone:
    'd MMMM y, HH:mm zzz' in en_GB and fr, 'MMMM d, y, h:mm a zzz' in en_US."""
    data = Locale.parse(locale)
    time = f"{data.time_formats['short'].pattern} zzz"
    return str(data.datetime_formats["medium"]).format(time, data.date_formats["long"].pattern)


_OFFSET = re.compile(r"[+-]\d{4}\b")


def local_datetime(value: datetime | str, *, zone: str = "UTC", locale: str = "en_GB") -> str:
    """'28 February 2027, 18:00 GMT' in the campaign's time zone ('28 février 2027, 19:00
    UTC+01:00' in fr, whose CLDR data has no short name for the zone)."""
    moment = _moment(value)
    assert isinstance(moment, datetime)
    pattern = _datetime_pattern(locale)
    text = str(format_datetime(moment, pattern, tzinfo=ZoneInfo(zone), locale=locale))
    if _OFFSET.search(text):  # a bare "+0100": the locale's "UTC+01:00" reads better
        text = str(
            format_datetime(
                moment, pattern.replace("zzz", "OOOO"), tzinfo=ZoneInfo(zone), locale=locale
            )
        )
    return text


def local_date(value: date | datetime | str, *, zone: str = "UTC", locale: str = "en_GB") -> str:
    """'28 February 2027', the day in the campaign's time zone."""
    value = _moment(value)
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(zone)).date() if value.tzinfo else value.date()
    return str(format_date(value, "long", locale=locale))


def local_month(value: date, *, short: bool = False, locale: str = "en_GB") -> str:
    """'March 2027' ('mars 2027'); short: 'Mar 2027' ('mars 2027'), for chart labels."""
    return str(format_skeleton("yMMM" if short else "yMMMM", value, locale=locale))


def iso_date(value: date | datetime | str, *, zone: str = "UTC") -> str:
    """'2027-02-28' for <time datetime>, in the campaign's time zone."""
    value = _moment(value)
    if isinstance(value, datetime):
        value = value.astimezone(ZoneInfo(zone)).date() if value.tzinfo else value.date()
    return value.isoformat()


def jinja_filters(locale: str, zone: str) -> dict[str, Callable[..., str]]:
    """The filters a template formats with, for one locale and time zone: `money`,
    `money_short`, `number`, `local_datetime`, `local_date`, `iso_date`."""
    return {
        "money": partial(money, locale=locale),
        "money_short": partial(money_short, locale=locale),
        "number": partial(number, locale=locale),
        "local_datetime": partial(local_datetime, zone=zone, locale=locale),
        "local_date": partial(local_date, zone=zone, locale=locale),
        "iso_date": partial(iso_date, zone=zone),
    }
