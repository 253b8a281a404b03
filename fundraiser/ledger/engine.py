"""The open ledger: engine set-up, read and write transactions.

Every change of state happens inside `Ledger.write()`: one transaction that
also appends to the journal, serialised against other writers so the hash
chain stays linear.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fundraiser import redact
from fundraiser.errors import LedgerError
from fundraiser.ledger import bulk, journal, migrations

P = ParamSpec("P")
R = TypeVar("R")


def stamp(moment: datetime) -> str:
    """A moment as stored everywhere in the ledger: ISO 8601 in UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utcnow() -> str:
    return stamp(datetime.now(UTC))


class Tx:
    """One open write transaction; `record` appends to the journal."""

    def __init__(self, conn: Connection, now: str) -> None:
        self.conn = conn
        self.now = now
        self._head: tuple[int, str] | None = None
        self._second: ThreadPoolExecutor | None = None

    def execute(self, statement: Any, *args: Any) -> sa.CursorResult[Any]:
        return self.conn.execute(statement, *args)

    # -- the journal ---------------------------------------------------------
    def record(self, action: str, subject: str, data: dict[str, Any]) -> None:
        self.record_many([(action, subject, data)])

    def record_encoded(self, action: str, subject: str, text: str) -> None:
        """Append one entry whose data is canonical(data) already (encoded off the database)."""
        self._append([(action, subject, text)])

    def record_many(self, entries: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Append entries to the hash chain, in order, in this transaction."""
        self._append(
            [(action, subject, journal.canonical(data)) for action, subject, data in entries]
        )

    def _append(self, entries: Sequence[tuple[str, str, str]]) -> None:
        if self._head is None:
            self._head = journal.head(self.conn)
        self._head = journal.append(self.conn, self._head, self.now, entries)

    # -- bulk writes -----------------------------------------------------------
    def insert_rows(
        self,
        table: sa.Table,
        rows: Sequence[Any],
        columns: Sequence[str] | None = None,
        constants: dict[str, Any] | None = None,
    ) -> None:
        """Insert many rows (dicts, or tuples in `columns` order) through the driver."""
        bulk.insert_rows(self.conn, table, rows, columns, constants)

    def fetch_rows(self, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
        """A big SELECT of our own values, as plain tuples (see bulk.fetch_rows)."""
        return bulk.fetch_rows(self.conn, statement)

    def alongside(self, work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run one database step on a second thread while Python works on this one.

        SQLite and psycopg let go of the GIL while a statement runs, so on two
        cores a bulk UPDATE runs while Python computes. The transaction's
        connection is used by one thread at a time: between submitting and
        taking the result the caller must not touch the database. The write
        waits for the step before it commits or rolls back.
        """
        if self._second is None:
            self._second = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-tx")
        return self._second.submit(work, *args, **kwargs)

    def _finish(self) -> None:
        if self._second is not None:
            self._second.shutdown(wait=True)
            self._second = None


class Ledger:
    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.is_sqlite = engine.dialect.name == "sqlite"
        # The stamp of a write that names no time; a rehearsal sets its own.
        self.clock: Callable[[], str] = utcnow

    @contextmanager
    def read(self, *, bulk_work: bool = False) -> Iterator[Connection]:
        """A read-only snapshot; `bulk_work` pauses the cyclic collector (see bulk.gc_paused)."""
        with self.engine.connect() as conn, bulk.gc_paused() if bulk_work else nullcontext():
            conn.execution_options(fundraiser_read=True)
            yield conn
            conn.rollback()

    @contextmanager
    def write(self, now: str | None = None, *, bulk_work: bool = False) -> Iterator[Tx]:
        """One transaction, serialised against other writers; commits on success.

        `bulk_work` pauses the cyclic collector for the transaction: an import or
        an issue builds hundreds of thousands of objects and no cycles.
        """
        with self.engine.begin() as conn, bulk.gc_paused() if bulk_work else nullcontext():
            if not self.is_sqlite:
                # One writer at a time keeps the hash chain linear.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7411)"))
            tx = Tx(conn, now or self.clock())
            try:
                yield tx
            finally:
                tx._finish()

    def version(self) -> int:
        with self.read() as conn:
            return migrations.current_version(conn)

    def verify(self) -> journal.ChainReport:
        """Recompute the journal's hash chain; report the first entry that does not match."""
        with self.read() as conn:
            return journal.verify_chain(conn)

    def head(self) -> tuple[int, str]:
        """The journal's last sequence number and hash (0 and the genesis hash when empty)."""
        with self.read() as conn:
            return journal.head(conn)

    def dispose(self) -> None:
        self.engine.dispose()


def _sqlite_setup(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        # 64 MB of page cache: bulk imports touch several indexes at random.
        cursor.execute("PRAGMA cache_size = -65536")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue, never deadlock.
        # Readers take no lock until they read.
        read = conn.get_execution_options().get("fundraiser_read", False)
        conn.exec_driver_sql("BEGIN" if read else "BEGIN IMMEDIATE")


def open_ledger(url: str, *, create: bool = True) -> Ledger:
    """Open (and create or migrate forward) the ledger at a SQLAlchemy URL."""
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        if not path.exists():
            if not create:
                raise LedgerError(f"no ledger at {path}: record a pledge first, or pass --db")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"cannot make the ledger folder {path.parent}: {exc.strerror}"
                ) from None
    elif url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        engine = sa.create_engine(url, pool_pre_ping=True)
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise LedgerError(
            f"cannot use database URL {redact.url(url)}: {exc}. Use sqlite:///PATH or "
            "postgresql://user@host/db"
        ) from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    ledger = Ledger(engine, url)
    try:
        migrations.migrate(ledger)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise LedgerError(f"cannot open the ledger at {redact.url(url)}: {exc.orig}") from None
    return ledger
