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

How, and why so: the replay goes into a throwaway SQLite file (tables with
their keys only: no indexes to keep up; a page cache of a fixed size, so a
million pledges replay in the memory of a hundred thousand), and the
ledger's own tables are copied beside it, their personal columns as
fingerprints, read in the same read transaction as the journal, so a write
made meanwhile cannot look like a difference. The comparison is then SQL
(EXCEPT, both ways), and only the rows that differ are read into Python to
name their columns. A PostgreSQL ledger's rows are not copied into SQLite: they
are fingerprinted as they come off the server, spooled, and walked beside the
replay's rows in key order (compare.compare_rows). The hash chain is checked in
the replay's own read of the journal (journal.ChainCheck).
"""

from __future__ import annotations

import json
import multiprocessing
import os
import pickle
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.pool import StaticPool

from fundraiser.errors import LedgerError
from fundraiser.ledger import bulk, changes, schema
from fundraiser.ledger.changes import Change
from fundraiser.ledger.compare import (
    Difference,
    ReplayReport,
    compare_rows,
    compare_table,
    fingerprinted_rows,
    fingerprinted_sql,
    fingerprinter,
    ordered_select,
    row_fingerprints,
)
from fundraiser.ledger.engine import Ledger, sqlite_path
from fundraiser.ledger.journal import ChainCheck

SNAPSHOT = changes.SNAPSHOT
_BATCH = 5_000
#: Journal entries read at a time: one entry of a big import holds 20,000 rows'
#: changes (megabytes of text), and a few of them at a time is memory enough.
_ENTRIES = 8
#: PostgreSQL: journal entries fetched at a time when the chain is checked in the
#: same read (all the columns of every entry: as verify_chain reads them).
_CHAIN_ENTRIES = 16


def _bare(table: sa.Table, metadata: sa.MetaData, schema_name: str | None) -> sa.Table:
    """The table's columns and key only: no indexes or constraints to keep up."""
    return sa.Table(
        table.name,
        metadata,
        *[
            sa.Column(
                c.name,
                c.type,
                primary_key=c.primary_key,
                autoincrement=False,
                server_default=(
                    c.server_default.arg  # type: ignore[attr-defined]
                    if c.server_default is not None
                    else None
                ),
            )
            for c in table.columns
        ],
        schema=schema_name,
    )


def _create(scratch: Connection, schema_name: str | None) -> None:
    metadata = sa.MetaData()
    for table in changes.replayed_tables():
        _bare(table, metadata, schema_name)
    metadata.create_all(scratch)


def _entries(
    conn: Connection, journal: str, chain: ChainCheck | None = None
) -> Iterator[tuple[int, str, str]]:
    """The entries to replay (from the last snapshot on), read a few at a time; with
    `chain`, every entry is read and its hash checked on the way."""
    start = conn.exec_driver_sql(
        f"SELECT MAX(seq) FROM {journal} WHERE action = ?"
        if conn.dialect.name == "sqlite"
        else f"SELECT MAX(seq) FROM {journal} WHERE action = %s",
        (SNAPSHOT,),
    ).scalar()
    cursor = conn.connection.cursor()
    try:
        mark = "?" if conn.dialect.name == "sqlite" else "%s"
        yield from _read_entries(cursor, journal, mark, int(start or 0), chain, _ENTRIES)
    finally:
        cursor.close()


def _read_entries(
    cursor: Any, journal: str, mark: str, start: int, chain: ChainCheck | None, size: int
) -> Iterator[tuple[int, str, str]]:
    """(seq, action, data) of the entries from `start` on, `size` at a time; with
    `chain`, all of them read and each given to it (those before `start` only to it)."""
    if chain is None:
        cursor.execute(
            f"SELECT seq, action, data FROM {journal} WHERE seq >= {mark} ORDER BY seq", (start,)
        )
        while batch := cursor.fetchmany(size):
            for seq, action, data in batch:
                yield int(seq), str(action), str(data)
        return
    cursor.execute(f"SELECT {ChainCheck.COLUMNS} FROM {journal} ORDER BY seq")
    add = chain.add
    while batch := cursor.fetchmany(size):
        for row in batch:
            add(*row)
            if row[0] >= start:
                yield int(row[0]), str(row[2]), str(row[4])


