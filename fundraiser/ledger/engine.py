"""The open ledger: engine set-up, read and write transactions.

Every change of state happens inside `Ledger.write()`: one transaction that
also appends to the journal, serialised against other writers so the hash
chain stays linear.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fundraiser import redact
from fundraiser.errors import LedgerError
from fundraiser.ledger import bulk, journal, migrations, pgbulk
from fundraiser.ledger.reader import sqlite_path as sqlite_path
from fundraiser.ledger.reader import stamp as stamp
from fundraiser.ledger.reader import too_new
from fundraiser.ledger.reader import utcnow as utcnow
from fundraiser.ledger.tx import Carried, Tx

#: The lock that orders the journal's appends (PostgreSQL): the whole ledger's.
JOURNAL_LOCK = 7411
#: The namespace of the keyed locks (a tier's places, a person's pledges).
KEYED = 7412
# Every key of a write in one statement, in order (the call runs over the sorted rows).
KEYED_LOCKS = (
    "SELECT pg_advisory_xact_lock(%s, n) FROM "
    "(SELECT DISTINCT n FROM unnest(%s::int[]) AS n ORDER BY n) AS keys"
)


def key_number(key: str) -> int:
    """A lock key as PostgreSQL's 32-bit lock number; two keys that share one just wait
    on each other, never more than that."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big", signed=True)


def _lock_journal(conn: Connection) -> None:
    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({JOURNAL_LOCK})")


class Ledger:
    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.is_sqlite = engine.dialect.name == "sqlite"
        # The stamp of a write that names no time; a rehearsal sets its own.
        self.clock: Callable[[], str] = utcnow
        # The salt and the journal's head, from one of this process's writes to the next.
        self.carried = Carried()

    @contextmanager
    def read(self, *, bulk_work: bool = False) -> Iterator[Connection]:
        """A read-only snapshot; `bulk_work` pauses the cyclic collector (see bulk.gc_paused).

        A bulk read on SQLite runs with a small page cache: it reads a table
        once, in order, and a writer's 64 MB would only fill with pages read
        once (61 MB of the allocation plan's peak at 300,000 pledges).
        """
        with self.engine.connect() as conn, bulk.gc_paused() if bulk_work else nullcontext():
            conn.execution_options(fundraiser_read=True)
            with _small_cache(conn, bulk_work and self.is_sqlite):
                yield conn
                conn.rollback()

    @contextmanager
    def write(
        self,
        now: str | None = None,
        *,
        bulk_work: bool = False,
        small_cache: bool = False,
        locks: Collection[str] | None = None,
        whole: bool = True,
    ) -> Iterator[Tx]:
        """One transaction, serialised against other writers; commits on success.

        `bulk_work` pauses the cyclic collector for the transaction: an import or
        an issue builds hundreds of thousands of objects and no cycles.

        On PostgreSQL a write holds the whole ledger (one lock) from its start,
        unless it names what it reads and writes: `locks` (keys such as a tier or
        a person, taken first, in one order, so two writers never wait on each other
        in a circle) and `whole=False`. Then only the journal's append is
        serialised: its entries wait in the transaction and go in last, under
        the journal's lock, held until the commit (the hash chain stays linear).
        SQLite has one writer at a time whatever is asked.

        `small_cache` (SQLite): the write runs with a bulk read's page cache. For
        a big write that reads a table once in order and appends the rest (an
        issue): the writer's 64 MB would only fill with pages it is done with,
        55 MB of the issue's peak at 300,000 pledges, for no time saved.
        """
        tx: Tx | None = None
        with (
            self.engine.begin() as conn,
            bulk.gc_paused() if bulk_work else nullcontext(),
            _small_cache(conn, small_cache and self.is_sqlite),
        ):
            lock_journal = None
            if not self.is_sqlite:
                if locks:
                    numbers = sorted({key_number(key) for key in locks})
                    conn.exec_driver_sql(KEYED_LOCKS, (KEYED, numbers))
                if whole:
                    _lock_journal(conn)
                else:
                    lock_journal = _lock_journal
            # PostgreSQL: a big COPY of this write may check its foreign keys at the end.
            keys_at_end = bulk_work and whole and not self.is_sqlite
            if keys_at_end:
                pgbulk.allow(conn)
            try:
                tx = Tx(conn, now or self.clock(), lock_journal=lock_journal, carried=self.carried)
                try:
                    yield tx
                    tx.flush()
                finally:
                    tx.finish()
                if tx.unrecorded:  # a bug, not a user's mistake: roll the change back
                    raise LedgerError(
                        f"{tx.unrecorded} change(s) to the register's tables were not journalled"
                    )
                try:
                    # Before the commit: every key in force at it, made while this
                    # thread makes the texts put off to the end (Tx.texts_at_end).
                    tx.settle(partial(pgbulk.restore, conn) if keys_at_end else None)
                finally:
                    tx.finish()
            finally:
                if tx is not None:
                    tx.close_texts()  # a failed write's children stopped
                if keys_at_end:
                    pgbulk.forget(conn)
        if tx is not None:  # committed
            tx.carry()

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


