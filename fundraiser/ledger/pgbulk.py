"""PostgreSQL's bulk writes: a table's foreign keys checked once, not once per row.

PostgreSQL checks a foreign key with a trigger per inserted row: a lookup of the
row it names, locked FOR KEY SHARE (a write to that page, logged). An issue of
100,000 pledges makes about 300,000 of them. Inside a bulk write
(`Ledger.write(bulk_work=True)`), a COPY of at least SUSPEND_FROM rows into a
table with foreign keys drops them first, and the write adds them back before
it commits: ADD CONSTRAINT checks every row of the table with one join. The
constraints are in force at every commit; a row that breaks one refuses the
whole write, as the per-row check would (psycopg's ForeignKeyViolation, at the
end of the write instead of at its COPY).

Locks: dropping a foreign key takes ACCESS EXCLUSIVE on its table and on the
table it refers to, held to the commit. A reader of those tables (`fundraiser
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

from typing import Any

from sqlalchemy.engine import Connection

#: From this many rows in one COPY, its table's foreign keys wait for the commit.
SUSPEND_FROM = 10_000
# The dropped constraints of this write, by table: conn.info[_DROPPED] exists
# only inside a bulk write on PostgreSQL (see `allow`).
_DROPPED = "fundraiser.pgbulk.dropped"

# Only plain keys (no action on delete or update, not deferrable): without them
# between the drop and the commit, no statement of the write behaves otherwise.
_FOREIGN_KEYS = (
    "SELECT conname, pg_get_constraintdef(oid), confrelid::regclass::text FROM pg_constraint "
    "WHERE conrelid = to_regclass(%s) AND contype = 'f' AND confdeltype = 'a' "
    "AND confupdtype = 'a' AND NOT condeferrable ORDER BY conname"
)


def allow(conn: Connection) -> None:
    """This transaction is a bulk write: big COPYs may suspend foreign keys."""
    conn.info[_DROPPED] = {}


def forget(conn: Connection) -> None:
    """The bulk write has ended (committed or rolled back): nothing left to restore."""
    conn.info.pop(_DROPPED, None)


def suspend(conn: Connection, cursor: Any, table: str, rows: int) -> None:
    """Before a COPY of `rows` rows into `table`: drop its foreign keys, if this is a
    bulk write, the COPY is big enough, and no other transaction holds a lock on
    the tables involved."""
    dropped: dict[str, list[tuple[str, str]]] | None = conn.info.get(_DROPPED)
    if dropped is None or rows < SUSPEND_FROM or table in dropped:
        return
    cursor.execute(_FOREIGN_KEYS, (table,))
    found = cursor.fetchall()
    if not found:
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
    keys = [(str(name), str(definition)) for name, definition, _ in found]
    cursor.execute(
        f"ALTER TABLE {table} " + ", ".join(f'DROP CONSTRAINT "{name}"' for name, _ in keys)
    )
    dropped[table] = keys


def restore(conn: Connection) -> None:
    """Add back every foreign key this write dropped, each checked against all its
    table's rows (one join); a row that breaks one raises, and the write rolls back."""
    dropped: dict[str, list[tuple[str, str]]] | None = conn.info.get(_DROPPED)
    if not dropped:
        return
    cursor = conn.connection.cursor()
    try:
        # The checks are hash joins of 100,000s of keys: room to do them in memory,
        # for this transaction only.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        for table, keys in dropped.items():
            cursor.execute(
                f"ALTER TABLE {table} "
                + ", ".join(f'ADD CONSTRAINT "{name}" {definition}' for name, definition in keys)
            )
        dropped.clear()
    finally:
        cursor.close()
