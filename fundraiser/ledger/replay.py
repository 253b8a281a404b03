"""Proof of the tables: replay the journal into empty tables and compare.

The journal is the history; the tables are a view of it. Every change of a
replayed table went into the journal as a Change (ledger/changes.py), so
applying those changes, in order and with the same code, to empty tables must
give back the ledger's own tables exactly. Anything else is named: the table,
the row, the column, what the journal says and what the table says. A personal
column is compared by its fingerprint, so no name is read out of the journal
(there is none in it) and none is printed here.

A ledger made before its journal carried changes starts its replay at the
snapshot its migration wrote (`ledger.snapshot`): the tables as they stood.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import changes, schema
from fundraiser.ledger.changes import Change

SNAPSHOT = "ledger.snapshot"
_BATCH = 5_000


@dataclass(frozen=True)
class Difference:
    table: str
    row: str  # its key, e.g. "id=5"
    column: str  # "(row)" when the whole row is missing or extra
    journal: Any  # what replaying the journal gives
    found: Any  # what the table holds

    def describe(self) -> str:
        if self.column == "(row)":
            return f"{self.table} {self.row}: {self.journal}; the table {self.found}"
        return (
            f"{self.table} {self.row} {self.column}: the journal says {self.journal!r}, "
            f"the table says {self.found!r}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "row": self.row,
            "column": self.column,
            "journal": self.journal,
            "table_value": self.found,
        }


@dataclass
class ReplayReport:
    first: int = 0  # the first entry replayed (0: none)
    last: int = 0
    changes: int = 0
    differences: list[Difference] = field(default_factory=list)
    more: int = 0  # differences found beyond those kept

    @property
    def ok(self) -> bool:
        return not self.differences and not self.more

    def note(self, difference: Difference, keep: int) -> None:
        if len(self.differences) < keep:
            self.differences.append(difference)
        else:
            self.more += 1


def _scratch() -> sa.Engine:
    engine = sa.create_engine("sqlite://")
    with engine.begin() as conn:
        schema.metadata.create_all(conn, tables=changes.replayed_tables())
    return engine


def _entries(conn: Connection) -> Iterator[tuple[int, str, str]]:
    journal = schema.journal
    start = conn.execute(
        sa.select(sa.func.max(journal.c.seq)).where(journal.c.action == SNAPSHOT)
    ).scalar()
    query = sa.select(journal.c.seq, journal.c.action, journal.c.data).order_by(journal.c.seq)
    if start is not None:
        query = query.where(journal.c.seq >= start)
    for seq, action, data in conn.execution_options(yield_per=_BATCH).execute(query):
        yield int(seq), str(action), str(data)


def replay_into(live: Connection, scratch: Connection, report: ReplayReport) -> None:
    """Apply every journalled change to the scratch tables, in the journal's order."""
    for seq, _action, data in _entries(live):
        if report.first == 0:
            report.first = seq
        report.last = seq
        if '"changes"' not in data:  # most entries carry none: skip the parse
            continue
        for item in json.loads(data).get("changes") or []:
            changes.apply(scratch, Change.decode(item))
            report.changes += 1


def _columns(table: sa.Table) -> list[sa.Column[Any]]:
    return [c for c in table.columns if not c.info.get("operational")]


def _rows(
    conn: Connection, table: sa.Table, columns: list[sa.Column[Any]]
) -> Iterator[tuple[Any, ...]]:
    keys = [c.name for c in table.primary_key.columns]
    names = ", ".join(c.name for c in columns)
    cursor = conn.connection.cursor()
    try:
        cursor.execute(f"SELECT {names} FROM {table.name} ORDER BY {', '.join(keys)}")
        while True:
            batch = cursor.fetchmany(_BATCH)
            if not batch:
                return
            yield from (tuple(row) for row in batch)
    finally:
        cursor.close()


def _plain(value: Any) -> Any:
    return int(value) if isinstance(value, bool) else value


def compare(
    live: Connection, scratch: Connection, report: ReplayReport, *, keep: int = 200
) -> None:
    """Name every difference between the live tables and the replayed ones."""
    salt = live.execute(
        sa.select(schema.state.c.value).where(schema.state.c.key == changes.SALT_KEY)
    ).scalar()
    fingerprint = changes.make_fingerprint(str(salt)) if salt else None
    for table in changes.replayed_tables():
        _compare_table(live, scratch, table, fingerprint, report, keep)


def _compare_table(
    live: Connection,
    scratch: Connection,
    table: sa.Table,
    fingerprint: changes.Fingerprint | None,
    report: ReplayReport,
    keep: int,
) -> None:
    """One table against its replay, both read in key order and walked side by side."""
    columns = _columns(table)
    names = [c.name for c in columns]
    personal = [i for i, c in enumerate(columns) if c.info.get("personal")]
    sent_only = [i for i, c in enumerate(columns) if c.info.get("sent_only")]
    keys = [names.index(c.name) for c in table.primary_key.columns]

    def key_of(row: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(_plain(row[i]) for i in keys)

    def label(row: tuple[Any, ...]) -> str:
        return ",".join(f"{names[i]}={row[i]}" for i in keys)

    def view(row: tuple[Any, ...], *, is_live: bool) -> list[Any]:
        values = [_plain(v) for v in row]
        for i in sent_only:  # of the mail queue's states only "sent" is journalled
            values[i] = "sent" if values[i] == "sent" else "not sent"
        if is_live:
            for i in personal:
                if values[i] is not None:
                    values[i] = fingerprint(values[i]) if fingerprint else "(no salt)"
        return values

    theirs, ours = _rows(live, table, columns), _rows(scratch, table, columns)
    found, made = next(theirs, None), next(ours, None)
    while found is not None or made is not None:
        if made is None or (found is not None and key_of(found) < key_of(made)):
            assert found is not None
            difference = Difference(table.name, label(found), "(row)", "has no such row", "has it")
            report.note(difference, keep)
            found = next(theirs, None)
            continue
        if found is None or key_of(made) < key_of(found):
            difference = Difference(table.name, label(made), "(row)", "has this row", "does not")
            report.note(difference, keep)
            made = next(ours, None)
            continue
        expected, actual = view(made, is_live=False), view(found, is_live=True)
        for i, name in enumerate(names):
            if expected[i] != actual[i]:
                shown = (
                    ("(personal: fingerprint differs)", "(personal)")
                    if i in personal
                    else (expected[i], actual[i])
                )
                report.note(Difference(table.name, label(found), name, *shown), keep)
        found, made = next(theirs, None), next(ours, None)


def prove(live: Connection, *, keep: int = 200) -> ReplayReport:
    """Replay the journal into empty tables and compare them with these."""
    report = ReplayReport()
    engine = _scratch()
    try:
        with engine.begin() as scratch:
            replay_into(live, scratch, report)
            compare(live, scratch, report, keep=keep)
    finally:
        engine.dispose()
    return report