#: SQLite page caches, in KiB (negative): a connection's own, and a bulk read's.
_WRITE_CACHE = -65536
_READ_CACHE = -8192


@contextmanager
def _small_cache(conn: Connection, small: bool) -> Iterator[None]:
    """SQLite: a bulk read's page cache for the block, the writer's own after it
    (the setting is the connection's, not the transaction's, and it is pooled)."""
    if small:
        conn.exec_driver_sql(f"PRAGMA cache_size = {_READ_CACHE}")
    try:
        yield
    finally:
        if small:
            conn.exec_driver_sql(f"PRAGMA cache_size = {_WRITE_CACHE}")


def _sqlite_setup(engine: Engine) -> None:
    @sa.event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA busy_timeout = 30000")
        # 64 MB of page cache: bulk imports touch several indexes at random.
        cursor.execute(f"PRAGMA cache_size = {_WRITE_CACHE}")
        # Write-ahead log, synced at checkpoints rather than at every commit: a
        # commit is an append to the log, and readers never wait for a writer.
        # A power cut can lose the last commits (never corrupt the file); what
        # bounds that loss is in docs/architecture.md ("Durability of SQLite").
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        # IMMEDIATE takes the write lock up front: two writers queue, never deadlock.
        # Readers take no lock until they read.
        read = conn.get_execution_options().get("fundraiser_read", False)
        # At the driver: every webhook batch begins a write, and SQLAlchemy's
        # execution of a statement costs more than SQLite's BEGIN itself.
        conn.connection.driver_connection.execute("BEGIN" if read else "BEGIN IMMEDIATE")  # type: ignore[union-attr]


def _create_private(path: Path) -> None:
    """A new, empty ledger file readable by its owner only (it holds the register).

    SQLite gives its journal and WAL files the database file's permissions.
    """
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    except FileExistsError:
        pass  # another process made it a moment ago
    except OSError as exc:
        raise LedgerError(f"cannot make the ledger {path}: {exc.strerror}") from None


def open_ledger(url: str, *, create: bool = True) -> Ledger:
    """Open (and create or migrate forward) the ledger at a SQLAlchemy URL."""
    path = sqlite_path(url)
    if path is not None:
        if not path.exists():
            if not create:
                raise LedgerError(f"no ledger at {path}: check the path, or pass --db")
            _create_private(path)
    elif url.startswith("postgres://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgres://")
    elif url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    try:
        # A ping before each use finds a server connection dropped (a restart): a
        # SQLite file has none to drop, and a webhook's write would pay it.
        engine = sa.create_engine(url, pool_pre_ping=path is None)
    except (sa.exc.ArgumentError, ImportError, ValueError) as exc:
        raise LedgerError(
            f"cannot use database URL {redact.url(url)}: {exc}. Use sqlite:///PATH or "
            "postgresql://user@host/db"
        ) from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    ledger = Ledger(engine, url)
    try:
        _migrate(ledger)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise LedgerError(f"cannot open the ledger at {redact.url(url)}: {exc.orig}") from None
    return ledger


def _migrate(ledger: Ledger) -> None:
    """Create a new ledger at the latest version, or bring an older one forward."""
    with ledger.read() as conn:
        version = migrations.current_version(conn)
    if version == migrations.LATEST:
        return
    if version > migrations.LATEST:
        raise too_new(version)
    with ledger.write() as tx:
        migrations.upgrade(tx)
