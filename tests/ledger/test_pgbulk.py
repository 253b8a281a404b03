"""PostgreSQL's bulk writes check a big COPY's foreign keys once, before the commit:
a row that breaks one is still refused, and every key is in force after."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from fundraiser.ledger import Ledger, Tx, audit, bulk, changes, open_ledger, pgbulk, schema
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create_many
from tests.conftest import PostgresServer

pytestmark = pytest.mark.postgres

BIG = pgbulk.SUSPEND_FROM
REMAINDER = ["pledge_id", "person_key", "amount", "currency", "reason", "status", "created_at"]


@pytest.fixture
def ledger(postgres: PostgresServer) -> Iterator[Ledger]:
    opened = open_ledger(postgres.new_database())
    with opened.write() as tx:
        # Autovacuum's lock on a table just filled makes the drop back off (NOWAIT, by
        # design): these tests would then depend on when it runs.
        for table in ("pledges", "members", "remainders"):
            tx.conn.exec_driver_sql(f"ALTER TABLE {table} SET (autovacuum_enabled = false)")
    with opened.write(bulk_work=True) as tx:
        pgbulk.indexes_after(tx.conn)
        create_many(
            tx,
            [
                NewPledge(f"B{n}", f"b{n}@x.org", "1 Road", Money(5000, "GBP"), "crowd")
                for n in range(BIG)
            ],
        )
    yield opened
    opened.dispose()


def remainders(pledge_ids: range | list[int]) -> list[tuple[object, ...]]:
    return [(p, f"key-{p}", 100, "GBP", "scaled back", "due", "now") for p in pledge_ids]


def foreign_keys(conn: sa.Connection, table: str) -> list[tuple[str, bool]]:
    return [
        (str(name), bool(valid))
        for name, valid in conn.exec_driver_sql(
            "SELECT conname, convalidated FROM pg_constraint "
            f"WHERE conrelid = '{table}'::regclass AND contype = 'f'"
        )
    ]


def count(ledger: Ledger, table: sa.Table) -> int:
    with ledger.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() or 0)


def test_a_big_copy_checks_its_keys_once_at_the_end_and_keeps_them(ledger: Ledger) -> None:
    with ledger.write(bulk_work=True) as tx:
        tx.insert(schema.remainders, REMAINDER, remainders(range(1, BIG + 1)))
        during = foreign_keys(tx.conn, "remainders")
        kept = indexes(tx.conn, "remainders")
        tx.record("test.remainders", "remainders", {})
    assert during == []  # dropped for the COPY: the per-row checks did not run
    # Its indexes were not asked for (pgbulk.indexes_after): both stayed.
    assert [d.split(" ON ")[0] for d in kept] == [
        "CREATE INDEX ix_remainders_pledge_id",
        "CREATE UNIQUE INDEX remainders_pkey",
    ]
    with ledger.read() as conn:
        assert foreign_keys(conn, "remainders") == [("remainders_pledge_id_fkey", True)]
        # In force again: a row naming no pledge is refused.
        with pytest.raises(sa.exc.IntegrityError, match="remainders_pledge_id_fkey"):
            conn.exec_driver_sql(
                "INSERT INTO remainders (id, pledge_id, person_key, amount, currency, reason, "
                "status, created_at) VALUES (%s, %s, 'k', 1, 'GBP', 'x', 'due', 'now')",
                (BIG + 1, BIG + 99),
            )
    assert count(ledger, schema.remainders) == BIG
    assert audit.verify(ledger).ok  # and the journal proves the tables


def test_a_row_naming_no_pledge_refuses_the_whole_bulk_write(ledger: Ledger) -> None:
    rows = remainders([*range(1, BIG), BIG + 500])  # the last names no pledge
    refused = pytest.raises(psycopg.errors.ForeignKeyViolation, match=f"\\({BIG + 500}\\) is not")
    with refused, ledger.write(bulk_work=True) as tx:
        tx.insert(schema.remainders, REMAINDER, rows)
        tx.record("test.remainders", "remainders", {})
    assert count(ledger, schema.remainders) == 0
    with ledger.read() as conn:
        assert foreign_keys(conn, "remainders") == [("remainders_pledge_id_fkey", True)]


def test_a_small_or_ordinary_write_keeps_its_keys_checked_per_row(ledger: Ledger) -> None:
    with ledger.write() as tx:  # not a bulk write
        tx.insert(schema.remainders, REMAINDER, remainders(range(1, BIG + 1)))
        assert foreign_keys(tx.conn, "remainders") == [("remainders_pledge_id_fkey", True)]
        tx.record("test.remainders", "remainders", {})
    with ledger.write(bulk_work=True) as tx:  # bulk, but small
        tx.delete(schema.remainders, {"id": list(range(1, BIG + 1))})
        tx.insert(schema.remainders, REMAINDER, remainders(range(1, 11)))
        assert foreign_keys(tx.conn, "remainders") == [("remainders_pledge_id_fkey", True)]
        tx.record("test.remainders", "remainders again", {})
    assert count(ledger, schema.remainders) == 10


def test_a_reader_in_a_transaction_keeps_the_keys_and_is_not_blocked(
    ledger: Ledger, postgres: PostgresServer
) -> None:
    """A transaction that has read pledges holds a lock the drop would wait for: the
    bulk write does not wait, and checks per row."""
    with ledger.engine.connect() as reader:
        assert reader.execute(sa.select(sa.func.count()).select_from(schema.pledges)).scalar()
        with ledger.write(bulk_work=True) as tx:
            tx.insert(schema.remainders, REMAINDER, remainders(range(1, BIG + 1)))
            assert foreign_keys(tx.conn, "remainders") == [("remainders_pledge_id_fkey", True)]
            tx.record("test.remainders", "remainders", {})
        # The reader's transaction is still open and still reads.
        assert reader.execute(sa.select(sa.func.count()).select_from(schema.pledges)).scalar()
        reader.rollback()
    assert count(ledger, schema.remainders) == BIG


def indexes(conn: sa.Connection, table: str) -> list[str]:
    return sorted(
        str(definition)
        for (definition,) in conn.exec_driver_sql(
            f"SELECT indexdef FROM pg_indexes WHERE tablename = '{table}'"
        )
    )


def constraints(conn: sa.Connection, table: str) -> list[str]:
    return sorted(
        f"{name} {definition}"
        for name, definition in conn.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            f"WHERE conrelid = '{table}'::regclass"
        )
    )


def test_a_big_copy_into_an_empty_table_builds_its_indexes_after_and_keeps_them(
    ledger: Ledger, postgres: PostgresServer
) -> None:
    fresh = open_ledger(postgres.new_database())
    try:
        with fresh.read() as conn:
            made = {t: (indexes(conn, t), constraints(conn, t)) for t in ("pledges", "remainders")}
    finally:
        fresh.dispose()
    with ledger.write(bulk_work=True) as tx:
        pgbulk.indexes_after(tx.conn)
        tx.insert(schema.remainders, REMAINDER, remainders(range(1, BIG + 1)))
        during = indexes(tx.conn, "remainders")
        tx.record("test.remainders", "remainders", {})
    # Only the primary key stayed for the COPY; the pledge_id index came back after.
    assert during == ["CREATE UNIQUE INDEX remainders_pkey ON public.remainders USING btree (id)"]
    with ledger.read() as conn:
        # The fixture's pledges went into an empty table too: every index and
        # constraint is as a new ledger has it.
        for table in ("pledges", "remainders"):
            assert (indexes(conn, table), constraints(conn, table)) == made[table]
        found = conn.exec_driver_sql(
            "SELECT count(*) FROM remainders WHERE pledge_id = %s", (BIG // 2,)
        ).scalar()
    assert found == 1
    assert audit.verify(ledger).ok


def test_a_duplicate_refuses_the_whole_write_when_its_unique_index_is_built_again(
    ledger: Ledger,
) -> None:
    members = [
        (n, f"key-{n}", f"M{n}", "m@x.org", "1 Road", "2026-01-01", "now") for n in range(BIG)
    ]
    members.append((BIG, "key-7", "Again", "a@x.org", "2 Road", "2026-01-01", "now"))
    columns = ["number", "person_key", "name", "email", "address", "admitted_on", "created_at"]
    refused = pytest.raises(psycopg.errors.UniqueViolation, match="key-7")
    with refused, ledger.write(bulk_work=True) as tx:
        pgbulk.indexes_after(tx.conn)
        tx.insert(schema.members, columns, members)
        assert "members_person_key_key" not in " ".join(constraints(tx.conn, "members"))
        tx.record("test.members", "members", {})
    assert count(ledger, schema.members) == 0
    with ledger.read() as conn:
        assert "members_person_key_key UNIQUE (person_key)" in constraints(conn, "members")


def test_a_table_bigger_than_the_copy_keeps_its_indexes(ledger: Ledger) -> None:
    with ledger.read() as conn:
        before = indexes(conn, "pledges")
    with ledger.write(bulk_work=True) as tx:
        pgbulk.indexes_after(tx.conn)
        create_many(
            tx,
            [
                NewPledge(f"C{n}", f"c{n}@x.org", "1 Road", Money(5000, "GBP"), "crowd")
                for n in range(BIG)
            ],
        )
        assert indexes(tx.conn, "pledges") == before  # BIG rows there already: kept
    assert count(ledger, schema.pledges) == 2 * BIG
    assert audit.verify(ledger).ok


def test_a_change_naming_its_rows_by_a_list_makes_one_statement_of_it(ledger: Ledger) -> None:
    with ledger.write() as tx:
        tx.insert(schema.remainders, REMAINDER, remainders(range(1, 101)))
        tx.record("test.remainders", "remainders", {})
    with ledger.write() as tx:
        assert tx.update(schema.remainders, {"id": list(range(1, 51))}, status="refunded") == 50
        reasons = ["scaled back", "not a reason"]
        assert tx.update(schema.remainders, {"reason": reasons, "status": "due"}, amount=7) == 50
        assert tx.delete(schema.remainders, {"id": [1, 2, 200]}) == 2
        tx.record("test.remainders", "changed", {})
    with ledger.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT status, amount, count(*) FROM remainders GROUP BY 1, 2 ORDER BY 1"
        ).all()
    assert [tuple(r) for r in rows] == [("due", 7, 50), ("refunded", 100, 48)]
    assert audit.verify(ledger).ok  # the replay makes the same changes


KEY_FROM_PLEDGE = changes.Copy("pledges", "pledge_id", {"person_key": "person_key"})
DUE = {"currency": "GBP", "status": "due", "created_at": "now"}


def pledge_keys(tx: Tx, ids: range) -> dict[int, str]:
    query = sa.select(schema.pledges.c.id, schema.pledges.c.person_key)
    found = tx.execute(query.where(schema.pledges.c.id.in_(list(ids))))
    return {row[0]: row[1] for row in found}


def remainder_keys(ledger: Ledger) -> dict[int, str]:
    with ledger.read() as conn:
        query = sa.select(schema.remainders.c.pledge_id, schema.remainders.c.person_key)
        return {row[0]: row[1] for row in conn.execute(query)}


def insert_remainders(tx: Tx, held: dict[int, str]) -> int:
    """Remainders for pledges 1-200 copying their pledges' keys, with `held` as the
    keys this write says it holds (pgbulk.known); journalled."""
    rows = [(p, 100, "scaled back") for p in range(1, 201)]
    with pgbulk.known(tx.conn, "pledges", {"person_key": held}):
        done = tx.insert(
            schema.remainders, ["pledge_id", "amount", "reason"], rows, DUE, copy=KEY_FROM_PLEDGE
        )
    tx.record("test.remainders", "remainders", {})
    return done


def test_a_copy_whose_values_the_write_holds_goes_in_with_them(ledger: Ledger) -> None:
    with ledger.write(bulk_work=True) as tx:
        keys = pledge_keys(tx, range(1, 201))
        done = insert_remainders(tx, keys)
    assert done == 200
    assert remainder_keys(ledger) == keys  # each its pledge's key, as the join gives
    assert audit.verify(ledger).ok  # the journal holds the copy; the replay joins


@pytest.mark.tampers
def test_a_held_value_that_is_not_the_tables_is_caught_by_verify(ledger: Ledger) -> None:
    """The held values are trusted at the write (that is their point), so a caller
    that got one wrong writes it; the journal still says "copied from the pledge",
    and the replay, which copies from the pledge, names the difference."""
    with ledger.write(bulk_work=True) as tx:
        keys = pledge_keys(tx, range(1, 201))
        wrong = {**keys, 7: keys[8]}
        insert_remainders(tx, wrong)
    assert remainder_keys(ledger)[7] == keys[8]  # went straight in: no join
    verdict = audit.verify(ledger)
    assert not verdict.ok
    assert any("remainders" in line and "person_key" in line for line in verdict.lines())


@pytest.mark.parametrize("bulk_work", [True, False])
def test_a_copy_the_write_does_not_hold_whole_is_made_by_the_join(
    ledger: Ledger, bulk_work: bool
) -> None:
    """Held values that miss a row's source, or a write that is not a bulk one:
    the server joins, so the values are the table's (wrong held ones are unused)."""
    with ledger.write(bulk_work=bulk_work) as tx:
        keys = pledge_keys(tx, range(1, 201))
        held = {p: "not-the-key" for p in range(1, 201 if not bulk_work else 200)}
        done = insert_remainders(tx, held)
    assert done == 200
    assert remainder_keys(ledger) == keys
    assert audit.verify(ledger).ok


