"""Schema version 4 (bank transactions, refund accounts, payouts), migrated forward."""

from __future__ import annotations

import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.ledger.migrations import LATEST, V4_REMAINDER_COLUMNS
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create


def test_a_version_3_ledger_migrates_forward_to_4_keeping_its_rows(db_url: str) -> None:
    assert LATEST >= 4
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        pid = create(tx, NewPledge("Ann", "a@x.org", "1 Road", Money(5000, "GBP"), "crowd"))
        tx.insert(
            schema.remainders,
            ("pledge_id", "person_key", "amount", "currency", "reason", "status", "created_at"),
            [(pid, "k", 100, "GBP", "fraction", "due", "2027-01-01")],
        )
        tx.record("refund.owed", f"pledge:{pid}", {"pledge": pid})
    with ledger.engine.begin() as conn:  # as a version 3 ledger was
        for table in (schema.bank_transactions, schema.refund_accounts):
            table.drop(conn)
        for column in V4_REMAINDER_COLUMNS:
            conn.execute(sa.text(f"ALTER TABLE remainders DROP COLUMN {column.name}"))
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=3, applied_at="earlier"))
    ledger.dispose()

    again = open_ledger(db_url)
    assert again.version() == LATEST
    with again.read() as conn:
        inspector = sa.inspect(conn)
        assert inspector.has_table("bank_transactions") and inspector.has_table("refund_accounts")
        columns = {c["name"] for c in inspector.get_columns("remainders")}
        assert {"sent_at", "payout_batch"} <= columns
        assert conn.execute(sa.select(schema.remainders.c.amount)).scalar() == 100
        migrated = conn.execute(
            sa.select(schema.journal.c.data).where(schema.journal.c.action == "ledger.migrate")
        ).scalars()
        assert any('"version":4' in data for data in migrated)
    assert again.verify().ok
    again.dispose()
