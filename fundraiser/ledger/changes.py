"""Changes to the tables the journal proves, made and replayed by the same code.

Tables marked `info={"replayed": True}` in schema.py change only through
`Tx.insert`, `Tx.update` and `Tx.delete`. Each call makes a `Change`, applies
it to the live tables with `apply`, and keeps its journal form; the next
`Tx.record` carries the kept changes in its journal entry. `fundraiser ledger
verify` applies the same changes, with the same `apply`, to empty tables and
compares the result with the live ones (ledger/replay.py).

Personal values (columns marked `info={"personal": True}`: names, emails,
addresses, references a person typed, Stripe's ids for the person) never
enter the journal. It carries their fingerprint instead: a keyed BLAKE2b hash
with this ledger's own salt, kept in the state table and never journalled.
Replay writes the fingerprint where the value was, so a live table is
compared with its replay column by column, a personal column by fingerprint.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.errors import LedgerError
from fundraiser.ledger import bulk, pgbulk, schema

#: Where a ledger keeps the salt of its fingerprints (never in the journal).
SALT_KEY = "journal.salt"
#: The journal entry a replay starts from in a ledger older than its changes.
SNAPSHOT = "ledger.snapshot"
#: Bound values per IN list, well under every database's limit.
_IN_CHUNK = 5_000


def replayed_tables() -> list[sa.Table]:
    """The tables the journal proves, in the order their rows may depend on each other."""
    return [t for t in schema.metadata.sorted_tables if t.info.get("replayed")]


@functools.cache  # the schema is fixed: asked once per change on the hot paths
def personal_columns(table: sa.Table) -> frozenset[str]:
    return frozenset(c.name for c in table.columns if c.info.get("personal"))


@functools.cache
def _columns(table: sa.Table) -> tuple[frozenset[str], frozenset[str]]:
    """A table's columns, and those outside the journal (operational, sent_only)."""
    unjournalled = frozenset(
        c.name for c in table.columns if c.info.get("operational") or c.info.get("sent_only")
    )
    return frozenset(table.columns.keys()), unjournalled


#: Fingerprints a write remembers at most (about 40 MB).
_REMEMBER = 250_000


class Fingerprinter:
    """Fingerprints of personal values under one ledger's salt; None stays None.

    A keyed BLAKE2b (a MAC: without the salt no one can test a guessed name
    against the journal), 96 bits, as text "fp:<hex>". Values are remembered
    for the write, up to a bound: an issue names a member's email as their key,
    their address and their welcome mail's, and their key on each remainder.
    """

    def __init__(self, salt: str, *, remember: int = _REMEMBER) -> None:
        self.key = bytes.fromhex(salt)
        self.known: dict[str, str] = {}
        self.remember = remember
        # Copying a keyed state is cheaper than keying a new one for each value.
        self.keyed_copy = hashlib.blake2b(key=self.key, digest_size=12).copy

    def __call__(self, value: Any) -> Any:
        if value is None:
            return None
        text = value if type(value) is str else str(value)
        found = self.known.get(text)
        if found is None:
            state = self.keyed_copy()
            state.update(text.encode())
            found = self.known[text] = "fp:" + state.hexdigest()
        return found

    def forgetful(self) -> Fingerprinter:
        """The same fingerprints, remembering none of the many: for values met once."""
        return Fingerprinter(self.key.hex(), remember=0)

    def many(self, values: Iterable[Any]) -> list[Any]:
        copy, known = self.keyed_copy, self.known
        room = self.remember - len(known)
        out: list[Any] = []
        append = out.append
        for value in values:
            if value is None:
                append(None)
                continue
            text = value if type(value) is str else str(value)
            found = known.get(text)
            if found is None:
                state = copy()
                state.update(text.encode())
                found = "fp:" + state.hexdigest()
                if room > 0:  # bounded: a 100,000-row import is mostly distinct values
                    known[text] = found
                    room -= 1
            append(found)
        return out


def make_fingerprint(salt: str) -> Fingerprinter:
    return Fingerprinter(salt)


@dataclass(frozen=True)
class Copy:
    """Values an insert takes from a row of another proved table, named by its key.

    A member's name and email are those of the pledge they came from, and a
    welcome mail's address is the member's: the journal fingerprinted them once,
    where they entered. A copy carries the source row's key instead of a second
    fingerprint of the same value; replay makes the same copy from the replayed
    source, so the comparison still proves every value. About half of an
    issue's journal was such repeated fingerprints.
    """

    source: str  # a table the journal proves, keyed by one column
    by: str  # the insert's column holding the source row's key (a column, or for the lookup only)
    columns: dict[str, str]  # the inserted column -> the source's column

    def encode(self) -> dict[str, Any]:
        return {"f": self.source, "b": self.by, "s": dict(self.columns)}

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Copy:
        return cls(str(data["f"]), str(data["b"]), dict(data["s"]))


