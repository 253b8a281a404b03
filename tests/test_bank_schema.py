"""Schema version 4 (bank transactions, refund accounts, payouts), migrated forward."""

from __future__ import annotations

import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.ledger.migrations import LATEST, V4_REMAINDER_COLUMNS
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create


def test_a_version_3_ledger_migrates_forward_to_4_keeping_its_rows(db_url: str) -> None:
    assert LATEST == 4
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        pid = create(tx, NewPledge("Ann", "a@x.org", "1 Road", Money(5000, "GBP"), "crowd"))
        tx.execute(
            schema.remainders.insert().values(
                pledge_id=pid,
                person_key="k",
                amount=100,
                currency="GBP",
                reason="fraction",
                status="due",
                created_at="2027-01-01",
            )
        )
    with ledger.engine.begin() as conn:  # as a version 3 ledger was
        for table in (schema.bank_transactions, schema.refund_accounts):
            table.drop(conn)
        for column in V4_REMAINDER_COLUMNS:
            conn.execute(sa.text(f"ALTER TABLE remainders DROP COLUMN {column.name}"))
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=3, applied_at="earlier"))
    ledger.dispose()

    again = open_ledger(db_url)
    assert again.version() == 4
    with again.read() as conn:
        inspector = sa.inspect(conn)
        assert inspector.has_table("bank_transactions") and inspector.has_table("refund_accounts")
        columns = {c["name"] for c in inspector.get_columns("remainders")}
        assert {"sent_at", "payout_batch"} <= columns
        assert conn.execute(sa.select(schema.remainders.c.amount)).scalar() == 100
        last = conn.execute(
            sa.select(schema.journal.c.action, schema.journal.c.data).order_by(
                schema.journal.c.seq.desc()
            )
        ).first()
        assert last is not None and last.action == "ledger.migrate" and '"version":4' in last.data
    assert again.verify().ok
    again.dispose()
