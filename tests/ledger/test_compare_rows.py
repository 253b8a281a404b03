"""Two ordered streams of rows set side by side (compare.compare_rows, what verify
does for a PostgreSQL ledger): every missing, added or edited row named, as a
dictionary of the rows by key would name it."""

from __future__ import annotations

import sqlalchemy as sa
from hypothesis import given, settings
from hypothesis import strategies as st

from fundraiser.ledger import compare

TABLE = sa.Table(
    "t",
    sa.MetaData(),
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("amount", sa.Integer),
    sa.Column("state", sa.Text, info={"sent_only": True}),
    sa.Column("email", sa.Text, info={"personal": True}),
)
Row = tuple[int, int, str, str]


def expected(made: list[Row], held: list[Row]) -> list[tuple[str, str]]:
    """What differs, by a dictionary: (key, column) in key order, columns in table order."""
    mine, theirs = {r[0]: r for r in made}, {r[0]: r for r in held}
    found = []
    for key in sorted(mine.keys() | theirs.keys()):
        m, h = mine.get(key), theirs.get(key)
        if m is None or h is None:
            found.append((f"id={key}", "(row)"))
            continue
        for n, name in ((1, "amount"), (2, "state"), (3, "email")):
            sent = {"sent"}
            same = (m[n] in sent) == (h[n] in sent) if name == "state" else m[n] == h[n]
            if not same:
                found.append((f"id={key}", name))
    return found


def named(made: list[Row], held: list[Row], keep: int = 10**6) -> tuple[list[tuple[str, str]], int]:
    found, more = compare.compare_rows(TABLE, iter(made), iter(held), keep)
    return [(d.row, d.column) for d in found], more


rows = st.lists(
    st.tuples(
        st.integers(0, 60),
        st.integers(0, 2),
        st.sampled_from(["sent", "queued", "failed"]),
        st.sampled_from(["fp:a", "fp:b"]),
    ),
    max_size=40,
    unique_by=lambda r: r[0],
).map(sorted)


@settings(max_examples=300, deadline=None)
@given(made=rows, held=rows)
def test_every_difference_is_named(made: list[Row], held: list[Row]) -> None:
    assert named(made, held) == (expected(made, held), 0)


def test_one_edit_deep_in_a_long_table_and_a_row_past_its_end() -> None:
    made = [(n, 500, "queued", "fp:x") for n in range(1, 1_001)]
    held = list(made)
    held[637] = (638, 501, "queued", "fp:x")  # an amount edited in the seventh chunk
    held[900] = (901, 500, "queued", "fp:y")  # a personal value changed
    held[950] = (951, 500, "failed", "fp:x")  # a mail state outside the journal: no difference
    held.append((1_001, 1, "sent", "fp:z"))  # a row the journal never made
    del held[10]  # and one it made, gone
    assert named(made, held) == (
        [("id=11", "(row)"), ("id=638", "amount"), ("id=901", "email"), ("id=1001", "(row)")],
        0,
    )
    assert named(made, held, keep=2) == ([("id=11", "(row)"), ("id=638", "amount")], 2)
    assert named(made, list(made)) == ([], 0)
    assert named([], []) == ([], 0)
