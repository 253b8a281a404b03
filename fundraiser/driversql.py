"""Single statements through the database driver, for the webhook's hot path.

SQLAlchemy costs more per statement than SQLite itself: about 60 µs for a
one-row SELECT through `exec_driver_sql`, against 3 µs at the driver. The few
statements every webhook delivery runs go straight to the driver, in the
caller's transaction, like `ledger.bulk_insert` and `ledger.fetch_all` do for
bulk work. SQL is written with ? marks (rewritten to %s for PostgreSQL) and
only our own table and column names; values are always bound, never formatted.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

from sqlalchemy.engine import Connection

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


def first(conn: Connection, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
    """The first row of a SELECT as a plain tuple, or None."""
    cursor = _cursor(conn, sql, params)
    try:
        found = cursor.fetchone()
        return None if found is None else tuple(found)
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