def replay_into(
    journal: Iterator[tuple[int, str, str]], scratch: Connection, report: ReplayReport
) -> None:
    """Apply every journalled change to the scratch tables, in the journal's order."""
    for seq, _action, data in journal:
        if report.first == 0:
            report.first = seq
        report.last = seq
        if '"changes"' not in data:  # most entries carry none: skip the parse
            continue
        for item in json.loads(data).get("changes") or []:
            changes.apply(scratch, Change.decode(item))
            report.changes += 1


def prove(ledger: Ledger, *, keep: int = 200, chain: ChainCheck | None = None) -> ReplayReport:
    """Replay the journal into empty tables and compare them with the ledger's own.

    With `chain`, the journal's hash chain is checked in the same read of it (from
    the first entry on, in the snapshot the tables are read in).

    The journal and the tables are read in one snapshot (REPEATABLE READ on
    PostgreSQL; on SQLite two readers that see the same journal head), so a
    write made meanwhile is wholly in both or in neither.
    """
    report = ReplayReport()
    path = sqlite_path(ledger.url)
    # The rows read and compared are young objects without cycles: the collector's
    # passes over them freed nothing and cost a PostgreSQL ledger's verify 15%
    # (4.08 -> 3.48 s at 100,000 pledges). The forked copier inherits the pause.
    with bulk.gc_paused(), tempfile.TemporaryDirectory(prefix="fundraiser-replay-") as folder:
        engine = sa.create_engine(
            f"sqlite:///{Path(folder) / 'replay.sqlite'}", poolclass=StaticPool
        )
        try:
            with engine.connect() as scratch:
                raw = scratch.connection.dbapi_connection
                assert raw is not None
                raw.isolation_level = None  # BEGIN and ROLLBACK are ours
                _scratch_pragmas(raw)
                _create(scratch, None)
                if path is not None:
                    _prove_sqlite(scratch, path, report, keep, chain)
                else:
                    _prove_copied(ledger, scratch, report, keep, chain)
        finally:
            engine.dispose()
    return report


#: The replay's page cache, in KiB: the replay is a file, and this much of it stays
#: in the process; the rest is the operating system's to cache or not.
_SCRATCH_CACHE_KIB = 65_536


def _scratch_pragmas(raw: Any) -> None:
    """The replay's file is thrown away after the comparison: no journal, no syncs,
    and a page cache of a fixed size, so a million pledges replay in the memory a
    hundred thousand take (an in-memory database held all of it)."""
    raw.execute("PRAGMA journal_mode = OFF")
    raw.execute("PRAGMA synchronous = OFF")
    raw.execute(f"PRAGMA cache_size = -{_SCRATCH_CACHE_KIB}")
    raw.execute("PRAGMA temp_store = FILE")


def _head(conn: Any, journal: str) -> tuple[int, str]:
    row = conn.execute(f"SELECT seq, hash FROM {journal} ORDER BY seq DESC LIMIT 1").fetchone()
    return (int(row[0]), str(row[1])) if row else (0, "")


