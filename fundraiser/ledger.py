"""The ledger: one database (a SQLite file by default, PostgreSQL by URL).

Tables are SQLAlchemy Core. Every change of state happens inside `Ledger.write()`,
one transaction that also appends to the journal: an append-only list of every
change, each entry hashing the one before it (SHA-256), so a copy of the ledger
can be checked against a published hash.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from fundraiser.driversql import bulk_insert
from fundraiser.errors import LedgerError

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Text, nullable=False),
)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False, unique=True),
)

pledges = sa.Table(
    "pledges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("person_key", sa.Text, nullable=False, index=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text, nullable=False),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("display_name", sa.Text),
    sa.Column("round", sa.Text, nullable=False),
    sa.Column("tier", sa.Text),
    sa.Column("shares", sa.Integer),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, index=True),
    sa.Column("status_reason", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("reference", sa.Text),
    sa.Column("paid_amount", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("paid_at", sa.Text),
    sa.Column("allotted_at", sa.Text),
    sa.Column("request_key", sa.Text, unique=True),
    sa.Column("stripe_customer", sa.Text),
    sa.Column("stripe_intent", sa.Text, unique=True),
    sa.Column("stripe_payment_method", sa.Text),
    sa.Column("livemode", sa.Boolean),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stripe_charge", sa.Text),
    sa.Column("failure_code", sa.Text),
    sa.Column("fix_until", sa.Text),
    sa.Index("ix_pledges_stripe_charge", "stripe_charge", unique=True),
    sa.CheckConstraint("amount > 0", name="pledge_amount_positive"),
    sa.CheckConstraint("refunded_amount <= paid_amount", name="pledge_refund_within_paid"),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("person_key", sa.Text, nullable=False, unique=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("email", sa.Text),
    sa.Column("address", sa.Text, nullable=False),
    sa.Column("admitted_on", sa.Text, nullable=False),
    sa.Column("ceased_on", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
)

register_entries = sa.Table(
    "register_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "member_number", sa.Integer, sa.ForeignKey("members.number"), nullable=False, index=True
    ),
    sa.Column("kind", sa.Text, nullable=False),  # issue, withdraw, cancel
    sa.Column("shares", sa.Integer, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id")),
    sa.Column("certificate_number", sa.Integer, unique=True),
    sa.Column("entry_date", sa.Text, nullable=False),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.CheckConstraint("shares > 0", name="entry_shares_positive"),
)

# Which pledge's money paid for which issue entry (one entry per member per issue).
allotments = sa.Table(
    "allotments",
    metadata,
    sa.Column("entry_id", sa.Integer, sa.ForeignKey("register_entries.id"), primary_key=True),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), primary_key=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
)

remainders = sa.Table(
    "remainders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), nullable=False, index=True),
    sa.Column("person_key", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # due, refunded
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("refunded_at", sa.Text),
    sa.Column("refund_reference", sa.Text),
    sa.CheckConstraint("amount > 0", name="remainder_amount_positive"),
)

# Raw Stripe events, stored once by their id (schema version 2).
stripe_events = sa.Table(
    "stripe_events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Text),
)


# Mail waiting to be sent, queued in the same transaction as its cause (v3).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # welcome, pledge_received, payment_failed, ...
    sa.Column("dedupe_key", sa.Text, nullable=False, unique=True),  # one message per cause
    sa.Column("to_email", sa.Text, nullable=False),
    sa.Column("to_name", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),  # JSON for the template
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id")),
    sa.Column("member_number", sa.Integer, sa.ForeignKey("members.number")),
    sa.Column("status", sa.Text, nullable=False),  # queued, sending, sent, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.Text),
    sa.Column("last_error", sa.Text),
    sa.Column("sent_at", sa.Text),
    sa.Column("message_id", sa.Text),
)

# Small named values that commands resume from, e.g. the Stripe sync cursor (v3).
state = sa.Table(
    "state",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
)

# Shares issued from a pledge that was later refunded or disputed (v3).
register_flags = sa.Table(
    "register_flags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entry_id", sa.Integer, sa.ForeignKey("register_entries.id"), nullable=False),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("resolved_at", sa.Text),
    sa.UniqueConstraint("entry_id", "pledge_id", "reason", name="flag_once"),
)

# Payment details on pledges added in v3.
V3_PLEDGE_COLUMNS = (
    sa.Column("stripe_charge", sa.Text, unique=True),
    sa.Column("failure_code", sa.Text),
    sa.Column("fix_until", sa.Text),
)


def _v2_stripe_events(conn: Connection) -> None:
    stripe_events.create(conn)


def _v3_outbox_state_flags(conn: Connection) -> None:
    for table in (outbox, state, register_flags):
        table.create(conn)
    for column in V3_PLEDGE_COLUMNS:
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE pledges ADD COLUMN {column.name} {kind}"))
    conn.execute(sa.text("CREATE UNIQUE INDEX ix_pledges_stripe_charge ON pledges (stripe_charge)"))


# Forward migrations: MIGRATIONS[n] takes a ledger at version n to n + 1.
# A new ledger is created at LATEST directly from `metadata`.
MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v2_stripe_events,
    2: _v3_outbox_state_flags,
}
LATEST = 3

GENESIS = "0" * 64


def stamp(moment: datetime) -> str:
    """A moment as stored everywhere in the ledger: ISO 8601 in UTC, to the microsecond."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def utcnow() -> str:
    return stamp(datetime.now(UTC))


# One encoder, built once: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(data: Any) -> str:
    """JSON that hashes the same on every machine and database."""
    return _CANONICAL.encode(data)


