"""Money: integer minor units and an ISO 4217 code; exact parsing, no floats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundraiser.errors import CurrencyMismatch, MoneyError
from fundraiser.money import Money, check_currency, exponent, parse, total, zero

CURRENCIES = ["EUR", "GBP", "JPY", "KWD", "USD", "BHD", "CLP"]

currencies = st.sampled_from(CURRENCIES)
positive = st.integers(min_value=1, max_value=10**12)
any_amount = st.integers(min_value=-(10**12), max_value=10**12)


# -- currencies ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "digits"),
    [("JPY", 0), ("CLP", 0), ("EUR", 2), ("GBP", 2), ("USD", 2), ("KWD", 3), ("BHD", 3)],
)
def test_exponent(code: str, digits: int) -> None:
    assert exponent(code) == digits


def test_currency_codes_are_normalised() -> None:
    assert check_currency(" eur ") == "EUR"
    assert exponent("gbp") == 2


@pytest.mark.parametrize("code", ["XYZ", "EURO", "EU", "", "123", "€"])
def test_unknown_currency_refused(code: str) -> None:
    with pytest.raises(MoneyError, match="unknown currency"):
        check_currency(code)
    with pytest.raises(MoneyError, match="unknown currency"):
        Money(100, code)
    with pytest.raises(MoneyError, match="unknown currency"):
        parse("1.00", code)


# -- construction ---------------------------------------------------------------


@pytest.mark.parametrize("amount", [1.5, 1.0, True, False, Decimal("1"), "100", None])
def test_amount_must_be_a_plain_int(amount: object) -> None:
    with pytest.raises(MoneyError, match="whole minor units"):
        Money(amount, "EUR")  # type: ignore[arg-type]


def test_lower_case_code_is_stored_upper_case() -> None:
    # Regression: Money(1, "eur") used to keep "eur", so it was != Money(1, "EUR")
    # and adding the two raised CurrencyMismatch.
    assert Money(150, "eur") == Money(150, "EUR")
    assert Money(150, "eur").currency == "EUR"
    assert Money(1, "eur") + Money(2, "EUR") == Money(3, "EUR")


def test_money_is_frozen() -> None:
    money = Money(100, "EUR")
    with pytest.raises(AttributeError):
        money.amount = 5  # type: ignore[misc]


# -- parsing ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code", "expected"),
    [
        ("12.50", "EUR", Money(1250, "EUR")),
        ("12.5", "EUR", Money(1250, "EUR")),
        ("12", "EUR", Money(1200, "EUR")),
        ("0.01", "EUR", Money(1, "EUR")),
        ("12.3400", "EUR", Money(1234, "EUR")),  # trailing zeros are not precision
        ("12", "JPY", Money(12, "JPY")),
        ("12.0", "JPY", Money(12, "JPY")),
        ("1.234", "KWD", Money(1234, "KWD")),
        ("1.2", "KWD", Money(1200, "KWD")),
        ("250000.00", "GBP", Money(25000000, "GBP")),
        ("  12.50  ", "EUR", Money(1250, "EUR")),
        ("12.5 EUR", "EUR", Money(1250, "EUR")),
        ("EUR 12.5", "EUR", Money(1250, "EUR")),
        ("12.50 eur", "EUR", Money(1250, "EUR")),
        ("12.50", "eur", Money(1250, "EUR")),
        ("000012.50", "EUR", Money(1250, "EUR")),
    ],
)
def test_parse(text: str, code: str, expected: Money) -> None:
    result = parse(text, code)
    assert result == expected
    assert type(result.amount) is int


def test_parse_examples_from_brief() -> None:
    assert parse("12.50", "EUR") == Money(1250, "EUR")
    assert parse("12", "JPY") == Money(12, "JPY")
    assert parse("1.234", "KWD").amount == 1234


@pytest.mark.parametrize(
    ("text", "code"),
    [("12.345", "EUR"), ("12.3456", "GBP"), ("12.5", "JPY"), ("1.2345", "KWD"), ("0.001", "EUR")],
)
def test_over_precise_amount_refused(text: str, code: str) -> None:
    with pytest.raises(MoneyError, match="decimals") as info:
        parse(text, code)
    assert code in str(info.value)


@pytest.mark.parametrize("text", ["12.50 USD", "USD 12.50", "GBP 12 EUR", "EUR 12 GBP"])
def test_mixed_currency_refused(text: str) -> None:
    # "EUR 12 GBP" names two codes: it used to be accepted because only the
    # first code was compared with the campaign's currency.
    with pytest.raises(MoneyError, match="campaign uses EUR"):
        parse(text, "EUR")


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("-5", "negative"),
        ("-0.01", "negative"),
        ("EUR -5", "negative"),
        ("0", "zero"),
        ("0.00", "zero"),
        ("", "not an amount"),
        ("   ", "not an amount"),
        ("abc", "not an amount"),
        ("1,000.00", "not an amount"),
        ("1 000.00", "not an amount"),
        ("1e3", "not an amount"),
        ("+5", "not an amount"),
        (".5", "not an amount"),
        ("12.", "not an amount"),
        ("€12.50", "not an amount"),
        ("12.50EUR", "not an amount"),
        ("1.2.3", "not an amount"),
        ("nan", "not an amount"),
        ("inf", "not an amount"),
    ],
)
def test_bad_text_refused(text: str, needle: str) -> None:
    with pytest.raises(MoneyError, match=needle):
        parse(text, "EUR")


@pytest.mark.parametrize("value", [None, 12.5, 12, b"12.50"])
def test_non_text_refused(value: object) -> None:
    with pytest.raises(MoneyError):
        parse(value, "EUR")  # type: ignore[arg-type]


def test_zero_allowed_when_asked() -> None:
    assert parse("0", "EUR", allow_zero=True) == Money(0, "EUR")
    assert parse("0.00", "EUR", allow_zero=True).is_zero
    with pytest.raises(MoneyError, match="negative"):
        parse("-1", "EUR", allow_zero=True)


# -- arithmetic -------------------------------------------------------------------


def test_arithmetic_same_currency() -> None:
    a, b = Money(1250, "EUR"), Money(250, "EUR")
    assert a + b == Money(1500, "EUR")
    assert a - b == Money(1000, "EUR")
    assert a * 3 == Money(3750, "EUR")
    assert 3 * a == Money(3750, "EUR")
    assert -a == Money(-1250, "EUR")
    assert b < a and b <= a and a > b and a >= b and a <= a and a >= a


def test_adding_currencies_raises() -> None:
    with pytest.raises(CurrencyMismatch, match="EUR and GBP"):
        Money(100, "EUR") + Money(100, "GBP")
    with pytest.raises(CurrencyMismatch):
        Money(100, "EUR") - Money(100, "GBP")
    with pytest.raises(CurrencyMismatch):
        Money(100, "EUR").divmod(Money(10, "GBP"))


@pytest.mark.parametrize(
    "compare",
    [
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
    ],
)
def test_comparing_currencies_raises(compare: object) -> None:
    with pytest.raises(CurrencyMismatch):
        compare(Money(100, "EUR"), Money(100, "GBP"))  # type: ignore[operator]


def test_equality_across_currencies_is_false_not_equal() -> None:
    assert Money(100, "EUR") != Money(100, "GBP")


@pytest.mark.parametrize("other", [100, 1.5, Decimal("1"), "1.00"])
def test_combining_with_non_money_raises(other: object) -> None:
    with pytest.raises(TypeError):
        _ = Money(100, "EUR") + other  # type: ignore[operator]
    with pytest.raises(TypeError):
        _ = Money(100, "EUR") < other  # type: ignore[operator]


@pytest.mark.parametrize("factor", [1.5, 2.0, True, Decimal("2")])
def test_multiply_only_by_int(factor: object) -> None:
    with pytest.raises(TypeError):
        Money(100, "EUR") * factor  # type: ignore[operator]


def test_divmod() -> None:
    assert Money(1250, "GBP").divmod(Money(500, "GBP")) == (2, Money(250, "GBP"))
    assert Money(1000, "GBP").divmod(Money(500, "GBP")) == (2, Money(0, "GBP"))
    for unit in (Money(0, "GBP"), Money(-5, "GBP")):
        with pytest.raises(MoneyError):
            Money(1000, "GBP").divmod(unit)


def test_total_and_zero() -> None:
    assert total([], "EUR") == Money(0, "EUR") == zero("EUR")
    assert total([Money(1, "EUR"), Money(2, "EUR")], "EUR") == Money(3, "EUR")
    with pytest.raises(CurrencyMismatch):
        total([Money(1, "EUR"), Money(2, "GBP")], "EUR")
    with pytest.raises(CurrencyMismatch):
        total([Money(1, "GBP")], "EUR")


# -- text ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "locale", "expected"),
    [
        (Money(125000, "GBP"), "en_GB", "£1,250.00"),
        (Money(5, "GBP"), "en_GB", "£0.05"),
        (Money(1250, "JPY"), "en_GB", "JP¥1,250"),
        (Money(1250, "JPY"), "en_US", "¥1,250"),
        (Money(125000, "EUR"), "en_GB", "€1,250.00"),
    ],
)
def test_format(money: Money, locale: str, expected: str) -> None:
    assert money.format(locale).replace("\xa0", " ") == expected


def test_format_default_locale_and_other_locales() -> None:
    assert Money(125000, "GBP").format() == "£1,250.00"
    german = Money(125000, "EUR").format("de_DE")
    assert "1.250,00" in german and "€" in german
    assert "." not in Money(1250, "JPY").format("en_GB")
    kuwaiti = Money(1234, "KWD").format("en_GB")  # CLDR decides the spacing
    assert "KWD" in kuwaiti and kuwaiti.endswith("1.234")


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (Money(125000, "GBP"), "1250.00"),
        (Money(5, "EUR"), "0.05"),
        (Money(-5, "EUR"), "-0.05"),
        (Money(0, "EUR"), "0.00"),
        (Money(1250, "JPY"), "1250"),
        (Money(5, "KWD"), "0.005"),
        (Money(1234, "KWD"), "1.234"),
    ],
)
def test_plain(money: Money, text: str) -> None:
    assert money.plain() == text
    assert str(money) == f"{text} {money.currency}"
    if money.amount > 0:
        assert parse(money.plain(), money.currency) == money
        assert parse(str(money), money.currency) == money


def test_decimal_and_json() -> None:
    assert Money(1234, "KWD").decimal() == Decimal("1.234")
    assert Money(1250, "JPY").decimal() == Decimal("1250")
    assert Money(125000, "GBP").as_json() == {"amount": 125000, "currency": "GBP"}


# -- properties --------------------------------------------------------------------


@given(currencies, positive)
def test_plain_round_trips(code: str, n: int) -> None:
    money = Money(n, code)
    assert parse(money.plain(), code) == money
    assert parse(str(money), code) == money


@given(currencies, positive)
def test_decimal_matches_minor_units(code: str, n: int) -> None:
    money = Money(n, code)
    assert money.decimal().scaleb(exponent(code)) == n


@given(currencies, any_amount, any_amount, any_amount)
def test_addition_associative_and_commutative(code: str, a: int, b: int, c: int) -> None:
    x, y, z = Money(a, code), Money(b, code), Money(c, code)
    assert (x + y) + z == x + (y + z)
    assert x + y == y + x
    assert x + zero(code) == x
    assert (x - y) + y == x


@given(currencies, st.lists(any_amount, max_size=20))
def test_total_is_sum_of_amounts(code: str, amounts: list[int]) -> None:
    result = total((Money(n, code) for n in amounts), code)
    assert result == Money(sum(amounts), code)
    assert type(result.amount) is int


@given(currencies, any_amount, positive)
def test_divmod_invariant(code: str, n: int, unit_amount: int) -> None:
    amount, unit = Money(n, code), Money(unit_amount, code)
    count, rest = amount.divmod(unit)
    assert type(count) is int
    assert unit * count + rest == amount
    assert zero(code) <= rest < unit


@given(currencies, any_amount, any_amount, st.integers(min_value=-1000, max_value=1000))
def test_no_float_after_operations(code: str, a: int, b: int, k: int) -> None:
    x, y = Money(a, code), Money(b, code)
    results = [x + y, x - y, x * k, k * x, -x, total([x, y], code)]
    if b > 0:
        results.append(x.divmod(y)[1])
    for result in results:
        assert type(result.amount) is int
        assert result.currency == code
