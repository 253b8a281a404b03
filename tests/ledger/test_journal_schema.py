"""Schema version 11: the journal without a unique index on its hashes."""

from __future__ import annotations

import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.ledger.migrations import LATEST
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create


def _unique_on_hash(conn: sa.Connection) -> bool:
    found = sa.inspect(conn).get_unique_constraints("journal")
    return any(constraint["column_names"] == ["hash"] for constraint in found)


def _as_version_10_was(conn: sa.Connection) -> None:
    """The journal as versions up to 10 made it: its hashes under a unique constraint."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ALTER TABLE journal ADD CONSTRAINT journal_hash_key UNIQUE (hash)")
    else:
        old = schema.journal.to_metadata(sa.MetaData(), name="journal_v10")
        old.append_constraint(sa.UniqueConstraint("hash"))
        old.create(conn)
        conn.exec_driver_sql("INSERT INTO journal_v10 SELECT * FROM journal")
        conn.exec_driver_sql("DROP TABLE journal")
        conn.exec_driver_sql("ALTER TABLE journal_v10 RENAME TO journal")
    conn.execute(schema.schema_version.delete())
    conn.execute(schema.schema_version.insert().values(version=10, applied_at="earlier"))


def _entries(conn: sa.Connection) -> list[tuple[object, ...]]:
    return [tuple(row) for row in conn.execute(sa.select(schema.journal).order_by("seq"))]


def test_a_version_10_ledger_migrates_to_11_keeping_every_entry(db_url: str) -> None:
    assert LATEST >= 11
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        for n in range(3):
            create(tx, NewPledge(f"B{n}", f"b{n}@x.org", "1 Road", Money(5000, "GBP"), "crowd"))
    with ledger.read() as conn:
        assert not _unique_on_hash(conn)  # a new ledger is made without it
    with ledger.engine.begin() as conn:
        _as_version_10_was(conn)
        assert _unique_on_hash(conn)
        before = _entries(conn)
    ledger.dispose()

    again = open_ledger(db_url)
    assert again.version() == LATEST
    with again.read() as conn:
        assert not _unique_on_hash(conn)
        after = _entries(conn)
    assert after[: len(before)] == before  # every entry as it was; the migration's after them
    assert [row[1] for row in after[len(before) :]] and after[-1][2] == "ledger.migrate"
    with again.write() as tx:  # the chain goes on from the copied head
        create(tx, NewPledge("Ann", "a@x.org", "2 Road", Money(5000, "GBP"), "crowd"))
    assert again.verify().ok
    again.dispose()