def entry_hash(seq: int, at: str, action: str, subject: str, data: str, prev_hash: str) -> str:
    material = "\x1f".join((str(seq), at, action, subject, data, prev_hash))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


class Tx:
    """One open write transaction; `record` appends to the journal."""

    def __init__(self, conn: Connection, now: str) -> None:
        self.conn = conn
        self.now = now
        self._head: tuple[int, str] | None = None

    def execute(self, statement: Any, *args: Any) -> sa.CursorResult[Any]:
        return self.conn.execute(statement, *args)

    def _load_head(self) -> tuple[int, str]:
        if self._head is None:
            row = self.conn.execute(
                sa.select(journal.c.seq, journal.c.hash).order_by(journal.c.seq.desc()).limit(1)
            ).first()
            self._head = (row.seq, row.hash) if row else (0, GENESIS)
        return self._head

    def record(self, action: str, subject: str, data: dict[str, Any]) -> None:
        self.record_many([(action, subject, data)])

    def record_encoded(self, action: str, subject: str, text: str) -> None:
        """Append one entry whose data is canonical(data) already (encoded off the database)."""
        self._append([(action, subject, text)])

    def record_many(self, entries: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Append entries to the hash chain, in order, in this transaction."""
        self._append([(action, subject, canonical(data)) for action, subject, data in entries])

    def _append(self, entries: Sequence[tuple[str, str, str]]) -> None:
        seq, prev = self._load_head()
        rows = []
        for action, subject, text in entries:
            seq += 1
            digest = entry_hash(seq, self.now, action, subject, text, prev)
            rows.append(
                {
                    "seq": seq,
                    "at": self.now,
                    "action": action,
                    "subject": subject,
                    "data": text,
                    "prev_hash": prev,
                    "hash": digest,
                }
            )
            prev = digest
        bulk_insert(self.conn, journal, rows)
        self._head = (seq, prev)


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


class Ledger:
    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = url
        self.is_sqlite = engine.dialect.name == "sqlite"
        # The stamp of a write that names no time; a rehearsal sets its own.
        self.clock: Callable[[], str] = utcnow

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            conn.execution_options(fundraiser_read=True)
            yield conn
            conn.rollback()

    @contextmanager
    def write(self, now: str | None = None) -> Iterator[Tx]:
        """One transaction, serialised against other writers; commits on success."""
        with self.engine.begin() as conn:
            if not self.is_sqlite:
                # One writer at a time keeps the hash chain linear.
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(7411)"))
            yield Tx(conn, now or self.clock())

    def version(self) -> int:
        with self.read() as conn:
            return _current_version(conn)

    def verify(self) -> ChainReport:
        """Recompute the hash chain; report the first entry that does not match."""
        prev, count, seq_expected = GENESIS, 0, 1
        with self.read() as conn:
            rows = conn.execution_options(yield_per=5000).execute(
                sa.select(journal).order_by(journal.c.seq)
            )
            for row in rows:
                count += 1
                if row.seq != seq_expected:
                    return ChainReport(
                        count, prev, row.seq, f"entry {seq_expected} is missing (next is {row.seq})"
                    )
                if row.prev_hash != prev:
                    return ChainReport(
                        count, prev, row.seq, "its previous-hash does not match the entry before it"
                    )
                digest = entry_hash(
                    row.seq, row.at, row.action, row.subject, row.data, row.prev_hash
                )
                if digest != row.hash:
                    return ChainReport(
                        count,
                        prev,
                        row.seq,
                        "its contents do not match its hash (edited after writing)",
                    )
                prev, seq_expected = digest, seq_expected + 1
        return ChainReport(count, prev)

    def head(self) -> tuple[int, str]:
        """The journal's last sequence number and hash (0 and the genesis hash when empty)."""
        with self.read() as conn:
            row = conn.execute(
                sa.select(journal.c.seq, journal.c.hash).order_by(journal.c.seq.desc()).limit(1)
            ).first()
        return (row.seq, row.hash) if row else (0, GENESIS)

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


def _current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar()
    return int(value or 0)


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
            f"cannot use database URL {_redact(url)}: {exc}. Use sqlite:///PATH or "
            "postgresql://user@host/db"
        ) from None
    if engine.dialect.name == "sqlite":
        _sqlite_setup(engine)
    ledger = Ledger(engine, url)
    try:
        _migrate(ledger)
    except sa.exc.OperationalError as exc:
        engine.dispose()
        raise LedgerError(f"cannot open the ledger at {_redact(url)}: {exc.orig}") from None
    return ledger


def _migrate(ledger: Ledger) -> None:
    with ledger.read() as conn:
        version = _current_version(conn)
    if version == LATEST:
        return
    if version > LATEST:
        raise LedgerError(
            f"the ledger is at schema version {version}, newer than this fundraiser "
            f"understands ({LATEST}): upgrade fundraiser"
        )
    with ledger.write() as tx:
        version = _current_version(tx.conn)  # another process may have migrated meanwhile
        if version == 0:
            metadata.create_all(tx.conn)
            tx.execute(schema_version.insert(), [{"version": LATEST, "applied_at": tx.now}])
            tx.record("ledger.create", "schema", {"version": LATEST})
            return
        while version < LATEST:
            MIGRATIONS[version](tx.conn)
            version += 1
            tx.execute(schema_version.insert(), [{"version": version, "applied_at": tx.now}])
            tx.record("ledger.migrate", "schema", {"version": version})


def _redact(url: str) -> str:
    """A database URL without its password, for messages."""
    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return "(unparseable URL)"
