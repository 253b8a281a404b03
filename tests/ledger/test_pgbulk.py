"""PostgreSQL's bulk writes check a big COPY's foreign keys once, before the commit:
a row that breaks one is still refused, and every key is in force after."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
import sqlalchemy as sa

from fundraiser.ledger import Ledger, audit, open_ledger, pgbulk, schema
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create_many
from tests.conftest import PostgresServer

pytestmark = pytest.mark.postgres

BIG = pgbulk.SUSPEND_FROM
REMAINDER = ["pledge_id", "person_key", "amount", "currency", "reason", "status", "created_at"]


@pytest.fixture
def ledger(postgres: PostgresServer) -> Iterator[Ledger]:
    opened = open_ledger(postgres.new_database())
    with opened.write(bulk_work=True) as tx:
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
        tx.record("test.remainders", "remainders", {})
    assert during == []  # dropped for the COPY: the per-row checks did not run
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