def _prove_sqlite(
    scratch: Connection, path: Path, report: ReplayReport, keep: int, chain: ChainCheck | None
) -> None:
    """A SQLite ledger, on two cores: this process replays the journal while a forked
    one fingerprints copies of the tables; both read the same snapshot of the ledger.

    A process, not a thread: both halves are Python-heavy (the journal's JSON, the
    fingerprints), and two threads would take turns on the interpreter's lock.
    """
    raw = scratch.connection.dbapi_connection
    assert raw is not None
    scratch.exec_driver_sql("ATTACH DATABASE ? AS live", (str(path),))
    with tempfile.TemporaryDirectory(prefix="fundraiser-verify-", dir=_fast_tmp()) as folder:
        copies = Path(folder) / "copies.sqlite"
        scratch.exec_driver_sql("BEGIN")
        try:
            head = _head(raw, "live.journal")  # the snapshot starts here: writers now wait
            salt = scratch.exec_driver_sql(
                "SELECT value FROM live.state WHERE key = ?", (changes.SALT_KEY,)
            ).scalar()
            second = _start(_fingerprint_copies, path, copies, head, salt)
            try:
                replay_into(_entries(scratch, "live.journal", chain), scratch, report)
            finally:
                second.join()
            if second.exitcode == _MOVED:
                raise LedgerError("the ledger changed while it was being verified: run it again")
            if second.exitcode != 0:
                raise LedgerError(
                    f"verifying stopped: the copying process failed ({second.exitcode})"
                )
        finally:
            # Keeps the replay (written in this transaction), ends the read of the ledger.
            scratch.exec_driver_sql("COMMIT")
        scratch.exec_driver_sql("DETACH DATABASE live")
        sides = [(table, copies) for table in changes.replayed_tables()]
        _compare(scratch, sides, report, keep)


_MOVED = 3  # the copying process's exit code when the ledger moved between the two reads


def _fast_tmp() -> str | None:
    """RAM-backed /dev/shm where there is one: the copies are written and read once."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


def _start(target: Any, *args: Any) -> Any:
    """Run `target(*args)` in a forked process (a thread where there is no fork)."""
    try:
        context = multiprocessing.get_context("fork")
    except ValueError:
        context = None
    if context is None:
        import threading

        class _Thread(threading.Thread):
            exitcode = 0

            def run(self) -> None:
                try:
                    target(*args)
                except SystemExit as exc:
                    self.exitcode = int(exc.code or 0)

        thread = _Thread(daemon=True)
        thread.start()
        return thread
    process = context.Process(target=target, args=args, daemon=True)
    process.start()
    return process


def _fingerprint_copies(path: Path, copies: Path, head: tuple[int, str], salt: Any) -> None:
    """In the second process: the ledger's tables into `copies`, their personal columns
    as joined fingerprints, from a snapshot with the same journal head."""
    conn = sqlite3.connect(copies, isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = OFF")  # a scratch file: nothing to recover
        conn.execute("PRAGMA synchronous = OFF")
        conn.create_function(
            "fp_row", -1, row_fingerprints(fingerprinter(salt)), deterministic=True
        )
        conn.execute("ATTACH DATABASE ? AS live", (str(path),))
        conn.execute("BEGIN")
        if _head(conn, "live.journal") != head:  # WAL: a write came between the two reads
            raise SystemExit(_MOVED)
        for table in changes.replayed_tables():
            for sql in fingerprinted_sql(table, f"main.fingerprinted_{table.name}"):
                conn.execute(sql)
        conn.execute("COMMIT")
    finally:
        conn.close()


def _prove_copied(
    ledger: Ledger,
    scratch: Connection,
    report: ReplayReport,
    keep: int,
    chain: ChainCheck | None,
) -> None:
    """A PostgreSQL ledger, on two cores as a SQLite one: this process replays the
    journal while a forked one copies the biggest tables (the pledges first) and
    fingerprints them, spooled. Once the replay is done, the other process compares
    what it spooled and then the biggest table left, this one the smallest left,
    each read from the server beside the replay (_Work): no table is spooled that
    need not wait for the replay, and the two end together.

    All read one snapshot: this process's REPEATABLE READ transaction exports it
    and stays open until the other process has ended (it joins it inside the
    transaction), so a write made meanwhile is in none.
    """
    main = _main_file(scratch)
    raw = scratch.connection.dbapi_connection
    assert raw is not None
    found: dict[str, tuple[list[Difference], int]] = {}
    with tempfile.TemporaryDirectory(prefix="fundraiser-verify-", dir=_fast_tmp()) as folder:
        result = Path(folder) / "found.pickle"
        with ledger.read() as live:
            live = live.execution_options(isolation_level="REPEATABLE READ")
            salt = live.execute(
                sa.select(schema.state.c.value).where(schema.state.c.key == changes.SALT_KEY)
            ).scalar()
            snapshot = live.exec_driver_sql("SELECT pg_export_snapshot()").scalar()
            tables = _biggest_first(live)
            url = ledger.engine.url.set(drivername="postgresql").render_as_string(
                hide_password=False
            )
            work = _Work(len(tables))
            names = [t.name for t in tables]
            other = _start(
                _copy_postgres, url, str(snapshot), names, work, folder, salt, main, keep, result
            )
            try:
                replay_into(_streamed_entries(live, chain), scratch, report)
                work.replayed.set()
                fingerprint = fingerprinter(salt)
                while (taken := work.last()) is not None:
                    table = tables[taken]
                    found[table.name] = _compare_streamed(
                        raw, live.connection, table, fingerprint, keep
                    )
            except BaseException:
                work.abandoned.set()
                raise
            finally:
                other.join()
        if other.exitcode != 0 or not result.exists():
            raise LedgerError(f"verifying stopped: the copying process failed ({other.exitcode})")
        # Our own process's result, in a folder of our own: nothing else wrote it.
        found.update(pickle.loads(result.read_bytes()))
    for table in changes.replayed_tables():  # in the tables' order, as a single process would
        differences, more = found[table.name]
        for difference in differences:
            report.note(difference, keep)
        report.more += more


def _main_file(scratch: Connection) -> str:
    """The replay's file."""
    return str(
        next(row[2] for row in scratch.exec_driver_sql("PRAGMA database_list") if row[1] == "main")
    )


