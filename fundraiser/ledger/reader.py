"""Reading the ledger through its driver alone, without SQLAlchemy.

`fundraiser status` is run by scripts and monitors, and SQLAlchemy's import
alone costs more than the rest of the command (0.4 of its 0.5 s). The figures'
few aggregate queries are written once as portable SQL text (SQLite and
PostgreSQL) and run through a `Reader`: over a read-only connection of its own
(`open_reader`: the standard library's sqlite3, or psycopg), or over the driver
connection under a SQLAlchemy `Connection` (`Reader.over`), in that
connection's transaction, as the pledge service and the site build read them.

A reader of its own only reads a ledger at the schema this code writes
(`LATEST`): a newer one is refused with the ledger's own words, and an older
or missing one is the caller's to open as a `Ledger` (which makes or migrates
it). What is stored in the ledger's own forms is here too (`stamp`, the SQLite
file of a URL), so that reading needs nothing heavier.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fundraiser import redact
from fundraiser.errors import LedgerError

#: The schema version this fundraiser writes and reads (ledger/migrations.py takes
#: an older ledger forward to it, one step per version).
LATEST = 11


def stamp(moment: datetime) -> str:
    """A moment as stored everywhere in the ledger: ISO 8601 in UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utcnow() -> str:
    return stamp(datetime.now(UTC))


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite ledger URL, or None for another database."""
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else None


def too_new(version: int) -> LedgerError:
    """The refusal of a ledger a later fundraiser wrote, for the ledger and the reader alike."""
    return LedgerError(
        f"the ledger is at schema version {version}, newer than this fundraiser "
        f"understands ({LATEST}): upgrade fundraiser"
    )


class Reader:
    """SELECTs through a DB-API connection, written with `?` for each value.

    SQL names only our own tables and columns; values are bound, never
    formatted (the status groups' names are our own constants, written in).
    """

    def __init__(self, driver: Any, dialect: str) -> None:
        self.driver = driver
        self.is_sqlite = dialect == "sqlite"

    @classmethod
    def over(cls, conn: Any) -> Reader:
        """The driver connection under a SQLAlchemy Connection, in its transaction
        (begun here if it has not begun: every read of one call sees one moment)."""
        if not conn.in_transaction():
            conn.begin()
        return cls(conn.connection.dbapi_connection, conn.dialect.name)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Every row of a SELECT, as plain tuples."""
        if not self.is_sqlite:
            sql = sql.replace("?", "%s")
        cursor = self.driver.cursor()
        try:
            cursor.execute(sql, tuple(params))
            return [tuple(row) for row in cursor.fetchall()]
        finally:
            cursor.close()

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...]:
        """The one row of an aggregate SELECT."""
        return self.rows(sql, params)[0]


def as_reader(conn: Reader | Any) -> Reader:
    """A Reader as it is, or one over a SQLAlchemy Connection (Reader.over)."""
    return conn if isinstance(conn, Reader) else Reader.over(conn)


def _version(reader: Reader) -> int:
    if reader.is_sqlite:
        (found,) = reader.one(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'"
        )
    else:
        (found,) = reader.one("SELECT to_regclass('schema_version') IS NOT NULL")
    if not found:
        return 0
    (version,) = reader.one("SELECT max(version) FROM schema_version")
    return int(version or 0)


@contextmanager
def open_reader(url: str) -> Iterator[Reader | None]:
    """A read-only reader of the ledger at `url`, in one read transaction; None when
    the ledger is missing or older than LATEST (open it as a Ledger, which makes or
    migrates it). A ledger newer than this code is refused, as the Ledger refuses it."""
    path = sqlite_path(url)
    if path is not None:
        if not path.is_file():
            yield None
            return
        import sqlite3

        # Read-only: this connection cannot change the ledger, whatever it runs.
        driver: Any = sqlite3.connect(
            f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, timeout=30
        )
        driver.isolation_level = None
        driver.execute("BEGIN")  # one snapshot for every query (WAL: no writer waits)
    else:
        import psycopg

        plain = "postgresql://" + url.split("://", 1)[1]  # without SQLAlchemy's +psycopg
        try:
            driver = psycopg.connect(plain)
        except psycopg.OperationalError as exc:
            raise LedgerError(f"cannot open the ledger at {redact.url(plain)}: {exc}") from None
        driver.read_only = True
    try:
        reader = Reader(driver, "sqlite" if path is not None else "postgresql")
        version = _version(reader)
        if version > LATEST:
            raise too_new(version)
        yield reader if version == LATEST else None
    finally:
        driver.rollback() if path is None else driver.execute("ROLLBACK")
        driver.close()
