"""Schema version 10: on PostgreSQL, room on each page of pledges for their updates."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.ledger.migrations import LATEST
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create


def _fillfactor(conn: sa.Connection) -> list[str] | None:
    return conn.exec_driver_sql(
        "SELECT reloptions FROM pg_class WHERE oid = 'pledges'::regclass"
    ).scalar()


@pytest.mark.postgres
def test_stamping_every_pledge_leaves_their_indexes_alone(postgres: object) -> None:
    """The issue's stamp of 300 pledges in one write: nearly every update a HOT one
    (on full pages none would be; a page's last row may find its half used up)."""
    url = postgres.new_database()  # type: ignore[attr-defined]
    ledger = open_ledger(url)
    with ledger.write() as tx:
        for n in range(300):
            create(tx, NewPledge(f"B{n}", f"b{n}@x.org", "1 Road", Money(5000, "GBP"), "crowd"))
    with ledger.write() as tx:
        ids = [row[0] for row in tx.conn.execute(sa.select(schema.pledges.c.id))]
        assert tx.update(schema.pledges, {"id": ids}, allotted_at=tx.now) == 300
        tx.record("test.stamp", "pledges", {})
        hot = tx.conn.exec_driver_sql(
            "SELECT pg_stat_get_xact_tuples_hot_updated('pledges'::regclass)"
        ).scalar()
        assert _fillfactor(tx.conn) == ["fillfactor=50"]
    assert hot >= 270
    assert ledger.verify().ok
    ledger.dispose()


def test_a_version_9_ledger_migrates_to_10_keeping_its_pledges(db_url: str) -> None:
    assert LATEST >= 10
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        create(tx, NewPledge("Ann", "a@x.org", "1 Road", Money(5000, "GBP"), "crowd"))
    postgres = not ledger.is_sqlite
    with ledger.engine.begin() as conn:  # as a version 9 ledger was
        if postgres:
            conn.exec_driver_sql("ALTER TABLE pledges RESET (fillfactor)")
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=9, applied_at="earlier"))
    ledger.dispose()

    again = open_ledger(db_url)
    assert again.version() == LATEST
    with again.read() as conn:
        if postgres:
            assert _fillfactor(conn) == ["fillfactor=50"]
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.pledges)).scalar() == 1
    assert again.verify().ok
    again.dispose()