class _Work:
    """The tables of a PostgreSQL ledger, biggest first, handed out once each: the
    copying process takes from the biggest end, this one from the smallest. Shared
    across the fork (and by threads where there is none)."""

    def __init__(self, count: int) -> None:
        try:
            context: Any = multiprocessing.get_context("fork")
        except ValueError:
            context = multiprocessing.get_context()
        self.ends = context.Array("i", [0, count - 1])
        self.replayed = context.Event()  # the replay is done: its tables can be read
        self.abandoned = context.Event()  # this process stopped: the other stops too

    def first(self) -> int | None:
        with self.ends.get_lock():
            low, high = self.ends[0], self.ends[1]
            if low > high:
                return None
            self.ends[0] = low + 1
        return int(low)

    def last(self) -> int | None:
        with self.ends.get_lock():
            low, high = self.ends[0], self.ends[1]
            if low > high:
                return None
            self.ends[1] = high - 1
        return int(high)

    def wait_for_replay(self) -> bool:
        """Wait until the replay is done (True), or this process stopped (False)."""
        while not self.replayed.wait(0.05):
            if self.abandoned.is_set():
                return False
        return True


def _biggest_first(live: Connection) -> list[sa.Table]:
    """The proved tables, the biggest on the server first: taken in this order, the
    last to be taken are small, and the processes taking them end together."""
    tables = changes.replayed_tables()
    sizes: dict[str, Any] = dict(
        live.exec_driver_sql(
            "SELECT name, pg_total_relation_size(name) FROM unnest(%(names)s::text[]) AS name",
            {"names": [t.name for t in tables]},
        ).all()
    )
    return sorted(tables, key=lambda t: -int(sizes.get(t.name) or 0))


#: A proved table and the file holding the ledger's copy of it (fingerprinted_<table>).
_Side = tuple[sa.Table, Path]


