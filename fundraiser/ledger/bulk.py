"""Bulk and hot-path statements through the database driver, where SQLAlchemy costs more.

Two uses, always in the caller's transaction: bulk work (an import or an
issue writes 100,000s of rows: `insert_rows`, `fetch_rows`), and the few single
statements every webhook delivery runs (`run`, `first`, `first_row`): about
60 µs for a one-row SELECT through `exec_driver_sql`, 3 µs at the driver.
SQL names only our own tables and columns; values are bound, never formatted
(`fetch_rows` binds literals: our own values only).
"""

from __future__ import annotations

import gc
import sqlite3
from collections import namedtuple
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from itertools import chain, count
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import pgbulk, pgcopy

#: Names for each_row's cursors on a PostgreSQL server.
_SERVER_CURSORS = count()

# Row classes by column names: `SELECT *` gives each ledger's own column order.
_ROW_TYPES: dict[tuple[str, ...], Any] = {}


def _cursor(conn: Connection, sql: str, params: Sequence[Any]) -> Any:
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql, params)
    except BaseException:
        cursor.close()
        raise
    return cursor


def run(conn: Connection, sql: str, params: Sequence[Any] = ()) -> int:
    """Run an INSERT, UPDATE or DELETE; the number of rows it changed."""
    cursor = _cursor(conn, sql, params)
    try:
        return int(cursor.rowcount)
    finally:
        cursor.close()


def run_many(conn: Connection, sql: str, rows: Sequence[Sequence[Any]]) -> int:
    """Run one INSERT, UPDATE or DELETE for each row of values; the rows they changed."""
    if conn.dialect.name != "sqlite":
        sql = sql.replace("?", "%s")
    cursor = conn.connection.cursor()
    try:
        done = 0
        for start in range(0, len(rows), 5000):
            cursor.executemany(sql, rows[start : start + 5000])
            done += int(cursor.rowcount)
        return done
    finally:
        cursor.close()