def test_a_bulk_write_may_sort_in_memory_for_itself_only(ledger: Ledger) -> None:
    def work_mem(conn: sa.Connection) -> str:
        return str(conn.exec_driver_sql("SHOW work_mem").scalar())

    with ledger.read() as conn:
        default = work_mem(conn)
    with ledger.write() as tx:  # not a bulk write: nothing
        pgbulk.sort_in_memory(tx.conn)
        assert work_mem(tx.conn) == default
        tx.record("test.nothing", "nothing", {})
    with ledger.write(bulk_work=True) as tx:
        pgbulk.sort_in_memory(tx.conn)
        assert work_mem(tx.conn) == "64MB"
        tx.record("test.nothing", "nothing", {})
    with ledger.read() as conn:  # the pool's connection again: its setting is the server's
        assert work_mem(conn) == default


def test_a_bulk_reader_fetches_from_a_cursor_on_the_server_a_batch_at_a_time(
    ledger: Ledger,
) -> None:
    """The driver holds a batch, not the whole result; a second reader and other
    statements may run on the connection meanwhile; the cursor is closed after."""

    def cursors(conn: sa.Connection) -> int:
        return int(conn.exec_driver_sql("SELECT count(*) FROM pg_cursors").scalar() or 0)

    series = sa.func.generate_series(1, 25_000).table_valued("n").render_derived(name="s")
    numbers = sa.select(series.c.n)
    ids = sa.select(schema.pledges.c.id).order_by(schema.pledges.c.id)
    with ledger.read() as conn:
        rows = bulk.each_row(conn, numbers)
        first = [next(rows) for _ in range(3)]
        assert cursors(conn) == 1  # open on the server, the rest not yet fetched
        pledge_ids = [row[0] for row in bulk.each_row(conn, ids)]
        assert cursors(conn) == 1  # the second reader's closed when it ended
        rest = list(rows)
        assert cursors(conn) == 0
    assert [row[0] for row in first + rest] == list(range(1, 25_001))
    assert len(pledge_ids) == BIG and pledge_ids == sorted(pledge_ids)