@dataclass
class Change:
    """One INSERT, UPDATE or DELETE of a replayed table, in plain values.

    An insert carries its rows (tuples in `columns` order) and the
    values every row shares (`constants`). An update or delete names its rows
    by `where`: a value (equality, None for IS NULL) or a list (IN) per
    column; an update sets `values`. An update of many rows with their own
    values (`update_rows`) carries, per row, the values of the `columns` it sets
    and then of the `keys` that name (and guard) it: a key may be set too.
    Nothing else: no expressions, no clock, so applying a change to equal
    tables gives equal tables.
    """

    table: str
    kind: str  # "insert", "update", "update_rows", "delete"
    columns: list[str] = field(default_factory=list)
    rows: Sequence[Sequence[Any]] = field(default_factory=list)  # tuples: insert, update_rows
    keys: list[str] = field(default_factory=list)  # update_rows: the columns naming each row
    constants: dict[str, Any] = field(default_factory=dict)
    where: dict[str, Any] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    copy: Copy | None = None  # insert: columns whose values come from another table's row

    def encode(self, fingerprint: Fingerprinter) -> dict[str, Any]:
        """The journal's form: personal values replaced by their fingerprints."""
        personal = personal_columns(schema.metadata.tables[self.table])
        if self.kind == "insert":
            encoded = {
                "t": self.table,
                "i": {  # column by column: long flat lists encode fastest
                    column: (fingerprint.many(values) if column in personal else list(values))
                    for column, values in zip(
                        self.columns, _transposed(self.rows, len(self.columns)), strict=True
                    )
                },
                "k": {
                    column: fingerprint(v) if column in personal else v
                    for column, v in self.constants.items()
                },
            }
            if self.copy is not None:
                encoded["c"] = self.copy.encode()
            return encoded
        if self.kind == "update_rows":
            width = len(self.columns)
            values = _transposed(self.rows, width + len(self.keys))
            sets = {
                column: (fingerprint.many(vs) if column in personal else list(vs))
                for column, vs in zip(self.columns, values[:width], strict=True)
            }
            keys = {key: list(vs) for key, vs in zip(self.keys, values[width:], strict=True)}
            return {"t": self.table, "r": {"s": sets, "w": keys}}
        data: dict[str, Any] = {"t": self.table, "w": self.where}
        if self.kind == "update":
            data["s"] = {
                column: fingerprint(v) if column in personal else v
                for column, v in self.values.items()
            }
        else:
            data["d"] = 1
        return data

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Change:
        table = str(data["t"])
        if "i" in data:
            inserted: dict[str, list[Any]] = data["i"]
            return cls(
                table,
                "insert",
                columns=list(inserted),
                rows=list(zip(*inserted.values(), strict=True)),
                constants=dict(data.get("k") or {}),
                copy=Copy.decode(data["c"]) if "c" in data else None,
            )
        if "r" in data:
            sets: dict[str, list[Any]] = data["r"]["s"]
            keys: dict[str, list[Any]] = data["r"]["w"]
            return cls(
                table,
                "update_rows",
                columns=list(sets),
                rows=list(zip(*sets.values(), *keys.values(), strict=True)),
                keys=list(keys),
            )
        if "s" in data:
            return cls(table, "update", where=dict(data["w"]), values=dict(data["s"]))
        return cls(table, "delete", where=dict(data["w"]))

    @property
    def count(self) -> int:
        return len(self.rows)


def _check(table: sa.Table, columns: Sequence[str], where: Mapping[str, Any]) -> None:
    known, outside = _columns(table)
    unknown = [c for c in [*columns, *where] if c not in known]
    if unknown:
        raise ValueError(f"not columns of {table.name}: {unknown}")
    personal = personal_columns(table).intersection(where)
    if personal:
        # A fingerprint in the journal cannot find the row again on replay.
        raise ValueError(f"a change of {table.name} may not pick rows by {sorted(personal)}")
    unjournalled = outside.intersection(where)
    if unjournalled:
        # Those columns change outside the journal: the replay cannot pick rows by them.
        raise ValueError(f"a change of {table.name} may not pick rows by {sorted(unjournalled)}")


