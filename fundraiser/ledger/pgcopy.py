"""COPY into PostgreSQL in its binary format, where every value is checked to fit.

psycopg formats COPY rows in C in either format, but in the binary one there
is no text to make, nor for the server to parse: 150,000 remainders of eight
columns cost the client 0.10 s of CPU against 0.26 s as text. A binary COPY
must be told each column's type, and psycopg packs what it is given as that
type: a Python int past an `integer` column's range is wrapped without a word
(2**31 goes in as -2**31), a str in a number column fails half-way through.
So a COPY is binary only when every value is first found to be its column's
Python type (or None) and within its range; otherwise it is text, as before,
and the server types each value as an INSERT would, or refuses it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

import sqlalchemy as sa

# Column type -> (PostgreSQL's name for it, the Python type its values must be, the
# bound of an integer's magnitude). Exact types: a Boolean is no Integer here.
_BINARY: dict[type, tuple[str, type, int]] = {
    sa.Integer: ("int4", int, 2**31),
    sa.BigInteger: ("int8", int, 2**63),
    sa.Boolean: ("bool", bool, 0),
    sa.Text: ("text", str, 0),
}
_NONE = type(None)


def binary_types(
    columns: Sequence[sa.Column[Any]],
    rows: Sequence[Sequence[Any]],
    positions: Sequence[int],
    tail: Sequence[Collection[Any]] = (),
) -> list[str] | None:
    """The types of a binary COPY into `columns`, or None for a text COPY.

    Each row sent holds `row[p]` for p in `positions`, then one value for each
    of the remaining columns, taken from the collection `tail` gives it (a
    constant as a 1-tuple; the values a lookup may give). None when a column's
    type has no binary form here, or a value is not of its column's Python
    type, or an integer is out of its column's range.
    """
    if len(columns) != len(positions) + len(tail):
        raise ValueError("one column for each position and each tail collection")
    types: list[str] = []
    given: Collection[Any]
    for index, column in enumerate(columns):
        found = _BINARY.get(type(column.type))
        if found is None:
            return None
        name, python, bound = found
        at = index - len(positions)
        # One column at a time: never a second copy of every row's values.
        given = list(map(itemgetter(positions[index]), rows)) if at < 0 else tail[at]
        kinds = set(map(type, given))  # exact: a bool in an integer column is refused
        if _NONE in kinds:
            kinds.discard(_NONE)
            given = [value for value in given if value is not None]
        if not kinds <= {python}:
            return None
        if bound and given and not (-bound <= min(given) and max(given) < bound):
            return None
        types.append(name)
    return types


@contextmanager
def copy_in(cursor: Any, into: str, types: list[str] | None) -> Iterator[Any]:
    """`COPY into FROM STDIN`: binary with `types` (from binary_types), text without."""
    binary = types is not None
    with cursor.copy(f"COPY {into} FROM STDIN" + (" (FORMAT BINARY)" if binary else "")) as copy:
        if binary:
            copy.set_types(types)
        yield copy
