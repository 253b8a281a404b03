"""The journal: an append-only list of every change, each entry hashing the one before.

A copy of the ledger can be checked against a published head hash: change,
drop or insert an entry and every hash after it stops matching. The journal
holds ids, amounts and states, never a person's details.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.errors import LedgerError
from fundraiser.ledger import bulk, schema

GENESIS = "0" * 64

# One encoder, built once: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(data: Any) -> str:
    """JSON that hashes the same on every machine and database."""
    return _CANONICAL.encode(data)


def entry_hash(seq: int, at: str, action: str, subject: str, data: str, prev_hash: str) -> str:
    material = "\x1f".join((str(seq), at, action, subject, data, prev_hash))
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def head(conn: Connection) -> tuple[int, str]:
    """The journal's last sequence number and hash (0 and the genesis hash when empty)."""
    row = conn.execute(
        sa.select(schema.journal.c.seq, schema.journal.c.hash)
        .order_by(schema.journal.c.seq.desc())
        .limit(1)
    ).first()
    return (row.seq, row.hash) if row else (0, GENESIS)


def append(
    conn: Connection, after: tuple[int, str], at: str, entries: Sequence[tuple[str, str, str]]
) -> tuple[int, str]:
    """Append (action, subject, canonical data) entries after `after`; the new head."""
    seq, prev = after
    rows = []
    for action, subject, text in entries:
        seq += 1
        digest = entry_hash(seq, at, action, subject, text, prev)
        rows.append(
            {
                "seq": seq,
                "at": at,
                "action": action,
                "subject": subject,
                "data": text,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    bulk.insert_rows(conn, schema.journal, rows)
    return seq, prev


#: The most entries `append_on` takes in one statement: 7 values each, within the 999
#: an old SQLite binds (a batch of 32 webhooks makes about 96); more are appended as usual.
APPEND_ON_MOST = 140
_COLUMNS = "seq, at, action, subject, data, prev_hash, hash"
_PICKED = ", ".join(f"v.column{n}" for n in range(1, 8))
# The seq's value typed, for PostgreSQL's VALUES (SQLite reads it as it is).
_ROW = "(CAST(? AS INTEGER), ?, ?, ?, ?, ?, ?)"


def append_on(
    conn: Connection, after: tuple[int, str], at: str, entries: Sequence[tuple[str, str, str]]
) -> tuple[int, str] | None:
    """Append entries after `after` if it is still the journal's head; the new head,
    or None (nothing appended) when the head has moved: another writer appended, or
    the write that left it there was rolled back.

    A head remembered from an earlier write is checked in the INSERT itself (the
    last entry's hash, unique to its place in the chain), not read in a statement
    of its own: a webhook batch's write saves a query, and a wrong guess costs
    the caller one read of the head and an ordinary append.
    """
    if not entries or len(entries) > APPEND_ON_MOST or after[0] <= 0:
        return None
    seq, prev = after
    params: list[Any] = []
    for action, subject, text in entries:
        seq += 1
        digest = entry_hash(seq, at, action, subject, text, prev)
        params += (seq, at, action, subject, text, prev, digest)
        prev = digest
    params.append(after[1])
    sql = (
        f"INSERT INTO journal ({_COLUMNS}) SELECT {_PICKED} FROM "
        f"(VALUES {', '.join([_ROW] * len(entries))}) AS v "
        "WHERE (SELECT hash FROM journal ORDER BY seq DESC LIMIT 1) = ?"
    )
    done = bulk.run(conn, sql, params)
    if done == 0:
        return None
    if done != len(entries):  # all or none: the condition holds for every row or none
        raise LedgerError(f"the journal took {done} of {len(entries)} entries")
    return seq, prev


#: An entry this long (a bulk change's part) is worth compressing with lz4 on PostgreSQL.
BIG_ENTRY = 1 << 16

# PostgreSQL compresses a long text with pglz by default: ~100 ms for a 2 MB
# entry of fingerprints and ids, which barely shrink. lz4 is several times
# faster both ways. Set for this transaction only, and only where the server
# was built with it; what is stored is the same text.
_LZ4 = (
    "SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
    "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"
)


def prefer_lz4(conn: Connection) -> None:
    """Long journal texts compressed with lz4 for the rest of this transaction (PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        bulk.first(conn, _LZ4)


@dataclass(frozen=True)
class ChainReport:
    entries: int
    head: str
    broken_at: int | None = None
    reason: str = ""

    @property
    def ok(self) -> bool:
        return self.broken_at is None


#: Entries the chain's check holds at a time: one entry of a big import is megabytes
#: of text, so 5,000 rows at a time held the whole journal of 300,000 pledges (96 MB).
_CHAIN_BATCH = 16


class ChainCheck:
    """The hash chain recomputed entry by entry, in order, as the entries are read:
    by verify_chain, or by verify's replay, which reads every entry anyway (one read
    of the journal, not two). The first entry that does not match is kept."""

    #: The columns `add` takes, in its order: the journal's own, as appended.
    COLUMNS = _COLUMNS

    def __init__(self) -> None:
        self.prev = GENESIS
        self.count = 0
        self.broken: ChainReport | None = None

    def add(
        self, seq: int, at: str, action: str, subject: str, data: str, prev_hash: str, stored: str
    ) -> bool:
        """Check the next entry; False once the chain is broken (later ones are not checked)."""
        if self.broken is not None:
            return False
        self.count += 1
        if seq != self.count:
            reason = f"entry {self.count} is missing (next is {seq})"
        elif prev_hash != self.prev:
            reason = "its previous-hash does not match the entry before it"
        else:
            digest = entry_hash(seq, at, action, subject, data, prev_hash)
            if digest == stored:
                self.prev = digest
                return True
            reason = "its contents do not match its hash (edited after writing)"
        self.broken = ChainReport(self.count, self.prev, seq, reason)
        return False

    def report(self) -> ChainReport:
        return self.broken or ChainReport(self.count, self.prev)


def verify_chain(conn: Connection) -> ChainReport:
    """Recompute the hash chain; report the first entry that does not match.

    Read through the driver, a few entries at a time (a server-side cursor on
    PostgreSQL: a client one holds the whole result), not through SQLAlchemy's rows.
    """
    check = ChainCheck()
    sqlite = conn.dialect.name == "sqlite"
    cursor = conn.connection.cursor() if sqlite else conn.connection.cursor(name="chain")
    try:
        cursor.execute(f"SELECT {ChainCheck.COLUMNS} FROM journal ORDER BY seq")
        while batch := cursor.fetchmany(_CHAIN_BATCH):
            for row in batch:
                if not check.add(*row):
                    return check.report()
    finally:
        cursor.close()
    return check.report()