def first(conn: Connection, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    """The first row of a SELECT as a plain tuple, or None."""
    cursor = _cursor(conn, sql, params)
    try:
        found = cursor.fetchone()
        return None if found is None else tuple(found)
    finally:
        cursor.close()


def fetch(conn: Connection, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Every row of a small SELECT, as plain tuples."""
    cursor = _cursor(conn, sql, params)
    try:
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        cursor.close()


def first_row(conn: Connection, sql: str, params: Sequence[Any] = ()) -> Any | None:
    """The first row of a SELECT with its columns as attributes (a named tuple), or None."""
    cursor = _cursor(conn, sql, params)
    try:
        found = cursor.fetchone()
        if found is None:
            return None
        names = tuple(column[0] for column in cursor.description)
        row_type = _ROW_TYPES.get(names)
        if row_type is None:
            row_type = _ROW_TYPES.setdefault(names, namedtuple("Row", names))
        return row_type._make(found)
    finally:
        cursor.close()


# Bound values per multi-row INSERT: fewer, bigger statements mean fewer
# driver round trips. SQLite allows 32,766 since 3.32 (we ask the
# connection); PostgreSQL 65,535.
_VALUES_PER_STATEMENT = 16_000
_SQLITE_OLD_LIMIT = 999


def _values_limit(conn: Connection) -> int:
    if conn.dialect.name != "sqlite":
        return _VALUES_PER_STATEMENT
    driver = conn.connection.dbapi_connection
    try:
        allowed = int(driver.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))  # type: ignore[union-attr]
    except (AttributeError, sqlite3.Error):
        allowed = _SQLITE_OLD_LIMIT
    return min(_VALUES_PER_STATEMENT, allowed)


def insert_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Any],
    columns: Sequence[str] | None = None,
    constants: Mapping[str, Any] | None = None,
) -> None:
    """Insert many rows through the driver, in the caller's transaction.

    Rows are dicts, or tuples in the order of `columns`. Tuples go in as
    multi-row INSERTs on SQLite, a third faster again than executemany, and
    through COPY on PostgreSQL; `constants`
    (the same value in every row: a currency, a status, a timestamp) are
    bound once per statement instead of once per row. SQLAlchemy's per-row
    parameter processing costs more than SQLite itself on a bulk import; our
    rows are already plain ints and strings.
    """
    if not rows:
        return
    mark = "?" if conn.dialect.name == "sqlite" else "%s"
    cursor = conn.connection.cursor()
    try:
        if columns is None:  # dicts: named placeholders, one row per execution
            named = ":{}" if mark == "?" else "%({})s"
            marks = ", ".join(named.format(c) for c in rows[0])
            cursor.executemany(
                f"INSERT INTO {table.name} ({', '.join(rows[0])}) VALUES ({marks})", rows
            )
            return
        fixed = dict(constants or {})
        if mark != "?":
            if len(rows) <= _FEW_ROWS:  # a pledge, a mail: one statement, one round trip
                _insert_few(cursor, table, columns, rows, fixed)
            else:
                _copy_rows(conn, cursor, table, columns, rows, fixed)
            return
        names = ", ".join([*columns, *fixed])
        picked = [f"v.column{n}" for n in range(1, len(columns) + 1)] + [mark] * len(fixed)
        one = "(" + ", ".join([mark] * len(columns)) + ")"
        per = max(1, (_values_limit(conn) - len(fixed)) // len(columns))
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            values = "VALUES " + ", ".join([one] * len(chunk))
            if fixed:  # constants bound once, beside the rows' own values
                values = f"SELECT {', '.join(picked)} FROM ({values}) AS v"
            cursor.execute(
                f"INSERT INTO {table.name} ({names}) {values}",
                [*fixed.values(), *chain.from_iterable(chunk)],
            )
    finally:
        cursor.close()


def insert_copying(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    constants: Mapping[str, Any] | None,
    source: sa.Table,
    by: str,
    copies: Mapping[str, str],
) -> int:
    """Insert rows whose `copies` columns (ours -> the source's) take their values
    from the `source` row whose key is the row's `by` value; how many went in.

    `by` is one of `columns`: a column of `table`, or a value only the lookup
    uses. A row whose source row is missing is not inserted (the caller counts).
    Both copy inside the database (INSERT ... SELECT ... JOIN): SQLite from the
    rows as VALUES, PostgreSQL from the rows COPYed into a temporary table.
    """
    if not rows:
        return 0
    fixed = dict(constants or {})
    key = next(iter(source.primary_key.columns)).name
    by_index = list(columns).index(by)
    kept = [i for i, name in enumerate(columns) if name != by or name in table.c]
    cursor = conn.connection.cursor()
    try:
        if conn.dialect.name != "sqlite":
            return pgbulk.insert_copying(
                conn, cursor, table, rows, columns, fixed, source, by, copies
            )
        picked = [f"v.column{i + 1}" for i in kept] + ["?"] * len(fixed)
        picked += [f"s.{name}" for name in copies.values()]
        one = "(" + ", ".join(["?"] * len(columns)) + ")"
        per = max(1, (_values_limit(conn) - len(fixed)) // len(columns))
        done = 0
        for start in range(0, len(rows), per):
            chunk = rows[start : start + per]
            names = [*(columns[i] for i in kept), *fixed, *copies]
            cursor.execute(
                f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(picked)} "
                f"FROM (VALUES {', '.join([one] * len(chunk))}) AS v "
                f"JOIN {source.name} AS s ON s.{key} = v.column{by_index + 1}",
                [*fixed.values(), *chain.from_iterable(chunk)],
            )
            done += int(cursor.rowcount)
        return done
    finally:
        cursor.close()


#: Rows a PostgreSQL insert sends as one INSERT: COPY waits on the server twice (its
#: start, its end) where an INSERT waits once, which is all of a few rows' cost.
_FEW_ROWS = 8


def _insert_few(
    cursor: Any,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: Mapping[str, Any],
) -> None:
    """PostgreSQL: a few rows (and the constants in each) as one INSERT."""
    names = ", ".join([*columns, *constants])
    extra = tuple(constants.values())
    one = "(" + ", ".join(["%s"] * (len(columns) + len(extra))) + ")"
    values = ", ".join([one] * len(rows))
    params = [value for row in rows for value in (*row, *extra)]
    cursor.execute(f"INSERT INTO {table.name} ({names}) VALUES {values}", params)


def _copy_rows(
    conn: Connection,
    cursor: Any,
    table: sa.Table,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: Mapping[str, Any],
) -> None:
    """PostgreSQL: the rows through COPY, a stream psycopg formats in C.

    A multi-row INSERT there costs more in the driver (psycopg parses every
    statement's thousands of placeholders in Python) than in the server;
    COPY has no statement to parse and is ten times faster again. Binary
    where every value fits its column, text otherwise (ledger/pgcopy.py); the
    constants go into each row. A big COPY in a bulk write checks its
    foreign keys once, at the write's end (ledger/pgbulk.py).
    """
    pgbulk.suspend(conn, cursor, table.name, len(rows))
    names = ", ".join([*columns, *constants])
    extra = tuple(constants.values())
    types = pgcopy.binary_types(
        [table.c[name] for name in [*columns, *constants]],
        rows,
        range(len(columns)),
        [(value,) for value in extra],
    )
    with pgcopy.copy_in(cursor, f"{table.name} ({names})", types) as copy:
        write = copy.write_row
        if extra:
            for row in rows:
                write((*row, *extra))
        else:
            for row in rows:
                write(row)


def fetch_rows(conn: Connection, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
    """Rows of a SELECT as plain tuples from the driver's cursor, in the caller's transaction.

    For bulk reads of our own tables: SQLAlchemy's result processing costs more
    than the database itself at 100,000 rows. Values are bound as literals, so
    pass only values we chose (states, ids), never text a user typed.
    """
    sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    cursor = conn.connection.cursor()
    try:
        cursor.execute(sql)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def each_row(conn: Connection, statement: sa.Select[Any]) -> Iterator[tuple[Any, ...]]:
    """fetch_rows, a batch at a time: for a reader that keeps less than every row
    (300,000 rows as tuples are ~50 MB the caller may never need at once).

    PostgreSQL: through a cursor on the server, so the driver holds one batch,
    not the whole result (at 300,000 pledges 18 MB of the allocation's peak and
    30 MB of the register export's). SQLite's cursor steps as it is fetched.
    """
    sql = str(statement.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    if conn.dialect.name == "sqlite":
        cursor = conn.connection.cursor()
    else:  # a name of its own: two such readers may be open on one connection
        cursor = conn.connection.cursor(name=f"each_row_{next(_SERVER_CURSORS)}")
    try:
        cursor.execute(sql)
        while batch := cursor.fetchmany(10_000):
            yield from batch
    finally:
        cursor.close()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector around bulk work.

    Allocating and issuing 100,000 pledges builds half a million small objects
    with no reference cycles; the collector's repeated passes over that growing
    heap cost about a third of the time and free nothing. Reference counting
    still frees everything as usual while the collector is paused.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
