"""A bulk write's COPY into PostgreSQL goes binary only where every value fits its
column: the rows read back exactly as written, and an integer past its column's
range is refused by the server, never wrapped into another (valid) number."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from fundraiser.ledger import Ledger, audit, open_ledger, pgcopy, schema
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create_many
from tests.conftest import PostgresServer

COLUMNS = ["pledge_id", "person_key", "amount", "currency", "reason", "status", "created_at"]
INT4 = 2**31

# What strangers and spreadsheets put in text: COPY's own escapes among them.
AWKWARD = [
    "tab\there",
    "line\nbreak\r\n",
    "back\\slash \\N \\.",
    "\\N",
    "NULL",
    "'quoted' \"twice\"",
    '=HYPERLINK("http://x")',
    "Zoë 🙂 ‮evil‬",
    "x" * 10_000,
    "",
]


def typed(*names: str) -> list[sa.Column[Any]]:
    return [schema.remainders.c[name] for name in names]


def test_values_of_their_columns_types_go_binary() -> None:
    rows = [(1, "k", 10**15, None), (INT4 - 1, "", -(2**63), None)]
    columns = typed("pledge_id", "person_key", "amount", "refunded_at")
    assert pgcopy.binary_types(columns, rows, range(4)) == ["int4", "text", "int8", "text"]
    # The constants and looked-up values after the rows' own are checked too.
    tail = [("GBP",), {1: "key-1", 2: None}.values()]
    assert pgcopy.binary_types(typed("pledge_id", "currency", "person_key"), rows, [0], tail) == [
        "int4",
        "text",
        "text",
    ]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("pledge_id", INT4),  # psycopg would pack it as -2**31
        ("pledge_id", -INT4 - 1),
        ("pledge_id", 2**32 + 1),  # ... and this one as 1
        ("amount", 2**63),
        ("pledge_id", True),  # a bool is no number here
        ("pledge_id", "7"),  # the server may read it as text: the text COPY does
        ("person_key", 7),
        ("amount", 1.5),
    ],
)
def test_a_value_that_does_not_fit_its_column_makes_the_copy_text(column: str, value: Any) -> None:
    rows = [(1,), (value,), (None,)]
    assert pgcopy.binary_types(typed(column), rows, [0]) is None
    # Also as a constant or a looked-up value.
    assert pgcopy.binary_types(typed(column), rows, [], [(value,)]) is None


def test_a_column_type_without_a_binary_form_here_makes_the_copy_text() -> None:
    column = sa.Column("price", sa.Numeric(10, 2))
    assert pgcopy.binary_types([column], [(1,)], [0]) is None
    with pytest.raises(ValueError, match="one column for each"):
        pgcopy.binary_types(typed("pledge_id", "amount"), [(1, 2)], [0])


@given(st.lists(st.one_of(st.none(), st.integers(-(2**33), 2**33)), min_size=1, max_size=30))
def test_an_integer_column_goes_binary_exactly_when_every_value_is_in_range(
    values: list[int | None],
) -> None:
    fits = all(v is None or -INT4 <= v < INT4 for v in values)
    found = pgcopy.binary_types(typed("pledge_id"), [(v,) for v in values], [0])
    assert (found == ["int4"]) is fits


@pytest.fixture
def ledger(postgres: PostgresServer) -> Iterator[Ledger]:
    opened = open_ledger(postgres.new_database())
    with opened.write() as tx:
        create_many(
            tx,
            [
                NewPledge(f"B{n}", f"b{n}@x.org", "1 Road", Money(5000, "GBP"), "crowd")
                for n in range(3)
            ],
        )
    yield opened
    opened.dispose()


def stored(ledger: Ledger) -> list[tuple[Any, ...]]:
    r = schema.remainders.c
    query = sa.select(r.pledge_id, r.person_key, r.amount, r.reason).order_by(r.id)
    with ledger.read() as conn:
        return [tuple(row) for row in conn.execute(query)]


@pytest.mark.postgres
def test_awkward_text_and_big_amounts_go_in_binary_and_read_back_as_written(ledger: Ledger) -> None:
    rows = [
        (1 + n % 3, text, 2**40 + n, "GBP", text[::-1], "due", "2026-11-30T10:00:00Z")
        for n, text in enumerate(AWKWARD * 3)
    ]
    assert pgcopy.binary_types(typed(*COLUMNS), rows, range(len(COLUMNS))) is not None
    with ledger.write(bulk_work=True) as tx:
        tx.insert(schema.remainders, COLUMNS, rows)
        tx.record("test.remainders", "remainders", {})
    assert stored(ledger) == [(p, key, amount, reason) for p, key, amount, _, reason, *_ in rows]
    assert audit.verify(ledger).ok


@pytest.mark.postgres
def test_a_pledge_id_past_its_column_is_refused_not_wrapped_onto_a_real_pledge(
    ledger: Ledger,
) -> None:
    # 2**32 + 1 packed into four bytes is 1: pledge 1 exists, so a wrapped row
    # would pass even the foreign key and go in as pledge 1's remainder.
    rows = [(1 + n % 3, "k", 100, "GBP", "fraction", "due", "now") for n in range(20)]
    rows.append((2**32 + 1, "k", 100, "GBP", "fraction", "due", "now"))
    refused = pytest.raises(psycopg.errors.NumericValueOutOfRange, match="out of range")
    with refused, ledger.write(bulk_work=True) as tx:
        tx.insert(schema.remainders, COLUMNS, rows)
        tx.record("test.remainders", "remainders", {})
    assert stored(ledger) == []
