"""Money: an integer count of a currency's minor unit, and its ISO 4217 code.

Never a float: amounts are parsed from text with exact decimal rules and
formatted through Babel's CLDR data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache

from babel.numbers import format_currency, get_currency_precision, is_currency

from fundraiser.errors import CurrencyMismatch, MoneyError

_AMOUNT = re.compile(r"^(?P<units>\d+)(?:\.(?P<fraction>\d+))?$", re.ASCII)
_WITH_CODE = re.compile(
    r"^(?:(?P<pre>[A-Za-z]{3})\s+)?(?P<num>[^\s]+?)(?:\s+(?P<post>[A-Za-z]{3}))?$"
)


@cache
def exponent(currency: str) -> int:
    """Digits after the decimal point for a currency: JPY 0, EUR 2, KWD 3."""
    return int(get_currency_precision(check_currency(currency)))


@cache
def check_currency(code: str) -> str:
    """Return the upper-case ISO 4217 code, or raise naming the bad code."""
    normal = code.strip().upper() if isinstance(code, str) else ""
    if len(normal) != 3 or not normal.isalpha() or not is_currency(normal):
        raise MoneyError(f"unknown currency {code!r}: use an ISO 4217 code such as EUR, GBP or JPY")
    return normal


@dataclass(frozen=True, order=False, slots=True)
class Money:
    """An amount in minor units (cents, pence, yen) of one currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if type(self.amount) is not int:  # bool and float are refused on purpose
            raise MoneyError(f"money amounts are whole minor units, not {self.amount!r}")
        object.__setattr__(self, "currency", check_currency(self.currency))

    # -- arithmetic within one currency ------------------------------------
    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(
                f"cannot combine {self.currency} and {other.currency}: "
                "a campaign takes one currency"
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if type(factor) is not int:
            raise TypeError("money can only be multiplied by a whole number")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    def divmod(self, unit: Money) -> tuple[int, Money]:
        """How many whole `unit`s fit, and what is left: (shares, remainder)."""
        self._same(unit)
        if unit.amount <= 0:
            raise MoneyError("cannot divide by a zero or negative amount")
        count, rest = divmod(self.amount, unit.amount)
        return count, Money(rest, self.currency)

    @property
    def is_zero(self) -> bool:
        return self.amount == 0

    # -- text --------------------------------------------------------------
    def decimal(self) -> Decimal:
        """The amount in major units as an exact Decimal (for display only)."""
        return Decimal(self.amount).scaleb(-exponent(self.currency))

    def plain(self) -> str:
        """Major units without symbol or grouping, e.g. '1250.00' (CSV, JSON)."""
        exp = exponent(self.currency)
        sign = "-" if self.amount < 0 else ""
        units, fraction = divmod(abs(self.amount), 10**exp)
        return f"{sign}{units}.{fraction:0{exp}d}" if exp else f"{sign}{units}"

    def format(self, locale: str = "en_GB") -> str:
        """Human text with Babel, e.g. '£1,250.00' or 'JP¥1,250'."""
        return str(format_currency(self.decimal(), self.currency, locale=locale))

    def __str__(self) -> str:
        return f"{self.plain()} {self.currency}"

    def as_json(self) -> dict[str, int | str]:
        return {"amount": self.amount, "currency": self.currency}


def zero(currency: str) -> Money:
    return Money(0, check_currency(currency))


def total(amounts: Iterable[Money], currency: str) -> Money:
    """Sum of amounts that must all be in `currency` (empty sums are zero)."""
    result = zero(currency)
    for amount in amounts:
        result = result + amount
    return result


def parse(text: str, currency: str, *, allow_zero: bool = False) -> Money:
    """Parse major units such as '12.50' (or '12.50 EUR') into Money.

    Refuses negative, zero (unless allowed), grouped ('1,000') or over-precise
    ('12.345' in EUR) amounts, and a code that differs from `currency`.
    """
    return _parse(text, currency, allow_zero)


# A CSV of 100,000 pledges holds a few dozen distinct amounts; Money is
# immutable, so one parsed value serves every row (errors are not cached).
@lru_cache(maxsize=4096)
def _parse(text: str, currency: str, allow_zero: bool) -> Money:
    code = check_currency(currency)
    raw = text.strip() if isinstance(text, str) else ""
    plain = _AMOUNT.match(raw)
    if plain is not None:  # the common case, "250.00": skip the currency-code parsing
        return _minor(text, plain, code, allow_zero)
    shape = _WITH_CODE.match(raw)
    if not raw or shape is None:
        raise MoneyError(f"{text!r} is not an amount: write major units such as 250.00")
    for named in filter(None, (shape.group("pre"), shape.group("post"))):
        if named.upper() != code:
            raise MoneyError(
                f"{text!r} is in {named.upper()} but the campaign uses {code}: "
                f"give the amount in {code}"
            )
    number = shape.group("num")
    if number.startswith("-"):
        raise MoneyError(f"{text!r} is negative: amounts must be above zero")
    match = _AMOUNT.match(number)
    if match is None:
        raise MoneyError(
            f"{text!r} is not an amount: write digits with a dot for decimals, "
            "such as 1250.00 (no spaces, commas or symbols)"
        )
    return _minor(text, match, code, allow_zero)


def _minor(text: str, match: re.Match[str], code: str, allow_zero: bool) -> Money:
    """Digits matched by _AMOUNT to minor units, refusing digits the currency lacks."""
    exp = exponent(code)
    fraction = match.group("fraction") or ""
    if len(fraction) > exp:
        significant = fraction[exp:].strip("0")
        if significant:
            places = "no decimals" if exp == 0 else f"at most {exp} decimals"
            raise MoneyError(f"{text!r} has too many decimals: {code} takes {places}")
        fraction = fraction[:exp]
    minor = int(match.group("units")) * 10**exp + (int(fraction.ljust(exp, "0")) if exp else 0)
    if minor == 0 and not allow_zero:
        raise MoneyError(f"{text!r} is zero: amounts must be above zero")
    return Money(minor, code)