def _compare(scratch: Connection, sides: list[_Side], report: ReplayReport, keep: int) -> None:
    """Every table against its replay, on two cores: the pledges (as many values as
    all the rest) in a forked process, the other tables in this one. What each finds
    is noted in the tables' order, as one process comparing them all would."""
    main = next(
        row[2] for row in scratch.exec_driver_sql("PRAGMA database_list") if row[1] == "main"
    )
    apart = [side for side in sides if side[0].name in _COPIED_APART]
    found: dict[str, tuple[list[Difference], int]] = {}
    with tempfile.TemporaryDirectory(prefix="fundraiser-compare-", dir=_fast_tmp()) as folder:
        result = Path(folder) / "apart.pickle"
        second = _start(_compare_apart, str(main), apart, keep, result)
        try:
            found.update(_compare_tables(scratch, [s for s in sides if s not in apart], keep))
        finally:
            second.join()
        if second.exitcode != 0 or not result.exists():
            raise LedgerError(
                f"verifying stopped: the comparing process failed ({second.exitcode})"
            )
        # Our own process's result, in a folder of our own: nothing else wrote it.
        found.update(pickle.loads(result.read_bytes()))
    for table, _copies in sides:
        differences, more = found[table.name]
        for difference in differences:
            report.note(difference, keep)
        report.more += more


def _compare_apart(main: str, sides: list[_Side], keep: int, result: Path) -> None:
    """In the comparing process: these tables, over a connection of its own to the
    replay's file; what it finds pickled into `result`."""
    engine = sa.create_engine(f"sqlite:///{main}", poolclass=StaticPool)
    try:
        with engine.connect() as scratch:
            found = _compare_tables(scratch, sides, keep)
    finally:
        engine.dispose()
    result.write_bytes(pickle.dumps(found))


def _compare_tables(
    scratch: Connection, sides: list[_Side], keep: int
) -> dict[str, tuple[list[Difference], int]]:
    """Each table's differences (up to `keep`) and how many more, by table name."""
    found: dict[str, tuple[list[Difference], int]] = {}
    attached: Path | None = None
    for table, copies in sides:
        if attached != copies:
            if attached is not None:
                scratch.exec_driver_sql("DETACH DATABASE copied")
            scratch.exec_driver_sql("ATTACH DATABASE ? AS copied", (str(copies),))
            attached = copies
        mine = ReplayReport()
        theirs = f"copied.fingerprinted_{table.name}"
        compare_table(scratch, table, theirs, mine, keep)
        found[table.name] = (mine.differences, mine.more)
    if attached is not None:
        scratch.exec_driver_sql("DETACH DATABASE copied")
    return found


# Copied by a process of its own: every other proved row hangs off a pledge, and a
# pledge has 30 columns, so the pledges are about as many values as the rest.
_COPIED_APART = ("pledges",)


def _streamed_entries(
    live: Connection, chain: ChainCheck | None = None
) -> Iterator[tuple[int, str, str]]:
    """PostgreSQL: the journal from its last snapshot on (with `chain`, all of it),
    through a server-side cursor: a client cursor holds the whole result (100s of MB
    of JSON) at once."""
    start = live.exec_driver_sql(
        "SELECT MAX(seq) FROM journal WHERE action = %s", (SNAPSHOT,)
    ).scalar()
    cursor = live.connection.cursor(name="fundraiser_verify_journal")
    try:
        # With the chain, as many entries at a time as verify_chain reads: a big
        # entry is megabytes, and a few at a time is memory enough.
        size = _BATCH if chain is None else _CHAIN_ENTRIES
        yield from _read_entries(cursor, "journal", "%s", int(start or 0), chain, size)
    finally:
        cursor.close()


