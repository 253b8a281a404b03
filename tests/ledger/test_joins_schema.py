"""Schema version 7 (joins made on the site's join page), migrated forward."""

from __future__ import annotations

import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.ledger.migrations import LATEST
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create


def test_a_version_6_ledger_migrates_forward_to_7_keeping_its_rows(db_url: str) -> None:
    assert LATEST >= 7
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        create(tx, NewPledge("Ann", "a@x.org", "1 Road", Money(5000, "GBP"), "crowd"))
    with ledger.engine.begin() as conn:  # as a version 6 ledger was
        schema.joins.drop(conn)
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=6, applied_at="earlier"))
    ledger.dispose()

    again = open_ledger(db_url)
    assert again.version() == LATEST
    with again.read() as conn:
        assert sa.inspect(conn).has_table("joins")
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.pledges)).scalar() == 1
    assert again.verify().ok
    again.dispose()


def test_joins_are_proved_by_the_journal_and_keep_the_mandate_out_of_it() -> None:
    assert schema.joins.info.get("replayed")
    assert schema.joins.c.mandate.info.get("personal")