def _where_sql(where: Mapping[str, Any]) -> tuple[str, list[Any], list[Any] | None]:
    """The WHERE clause, its bound values, and the values of its one IN list (last)."""
    conditions: list[str] = []
    params: list[Any] = []
    listed: tuple[str, list[Any]] | None = None
    for column, value in where.items():
        if value is None:
            conditions.append(f"{column} IS NULL")
        elif isinstance(value, list):
            if listed is not None:
                raise ValueError("a change may name its rows by one list only")
            listed = (column, value)
        else:
            conditions.append(f"{column} = ?")
            params.append(value)
    if listed is not None:
        conditions.append(f"{listed[0]} IN ({{in}})")
    return " AND ".join(conditions) or "1 = 1", params, None if listed is None else listed[1]


def apply(conn: Connection, change: Change) -> int:
    """Make the change in these tables; the number of rows it touched.

    The one code path for the live tables (Tx.insert/update/delete) and for
    the replay of the journal into empty ones.
    """
    table = schema.metadata.tables[change.table]
    if change.kind == "insert":
        if change.copy is not None:
            return _insert_copying(conn, table, change, change.copy)
        _check(table, [*change.columns, *change.constants], {})
        bulk.insert_rows(conn, table, change.rows, change.columns, change.constants or None)
        return len(change.rows)
    if change.kind == "update_rows":
        return _update_rows(conn, table, change)
    _check(table, list(change.values), change.where)
    where, params, listed = _where_sql(change.where)
    if change.kind == "update":
        if not change.values:
            return 0
        assignments = ", ".join(f"{column} = ?" for column in change.values)
        sql = f"UPDATE {table.name} SET {assignments} WHERE {where}"
        params = [*change.values.values(), *params]
    else:
        sql = f"DELETE FROM {table.name} WHERE {where}"
    if listed is None:
        return bulk.run(conn, sql, params)
    if conn.dialect.name == "postgresql":  # the list as one array: one statement
        done = pgbulk.run_listed(conn, sql, params, listed)
        if done is not None:
            return done
    touched = 0
    for start in range(0, len(listed), _IN_CHUNK):
        chunk = listed[start : start + _IN_CHUNK]
        text = sql.replace("{in}", ", ".join(["?"] * len(chunk)))
        touched += bulk.run(conn, text, [*params, *chunk])
    return touched


def _insert_copying(conn: Connection, table: sa.Table, change: Change, copy: Copy) -> int:
    """An insert whose copied columns come from the source rows its `by` values name."""
    source = schema.metadata.tables.get(copy.source)
    if source is None or not source.info.get("replayed") or len(source.primary_key) != 1:
        raise ValueError(f"{table.name} may copy only from a proved table with one key")
    if copy.by not in change.columns:
        raise ValueError(f"the insert into {table.name} names no {copy.by} to copy by")
    if copy.by in personal_columns(table):
        raise ValueError(f"a copy into {table.name} may not find rows by {copy.by}")
    own = [c for c in change.columns if c != copy.by or c in table.c]
    _check(table, [*own, *change.constants, *copy.columns], {})
    _check(source, list(copy.columns.values()), {})
    overlap = set(copy.columns) & {*change.columns, *change.constants}
    if overlap:
        raise ValueError(f"{table.name}: {sorted(overlap)} both given and copied")
    done = bulk.insert_copying(
        conn,
        table,
        change.rows,
        change.columns,
        change.constants or None,
        source,
        copy.by,
        copy.columns,
    )
    if done != len(change.rows):
        # A row whose source is missing would silently not exist: refuse the change.
        raise LedgerError(
            f"{table.name}: {len(change.rows) - done} of {len(change.rows)} rows name "
            f"no {copy.source} row to copy from"
        )
    return done


def _update_rows(conn: Connection, table: sa.Table, change: Change) -> int:
    """Each row named by its `keys` gets its own values of `columns`."""
    _check(table, change.columns, dict.fromkeys(change.keys))
    width = len(change.columns) + len(change.keys)
    if any(len(row) != width for row in change.rows):
        raise ValueError(f"update_rows of {table.name}: values for every column and key")
    rows = change.rows
    assignments = ", ".join(f"{column} = ?" for column in change.columns)
    where = " AND ".join(f"{column} = ?" for column in change.keys)
    return bulk.run_many(conn, f"UPDATE {table.name} SET {assignments} WHERE {where}", rows)


def _transposed(rows: Sequence[Sequence[Any]], width: int) -> list[Sequence[Any]]:
    """Row tuples as one sequence per column."""
    if not rows:
        return [() for _ in range(width)]
    return list(zip(*rows, strict=True))
