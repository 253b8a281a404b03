"""Schema version 6 (applications, fees, withdrawal requests), migrated forward."""

from __future__ import annotations

import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.ledger.migrations import LATEST
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create

NEW = ("applications", "fee_subscriptions", "fee_invoices", "withdrawal_requests")
#: Tables of later versions, which a version 5 ledger did not have either.
LATER = ("joins", "member_sessions", "member_changes")


def test_a_version_5_ledger_migrates_forward_to_6_keeping_its_rows(db_url: str) -> None:
    assert LATEST >= 6
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        create(tx, NewPledge("Ann", "a@x.org", "1 Road", Money(5000, "GBP"), "crowd"))
    with ledger.engine.begin() as conn:  # as a version 5 ledger was
        for name in [*reversed(LATER), *reversed(NEW)]:
            schema.metadata.tables[name].drop(conn)
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=5, applied_at="earlier"))
    ledger.dispose()

    again = open_ledger(db_url)
    assert again.version() == LATEST  # through 6, and on
    with again.read() as conn:
        inspector = sa.inspect(conn)
        assert all(inspector.has_table(name) for name in NEW)
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.pledges)).scalar() == 1
        migrated = conn.execute(
            sa.select(schema.journal.c.data).where(schema.journal.c.action == "ledger.migrate")
        ).scalars()
        assert any('"version":6' in data for data in migrated)
    assert again.verify().ok
    again.dispose()


def test_the_new_tables_are_proved_by_the_journal_and_keep_people_out_of_it() -> None:
    for name in NEW:
        assert schema.metadata.tables[name].info.get("replayed"), name
    assert schema.fee_subscriptions.c.stripe_customer.info.get("personal")
    assert schema.applications.c.reason.info.get("personal")
    assert schema.withdrawal_requests.c.note.info.get("personal")


def test_a_version_7_ledger_gains_the_member_page_tables_as_version_8(db_url: str) -> None:
    member_page = ("member_sessions", "member_changes")
    ledger = open_ledger(db_url)
    with ledger.engine.begin() as conn:  # as a version 7 ledger was
        for name in reversed(member_page):
            schema.metadata.tables[name].drop(conn)
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=7, applied_at="earlier"))
    ledger.dispose()
    again = open_ledger(db_url)
    assert again.version() == LATEST
    with again.read() as conn:
        assert all(sa.inspect(conn).has_table(name) for name in member_page)
    assert again.verify().ok
    again.dispose()
    for name in member_page:
        assert schema.metadata.tables[name].info.get("replayed"), name
    assert schema.member_sessions.c.link_digest.info.get("personal")
    assert schema.member_changes.c.value.info.get("personal")