def _copy_postgres(
    url: str,
    snapshot: str,
    names: list[str],
    work: _Work,
    folder: str,
    salt: Any,
    main: str,
    keep: int,
    result: Path,
) -> None:
    """In the copying process, from `snapshot`: while the replay runs, the biggest
    tables left (`names`, as `work` hands them out) spooled into `folder` (_spool),
    in their key's order, personal values as fingerprints: the rows as the replay
    holds them. Then, over the finished replay (`main`), those compared, and the
    biggest tables left read from the server and compared as they come; what is
    found pickled into `result`.

    Each row is fingerprinted as it comes off the server, and spooled at most
    once: loading the rows into SQLite to compare them there cost more than
    reading them from the server and fingerprinting them together.
    """
    import psycopg  # the driver the ledger's engine uses: installed with PostgreSQL's URL

    fingerprint = fingerprinter(salt)
    found: dict[str, tuple[list[Difference], int]] = {}
    with psycopg.connect(url) as source:
        # psycopg begins with these; the snapshot must be the transaction's first word.
        source.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        source.read_only = True
        source.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")
        spooled = []
        while not work.replayed.is_set() and (taken := work.first()) is not None:
            if work.abandoned.is_set():
                return
            table = schema.metadata.tables[names[taken]]
            _spool_table(source, table, fingerprint, _spool(Path(folder), table))
            spooled.append(table)
        if not work.wait_for_replay():
            return
        made = sqlite3.connect(main)
        try:
            for table in spooled:
                found[table.name] = _compare_spooled(made, table, Path(folder), keep)
            while (taken := work.first()) is not None:
                table = schema.metadata.tables[names[taken]]
                found[table.name] = _compare_streamed(made, source, table, fingerprint, keep)
        finally:
            made.close()
        source.rollback()
    result.write_bytes(pickle.dumps(found))


def _spool(folder: Path, table: sa.Table) -> Path:
    """Where a copying process spools a table's rows."""
    return folder / f"{table.name}.rows"


def _spool_table(source: Any, table: sa.Table, fingerprint: Any, path: Path) -> None:
    """One table from the server into `path`: batches of rows, pickled one after another."""
    prepared = fingerprinted_rows(table, fingerprint)
    with path.open("wb") as out, source.cursor(name=f"fundraiser_copy_{table.name}") as cursor:
        pickler = pickle.Pickler(out, protocol=pickle.HIGHEST_PROTOCOL)
        # Flat tuples of plain values: nothing to share or recurse into, and the memo
        # of every object written cost 7 times the writing itself.
        pickler.fast = True
        cursor.execute(ordered_select(table, table.name, postgresql=True))
        while batch := cursor.fetchmany(_BATCH):
            pickler.dump(prepared(batch))


def _spooled(path: Path) -> Iterator[tuple[Any, ...]]:
    """The rows _spool_table wrote, in their order."""
    with path.open("rb") as spool:
        while True:
            try:
                batch = pickle.load(spool)  # our own process's file, in a folder of our own
            except EOFError:
                return
            yield from batch


def _compare_spooled(
    made: Any, table: sa.Table, folder: Path, keep: int
) -> tuple[list[Difference], int]:
    """A table's replay, read in its key's order, against the rows spooled for it."""
    rows = made.execute(ordered_select(table, f"main.{table.name}"))
    try:
        return compare_rows(table, iter(rows), _spooled(_spool(folder, table)), keep)
    finally:
        rows.close()


def _compare_streamed(
    made: Any, source: Any, table: sa.Table, fingerprint: Any, keep: int
) -> tuple[list[Difference], int]:
    """A table's replay, read in its key's order, against the ledger's rows read from
    the server (`source`, in the snapshot) in the same order, fingerprinted as they come."""
    prepared = fingerprinted_rows(table, fingerprint)
    rows = made.execute(ordered_select(table, f"main.{table.name}"))
    cursor = source.cursor(name=f"fundraiser_compare_{table.name}")
    try:
        cursor.execute(ordered_select(table, table.name, postgresql=True))
        held = (
            row for batch in iter(lambda: cursor.fetchmany(_BATCH), []) for row in prepared(batch)
        )
        return compare_rows(table, iter(rows), held, keep)
    finally:
        cursor.close()
        rows.close()
