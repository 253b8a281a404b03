"""PostgreSQL's bulk writes: a table's foreign keys checked once, not once per row;
its indexes built once, not added to row by row; copies made in the server.

PostgreSQL checks a foreign key with a trigger per inserted row: a lookup of the
row it names, locked FOR KEY SHARE (a write to that page, logged). An issue of
100,000 pledges makes about 300,000 of them. Inside a bulk write
(`Ledger.write(bulk_work=True)`), a COPY of at least SUSPEND_FROM rows into a
table with foreign keys drops them first, and the write adds them back before
it commits: ADD CONSTRAINT checks every row of the table with one join. The
constraints are in force at every commit; a row that breaks one refuses the
whole write, as the per-row check would (psycopg's ForeignKeyViolation, at the
end of the write instead of at its COPY). When the COPY brings at least as many
rows as the table holds, its other indexes go too and are built again first
(a unique one refuses a duplicate then: UniqueViolation, the write rolls back).

Locks: dropping a foreign key takes ACCESS EXCLUSIVE on its table and on the
table it refers to, held to the commit (an index: on its table; an import's
pledges). A reader of those tables (`fundraiser
serve`'s figures, a private page) waits for the rest of the bulk write, then
sees it whole; before, it read the tables as they were before the write. The
bulk write holds the ledger's write lock already, so writers waited anyway.
The drop never waits for a lock (LOCK TABLE ... NOWAIT first): when another
transaction holds one on those tables (a reader mid-read, a writer waiting for
the ledger's lock with its pledge row written), the keys stay and are checked
per row. Waiting there could close a circle (that writer waits for our ledger
lock, we for its table lock), which PostgreSQL breaks by failing one of us.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import pgcopy

#: From this many rows in one COPY, its table's foreign keys wait for the commit.
SUSPEND_FROM = 10_000
# The dropped constraints of this write, by table: conn.info[_DROPPED] exists
# only inside a bulk write on PostgreSQL (see `allow`).
_DROPPED = "fundraiser.pgbulk.dropped"
# Set by `indexes_after`: this bulk write may also drop and rebuild indexes.
_INDEXES_AFTER = "fundraiser.pgbulk.indexes_after"
# Set inside `known`: source values this write holds, by (table, column).
_KNOWN = "fundraiser.pgbulk.known"

# Only plain keys (no action on delete or update, not deferrable): without them
# between the drop and the commit, no statement of the write behaves otherwise.
_FOREIGN_KEYS = (
    "SELECT conname, pg_get_constraintdef(oid), confrelid::regclass::text FROM pg_constraint "
    "WHERE conrelid = to_regclass(%s) AND contype = 'f' AND confdeltype = 'a' "
    "AND confupdtype = 'a' AND NOT condeferrable ORDER BY conname"
)


# A table's other indexes: not its primary key, none a foreign key refers to
# (those stay). Each as the statement that drops it and the one that makes it
# again; a unique constraint is dropped and added back as one.
_INDEXES = (
    "SELECT coalesce(c.conname, i.indexrelid::regclass::text), c.conname IS NOT NULL, "
    "coalesce(pg_get_constraintdef(c.oid), pg_get_indexdef(i.indexrelid)) "
    "FROM pg_index AS i LEFT JOIN pg_constraint AS c "
    "ON c.conindid = i.indexrelid AND c.conrelid = i.indrelid AND c.contype IN ('u', 'x') "
    "WHERE i.indrelid = to_regclass(%s) AND NOT i.indisprimary "
    "AND NOT EXISTS (SELECT 1 FROM pg_constraint AS f WHERE f.contype = 'f' "
    "AND f.conindid = i.indexrelid) ORDER BY 1"
)


def allow(conn: Connection) -> None:
    """This transaction is a bulk write: big COPYs may suspend foreign keys and indexes."""
    conn.info[_DROPPED] = {}


def indexes_after(conn: Connection) -> bool:
    """In this bulk write (PostgreSQL), a big COPY into a table no bigger than it may
    drop the table's other indexes and build them before the commit.

    Asked for by a write that looks no row up by those indexes after filling the
    table (an import's pledges, an issue's rows): until the commit such a lookup
    would read the whole table. A statement's posting does look its remainders
    up by pledge, so it does not ask. Nothing on SQLite (False).
    """
    if _DROPPED not in conn.info:
        return False
    conn.info[_INDEXES_AFTER] = True
    return True


def sort_in_memory(conn: Connection) -> None:
    """In this bulk write (PostgreSQL), sorts and hashes of whole tables stay in memory.

    An issue reads its 100,000 paid pledges in id order: with the server's 4 MB
    of work_mem that sort spills to disk (about 10 MB of temporary files),
    before the statistics of a table just imported exist to choose its index
    instead. This transaction only; nothing on SQLite.
    """
    if _DROPPED in conn.info:
        conn.exec_driver_sql("SET LOCAL work_mem = '64MB'")


def forget(conn: Connection) -> None:
    """The bulk write has ended (committed or rolled back): nothing left to restore."""
    conn.info.pop(_DROPPED, None)
    conn.info.pop(_INDEXES_AFTER, None)
    conn.info.pop(_KNOWN, None)


@contextmanager
def known(conn: Connection, source: str, values: Mapping[str, Mapping[Any, Any]]) -> Iterator[None]:
    """Inside this block of a bulk write (PostgreSQL), a copy from `source` whose
    copied columns are all in `values` (column -> {source key: value}) and names
    only keys found there sends those values with its rows (COPY straight into
    the table) instead of joining `source` in the server.

    The caller vouches that each value is the source row's as the table holds it
    now (read in this write, which changes none of them inside the block): the
    rows are then those the join would make. The change is journalled as the
    copy all the same, and replay makes it by the join. Nothing on SQLite, nor
    outside a bulk write.
    """
    if _DROPPED not in conn.info:
        yield
        return
    conn.info[_KNOWN] = (source, values)
    try:
        yield
    finally:
        conn.info.pop(_KNOWN, None)


def suspend(conn: Connection, cursor: Any, table: str, rows: int) -> None:
    """Before a COPY of `rows` rows into `table`: drop its foreign keys, and its other
    indexes when the COPY brings at least as many rows as the table holds and the
    write asked for it (`indexes_after`); if this is a bulk write, the COPY is big
    enough, and no other transaction holds a lock on the tables involved.

    An index built once over all the rows costs half what inserting each row
    into it costs (100,000 pledges: 0.3 s of the server's CPU against 0.7 s);
    a table already bigger than the COPY keeps its indexes, which would cost
    more to build again than the rows cost to add.
    """
    dropped: dict[str, list[str]] | None = conn.info.get(_DROPPED)
    if dropped is None or rows < SUSPEND_FROM or table in dropped:
        return
    cursor.execute(_FOREIGN_KEYS, (table,))
    found = cursor.fetchall()
    indexes = []
    if conn.info.get(_INDEXES_AFTER):
        cursor.execute(_INDEXES, (table,))
        indexes = cursor.fetchall()
    if indexes:  # the table's rows, counted up to the COPY's (an empty table: none)
        cursor.execute(f"SELECT count(*) FROM (SELECT FROM {table} LIMIT %s) AS t", (rows,))
        if int(cursor.fetchone()[0]) >= rows:
            indexes = []
    if not found and not indexes:
        return
    import psycopg  # the driver of every PostgreSQL ledger

    locked = ", ".join(sorted({table, *(str(referred) for _, _, referred in found)}))
    cursor.execute("SAVEPOINT fundraiser_keys")
    try:
        cursor.execute(f"LOCK TABLE {locked} IN ACCESS EXCLUSIVE MODE NOWAIT")
    except psycopg.errors.LockNotAvailable:
        cursor.execute("ROLLBACK TO SAVEPOINT fundraiser_keys")
        cursor.execute("RELEASE SAVEPOINT fundraiser_keys")
        return
    cursor.execute("RELEASE SAVEPOINT fundraiser_keys")
    drops = [f'DROP CONSTRAINT "{name}"' for name, _, _ in found]
    drops += [f'DROP CONSTRAINT "{name}"' for name, constraint, _ in indexes if constraint]
    if drops:
        cursor.execute(f"ALTER TABLE {table} " + ", ".join(drops))
    for name, constraint, _ in indexes:
        if not constraint:
            cursor.execute(f"DROP INDEX {name}")  # regclass's text: quoted where it must be
    # Added back in this order: the indexes first, then the keys (one statement).
    again = [
        f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}' if constraint else definition
        for name, constraint, definition in indexes
    ]
    if found:
        again.append(
            f"ALTER TABLE {table} "
            + ", ".join(f'ADD CONSTRAINT "{name}" {definition}' for name, definition, _ in found)
        )
    dropped[table] = again


def restore(conn: Connection) -> None:
    """Make again every index and add back every foreign key this write dropped, each
    checked against all its table's rows (a sort, a join); a row that breaks one
    (a duplicate, a key naming nothing) raises, and the write rolls back."""
    dropped: dict[str, list[str]] | None = conn.info.get(_DROPPED)
    if not dropped:
        return
    cursor = conn.connection.cursor()
    try:
        # The checks are hash joins of 100,000s of keys: room to do them in memory,
        # for this transaction only.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        for statements in dropped.values():
            for statement in statements:
                cursor.execute(statement)
        dropped.clear()
    finally:
        cursor.close()


def run_listed(
    conn: Connection, sql: str, params: Sequence[Any], listed: Sequence[Any]
) -> int | None:
    """An UPDATE or DELETE naming its rows by one list (`... IN ({in})` in `sql`, `?`
    for the other values) as one statement; the rows it touched. None when the list
    is neither all integers nor all text: the caller sends it in parts.

    The list goes as one array (`= ANY`), not as thousands of placeholders, which
    psycopg would parse in Python for every statement (an issue stamps 100,000
    pledges: 20 statements of 5,000 placeholders cost more than the UPDATE
    itself). Integers go as the array's text, which the server reads; text as
    a list, typed by psycopg.
    """
    if not listed:
        return 0
    if all(type(value) is int for value in listed):
        array: Any = "{" + ",".join(map(str, listed)) + "}"
        cast = "::bigint[]"
    elif all(type(value) is str for value in listed):
        array, cast = list(listed), "::text[]"
    else:
        return None
    text = sql.replace("IN ({in})", f"= ANY(%s{cast})").replace("?", "%s")
    cursor = conn.connection.cursor()
    try:
        cursor.execute(text, [*params, array])
        return int(cursor.rowcount)
    finally:
        cursor.close()


# The copy table of one insert_copying: only this transaction sees it, and its
# rows are never logged (a temporary table).
_COPY_TABLE = "fundraiser_copying"


def insert_copying(
    conn: Connection,
    cursor: Any,
    table: sa.Table,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    constants: Mapping[str, Any],
    source: sa.Table,
    by: str,
    copies: Mapping[str, str],
) -> int:
    """Rows whose `copies` columns take the values of the `source` row named by their
    `by` value, copied in the server; how many went in (a row naming no source row
    does not).

    The rows' own values go through COPY into a temporary table, and one INSERT
    ... SELECT joins it to the source. Reading the source values out (95,000 keys
    for an issue's remainders) and sending them back in every row cost the
    client more than the join costs the server.
    """
    if _copy_known(conn, cursor, table, rows, columns, constants, source, by, copies):
        return len(rows)
    key = next(iter(source.primary_key.columns)).name
    dialect = conn.dialect

    def type_of(column: sa.Column[Any]) -> str:
        return str(column.type.compile(dialect=dialect))

    # `by` may be a value for the lookup only: then it has the source key's type.
    typed = [table.c[name] if name in table.c else source.c[key] for name in columns]
    made = [f'"{name}" {type_of(column)}' for name, column in zip(columns, typed, strict=True)]
    cursor.execute(f"CREATE TEMPORARY TABLE {_COPY_TABLE} ({', '.join(made)}) ON COMMIT DROP")
    types = pgcopy.binary_types(typed, rows, range(len(columns)))
    with pgcopy.copy_in(cursor, _COPY_TABLE, types) as copy:
        write = copy.write_row
        for row in rows:
            write(row)
    own = [name for name in columns if name != by or name in table.c]
    names = [*own, *constants, *copies]
    picked = [
        *(f'v."{name}"' for name in own),
        *(f"%s::{type_of(table.c[name])}" for name in constants),
        *(f's."{name}"' for name in copies.values()),
    ]
    suspend(conn, cursor, table.name, len(rows))
    # Each row finds its source row by the source's key, an index lookup. Left
    # to itself the planner hashes the whole source table for each part (an
    # issue's remainders: 100,000 pledges read for each 20,000 rows, twice the time).
    cursor.execute("SET LOCAL enable_hashjoin = off; SET LOCAL enable_mergejoin = off")
    cursor.execute(
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(picked)} "
        f'FROM {_COPY_TABLE} AS v JOIN {source.name} AS s ON s."{key}" = v."{by}"',
        list(constants.values()),
    )
    done = int(cursor.rowcount)
    cursor.execute("RESET enable_hashjoin; RESET enable_mergejoin")
    # Gone now, so the next copy of this write makes its own (a failed write's goes
    # with its rollback).
    cursor.execute(f"DROP TABLE {_COPY_TABLE}")
    return done


def _copy_known(
    conn: Connection,
    cursor: Any,
    table: sa.Table,
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    constants: Mapping[str, Any],
    source: sa.Table,
    by: str,
    copies: Mapping[str, str],
) -> bool:
    """insert_copying's rows COPYed straight into `table` with the copied values the
    write holds (`known`); False, having sent nothing, when it holds not all of them.

    An issue's remainders take their key from their pledge: the join's index
    lookups and the temporary table cost the server more than the keys cost the
    client, which read them in this write (100,000 pledges: 150,000 remainders).
    """
    found = conn.info.get(_KNOWN)
    if found is None or found[0] != source.name:
        return False
    held: Mapping[str, Mapping[Any, Any]] = found[1]
    if not all(name in held for name in copies.values()):
        return False
    lookups = [held[name] for name in copies.values()]
    at = list(columns).index(by)
    if not all(row[at] in lookup for lookup in lookups for row in rows):
        return False  # a row whose source the write does not hold: the join decides
    own = [i for i, name in enumerate(columns) if name != by or name in table.c]
    names = ", ".join([*(columns[i] for i in own), *constants, *copies])
    extra = tuple(constants.values())
    suspend(conn, cursor, table.name, len(rows))
    types = pgcopy.binary_types(
        [table.c[name] for name in [*(columns[i] for i in own), *constants, *copies]],
        rows,
        own,
        [*((value,) for value in extra), *(lookup.values() for lookup in lookups)],
    )
    with pgcopy.copy_in(cursor, f"{table.name} ({names})", types) as copy:
        write = copy.write_row
        if len(own) == len(columns) and len(lookups) == 1:  # an issue's remainders
            lookup = lookups[0]
            for row in rows:
                write((*row, *extra, lookup[row[at]]))
        else:
            for row in rows:
                key = row[at]
                write((*(row[i] for i in own), *extra, *(lookup[key] for lookup in lookups)))
    return True
