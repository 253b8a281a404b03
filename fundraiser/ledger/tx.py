"""One open write transaction: its changes, the journal's appends, and bulk writes.

The tables the journal proves (schema.py marks them `replayed`) change only
through `insert`, `update` and `delete` here; each change is kept and goes
into the journal with the next `record`. A write that changes them and
records nothing is refused when it ends (see Ledger.write).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from functools import partial
from operator import itemgetter
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.sql.dml import UpdateBase

from fundraiser.errors import LedgerError
from fundraiser.ledger import bulk, changes, encoder, journal, schema
from fundraiser.ledger.changes import Change

P = ParamSpec("P")
R = TypeVar("R")

#: Rows per journal entry of a big change: bounds the memory an entry takes.
PART = 20_000
#: Personal values in a change from which its journal texts are made in a child process.
_ASIDE_FROM = 200_000


class Carried:
    """What one process's writes to a ledger carry from one write to the next: the
    salt (made with the ledger, never changed) and the journal's head as the last
    write here committed it. Ledger.write updates them after each commit. The
    head is a guess another process may have moved: journal.append_on checks it."""

    salt: str | None = None
    head: tuple[int, str] | None = None


class Tx:
    """One open write transaction; `record` appends to the journal."""

    def __init__(
        self,
        conn: Connection,
        now: str,
        *,
        lock_journal: Callable[[Connection], None] | None = None,
        carried: Carried | None = None,
    ) -> None:
        self.conn = conn
        self.now = now
        self._head: tuple[int, str] | None = None
        self._carried = carried
        self._salt: str | None = None
        # Given: the caller does not hold the journal yet. Entries wait here, and
        # `flush` takes the journal's lock and appends them as the write's last
        # step, so the lock is held from the append to the commit only.
        self._lock_journal = lock_journal
        self._held_back: list[tuple[str, str, str]] = []
        self._second: ThreadPoolExecutor | None = None
        self._fingerprint: changes.Fingerprinter | None = None
        self._kept: list[dict[str, Any]] = []  # journal forms of changes not yet recorded
        # Set by `texts_at_end`: entries in order, a part's text still to make as a call.
        self._at_end: list[tuple[str, str, str | Callable[[], str]]] | None = None
        self._making: list[encoder.PartTexts] = []  # children making texts put off
        self._lz4 = False  # long journal texts compressed with lz4 (journal.prefer_lz4)

    def execute(self, statement: Any, *args: Any) -> sa.CursorResult[Any]:
        table = _written_table(statement)
        if table is not None and _replayed(schema.metadata.tables.get(table)):
            raise LedgerError(f"{table} changes only through Tx.insert/update/delete (journalled)")
        return self.conn.execute(statement, *args)

    # -- changes to the tables the journal proves --------------------------------
    def insert(
        self,
        table: sa.Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        constants: Mapping[str, Any] | None = None,
        *,
        copy: changes.Copy | None = None,
    ) -> int:
        """Insert rows (tuples in `columns` order); `constants` are the same in every row.

        A table keyed by an integer `id` gets the next free ids when `columns`
        has none: the journal names every row it makes. With `copy`, its columns
        take the values of the source row named by each row's `copy.by` value
        (ledger/changes.Copy): the journal names that row, not the values again.
        """
        if not rows:
            return 0
        columns, rows = list(columns), list(rows)
        key = table.c.get("id")
        if key is not None and "id" not in columns and "id" not in (constants or {}):
            # Through the driver: a webhook's mail makes one such insert per event.
            found = bulk.first(self.conn, f"SELECT max(id) FROM {table.name}")
            first = ((found[0] if found else None) or 0) + 1
            columns = ["id", *columns]
            rows = [(first + n, *row) for n, row in enumerate(rows)]
        fixed = dict(constants or {})
        pick: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None
        if len(rows) >= _HOIST_FROM:
            columns, pick = _hoist(columns, rows, fixed, None if copy is None else copy.by)
        if pick is not None and len(rows) <= PART:
            rows, pick = [pick(row) for row in rows], None
        change = Change(
            table.name, "insert", columns=columns, rows=rows, constants=fixed, copy=copy
        )
        return self._make(change, pick)

    def update(self, table: sa.Table, where: Mapping[str, Any], **values: Any) -> int:
        """Set `values` on the rows `where` names (a value, None, or a list per column)."""
        return self._make(Change(table.name, "update", where=dict(where), values=values))

    def update_rows(
        self,
        table: sa.Table,
        keys: Sequence[str],
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
    ) -> int:
        """Update many rows, each with its own values: `rows` are tuples of the values
        of `columns`, then of `keys`, which name the row and guard it."""
        if not rows:
            return 0
        change = Change(
            table.name,
            "update_rows",
            columns=list(columns),
            rows=list(rows),
            keys=list(keys),
        )
        return self._make(change)

    def delete(self, table: sa.Table, where: Mapping[str, Any]) -> int:
        return self._make(Change(table.name, "delete", where=dict(where)))

    def bookkeep(
        self, table: sa.Table, where: sa.ColumnElement[bool], **values: Any
    ) -> sa.CursorResult[Any]:
        """Set a replayed table's own bookkeeping columns (the mail queue's attempts,
        errors, claims), which are neither journalled nor compared. "sent" is not
        bookkeeping: it goes through `update`, into the journal."""
        for name in values:
            info = table.c[name].info
            if not (info.get("operational") or info.get("sent_only")):
                raise LedgerError(f"{table.name}.{name} changes only through Tx.update")
            if info.get("sent_only") and values[name] == "sent":
                raise LedgerError(f"{table.name}.{name} = 'sent' is journalled: use Tx.update")
        return self.conn.execute(table.update().where(where).values(**values))

    def keep(self, change: Change) -> None:
        """Journal a change with the next record without making it (the tables have it)."""
        self._kept.append(change.encode(self.fingerprint))

    def _make(
        self, change: Change, pick: Callable[[Sequence[Any]], tuple[Any, ...]] | None = None
    ) -> int:
        """Apply and keep a change; `pick` (an insert of many rows only) takes each
        row's values of the change's columns, a part at a time."""
        table = schema.metadata.tables[change.table]
        if not _replayed(table):
            raise LedgerError(f"{table.name} is not a replayed table: use execute")
        if len(change.rows) > PART:
            return self._make_in_parts(change, pick)
        touched = changes.apply(self.conn, change)
        if touched or change.kind == "insert":
            self._kept.append(change.encode(self.fingerprint))
        return touched

    def _make_in_parts(
        self, change: Change, pick: Callable[[Sequence[Any]], tuple[Any, ...]] | None
    ) -> int:
        """A change of many rows, made and journalled a part at a time.

        Each part goes into the journal at once, as a `ledger.rows` entry; the
        caller's own `record` follows. Memory stays that of a few parts, whatever
        the size of an import or an issue. The parts' journal texts (fingerprints,
        JSON: Python work) are made in a child process while this one writes the
        rows (ledger/encoder.py).
        """
        if self._kept:  # what came before goes first, in its own entry
            self.record("ledger.rows", change.table, {})
        self.flush()  # parts go in as they are made: the journal is held from here
        fingerprint = self.fingerprint  # read the salt here: the encoder never touches the database
        touched = 0
        rows = change.rows
        starts = range(0, len(rows), PART)

        def part_at(index: int) -> Change:
            # A part's rows are picked as it comes: never a second copy of them all.
            chunk = rows[starts[index] : starts[index] + PART]
            return replace(change, rows=chunk if pick is None else [pick(r) for r in chunk])

        # A child pays off where there are many personal values to fingerprint
        # (an import); ids, amounts and copies (an issue) encode faster than a fork.
        personal = changes.personal_columns(schema.metadata.tables[change.table])
        aside = len(personal & set(change.columns)) * len(rows) >= _ASIDE_FROM
        if self._at_end is not None and aside:
            return self._apply_parts_later(change, part_at, starts, fingerprint)
        if self._at_end is not None:
            for index in range(len(starts)):
                part = part_at(index)
                touched += changes.apply(self.conn, part)
                del part  # made again at the end, from the rows the change holds
                text = partial(_part_text, part_at, index, fingerprint)
                self._at_end.append(("ledger.rows", _part_subject(change, starts, index), text))
            return touched
        texts = encoder.PartTexts(part_at, len(starts), fingerprint, aside=aside)
        try:
            for index in range(len(starts)):
                part = part_at(index)
                touched += changes.apply(self.conn, part)
                subject = _part_subject(change, starts, index)
                self._append([("ledger.rows", subject, texts.get(index))])
        finally:
            texts.close()
        return touched

    def _apply_parts_later(
        self,
        change: Change,
        part_at: Callable[[int], Change],
        starts: range,
        fingerprint: changes.Fingerprinter,
    ) -> int:
        """Apply every part now; their texts are made by a child while the caller
        goes on (an import checks its next batch) and taken at the next such
        change or at `settle`. One child at a time: the texts put off before
        this change go in first."""
        self._catch_up()
        assert self._at_end is not None
        texts = encoder.PartTexts(part_at, len(starts), fingerprint, hold=len(starts))
        self._making.append(texts)
        touched = 0
        for index in range(len(starts)):
            touched += changes.apply(self.conn, part_at(index))
            text = partial(texts.get, index)
            self._at_end.append(("ledger.rows", _part_subject(change, starts, index), text))
        return touched

    def _catch_up(self) -> None:
        """Append the entries put off so far, their texts made (a child's taken),
        as `settle` does at the end; then go on putting entries off."""
        if self._making:
            self.settle()
            self._at_end = []

    @property
    def fingerprint(self) -> changes.Fingerprinter:
        """This ledger's fingerprint of personal values (its salt made on first use)."""
        if self._fingerprint is None:
            found = None if self._carried is None else self._carried.salt
            if found is None:  # not yet carried from a write this process committed
                found = self.conn.execute(
                    sa.select(schema.state.c.value).where(schema.state.c.key == changes.SALT_KEY)
                ).scalar()
            if found is None:
                found = secrets.token_hex(32)
                self.conn.execute(
                    schema.state.insert().values(
                        key=changes.SALT_KEY, value=found, updated_at=self.now
                    )
                )
            self._salt = str(found)
            self._fingerprint = changes.make_fingerprint(self._salt)
        return self._fingerprint

    def carry(self) -> None:
        """Once this write has committed: what the next write may start from."""
        if self._carried is not None:
            if self._salt is not None:
                self._carried.salt = self._salt
            if self._head is not None:
                self._carried.head = self._head

    @property
    def unrecorded(self) -> int:
        """Changes made since the last `record` (a write must end with none)."""
        return len(self._kept)

    # -- the journal ---------------------------------------------------------
    def record(self, action: str, subject: str, data: dict[str, Any]) -> None:
        self.record_many([(action, subject, data)])

    def record_encoded(self, action: str, subject: str, text: str) -> None:
        """Append one entry whose data is canonical(data) already (encoded off the database).

        The changes kept since the last entry go in under "changes": `text` must
        be a JSON object.
        """
        if self._kept:
            kept = journal.canonical(self._kept)
            body = text[1:-1]
            text = "{" + f'"changes":{kept}' + ("," + body if body else "") + "}"
            self._kept = []
        self._append([(action, subject, text)])

    def record_many(self, entries: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Append entries to the hash chain, in order, in this transaction.

        The changes kept since the last entry go into the first, under "changes".
        """
        encoded = []
        for action, subject, data in entries:
            if self._kept:
                if "changes" in data:
                    raise ValueError("a journal entry's own data may not be called 'changes'")
                data = {"changes": self._kept, **data}
                self._kept = []
            encoded.append((action, subject, journal.canonical(data)))
        self._append(encoded)

    def _append(self, entries: Sequence[tuple[str, str, str]]) -> None:
        if self._at_end is not None:
            self._at_end.extend(entries)
            return
        if self._lock_journal is not None:
            self._held_back.extend(entries)
            return
        if self._head is None and self._carried is not None and self._carried.head:
            small = all(len(text) < journal.BIG_ENTRY for _, _, text in entries)
            if small:  # usually the head the last write here left: checked as it goes in
                self._head = journal.append_on(self.conn, self._carried.head, self.now, entries)
                if self._head is not None:
                    return
        if self._head is None:
            self._head = journal.head(self.conn)
        if not self._lz4 and any(len(text) >= journal.BIG_ENTRY for _, _, text in entries):
            journal.prefer_lz4(self.conn)
            self._lz4 = True
        self._head = journal.append(self.conn, self._head, self.now, entries)

    # -- bulk writes -----------------------------------------------------------
    def insert_rows(
        self,
        table: sa.Table,
        rows: Sequence[Any],
        columns: Sequence[str] | None = None,
        constants: dict[str, Any] | None = None,
    ) -> None:
        """Insert many rows (dicts, or tuples in `columns` order) through the driver.

        Not for the replayed tables: they take `insert`, which journals the rows.
        """
        if _replayed(table):
            raise LedgerError(f"{table.name} changes only through Tx.insert (journalled)")
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

    def hold_journal(self) -> None:
        """Keep this write's journal entries until it ends, then append them together
        (one INSERT for a batch of webhooks, not three per event); the write holds
        the journal already, so there is nothing to lock. Code that reads the
        journal inside such a write calls `flush` first, or misses what is held."""
        if self._lock_journal is None:
            self._lock_journal = _nothing_to_lock

    def flush(self) -> None:
        """Append the entries held back, under the journal's lock (Ledger.write calls it
        before it commits); from here on entries are appended as they are recorded."""
        lock, self._lock_journal = self._lock_journal, None
        if lock is None:
            return
        lock(self.conn)
        held, self._held_back = self._held_back, []
        if held:
            self._append(held)

    def texts_at_end(self) -> None:
        """Make the journal texts of this write's big changes as it ends (`settle`),
        while the database does the write's last work on the second thread:
        PostgreSQL builds the indexes and checks the keys a bulk write put off
        (ledger/pgbulk.py), and this thread, otherwise waiting, makes the texts.

        Entries keep their order and go in before the commit; until then they are
        in no table, so nothing in this write may read the journal after this.
        A part's text is made from the rows its change holds: those rows and the
        texts (about 15 MB at 100,000 pledges) live until the write ends.

        A change whose texts a child process makes (many personal values: an
        import's batch) is applied at once, and the child works while the caller
        goes on; its texts are taken, with every entry put off before them, when
        the next such change comes or at the end: one batch's rows and texts held
        at a time, one child.
        """
        if self._at_end is None:
            self._at_end = []

    def settle(self, last: Callable[[], None] | None = None) -> None:
        """Run `last` (the write's last database work) alongside while this thread
        makes the texts `texts_at_end` put off; then append those entries.
        Ledger.write calls it before it commits."""
        later, self._at_end = self._at_end, None
        if not later:  # nothing to make: no second thread
            if last is not None:
                last()
            return
        running = self.alongside(last) if last is not None else None
        try:
            made = _made(later)
        finally:
            if running is not None:
                running.result()  # the database is this thread's again
            self.close_texts()
        self._append(made)

    def close_texts(self) -> None:
        """Stop and reap the children making texts put off (Ledger.write calls it
        as the write ends, whatever way: a failed write leaves none behind)."""
        making, self._making = self._making, []
        for texts in making:
            texts.close()

    def finish(self) -> None:
        """Wait for a step still running alongside (Ledger.write calls it)."""
        if self._second is not None:
            self._second.shutdown(wait=True)
        self._second = None


def _nothing_to_lock(conn: Connection) -> None:
    """See Tx.hold_journal."""


def _part_subject(change: Change, starts: range, index: int) -> str:
    """A part's journal subject: its table and its rows' place in the change."""
    first = starts[index] + 1
    last = min(first + starts.step - 1, len(change.rows))
    return f"{change.table}:{first}-{last}/{len(change.rows)}"


def _made(entries: list[tuple[str, str, str | Callable[[], str]]]) -> list[tuple[str, str, str]]:
    """Entries in their order, each text put off made now."""
    return [(a, s, t if isinstance(t, str) else t()) for a, s, t in entries]


def _part_text(
    part_at: Callable[[int], Change], index: int, fingerprint: changes.Fingerprinter
) -> str:
    return encoder.entry_text(part_at(index), fingerprint)


def _replayed(table: Any) -> bool:
    return bool(getattr(table, "info", {}).get("replayed"))


_DML = re.compile(r"^\s*(?:INSERT\s+INTO|UPDATE|DELETE\s+FROM)\s+\"?(\w+)", re.IGNORECASE)


def _written_table(statement: Any) -> str | None:
    """The table an INSERT, UPDATE or DELETE writes (built or as text), else None."""
    if isinstance(statement, UpdateBase):
        return str(statement.table)
    if isinstance(statement, sa.TextClause):
        found = _DML.match(statement.text)
        return found.group(1) if found else None
    return None


#: From this many rows an insert looks for columns that hold one value throughout.
_HOIST_FROM = 1_000


def _hoist(
    columns: list[str], rows: list[Sequence[Any]], fixed: dict[str, Any], by: str | None = None
) -> tuple[list[str], Callable[[Sequence[Any]], tuple[Any, ...]] | None]:
    """Columns with the same value in every row become constants (into `fixed`):
    bound once per statement and written once in the journal, not per row.

    The columns left, and what picks their values from a row (None: all of
    them). Read a column at a time, so a big insert is never copied whole.
    A copy's `by` column stays: each row finds its source by it.
    """
    keep = []
    first_row, last_row = rows[0], rows[-1]
    for index, name in enumerate(columns):
        first = first_row[index]
        # Most columns differ between the first row and the last: no scan of them all.
        if (
            name not in ("id", by)
            and type(first) in _PLAIN
            and last_row[index] == first
            and list(map(itemgetter(index), rows)).count(first) == len(rows)
        ):
            fixed[name] = first
        else:
            keep.append(index)
    if not keep:  # every column the same: one stays, so each row is still a row
        keep = [0]
        del fixed[columns[0]]
    if len(keep) == len(columns):
        return columns, None
    kept = [columns[i] for i in keep]
    if len(keep) == 1:
        only = keep[0]
        return kept, lambda row: (row[only],)
    return kept, itemgetter(*keep)


# Only values that compare equal exactly as they are stored (1 == True, 1.0 == 1 do not).
_PLAIN = (str, type(None))
