"""ledger.reader: reading through the driver, never writing, only the schema this code writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundraiser.ledger import audit, open_ledger, schema
from fundraiser.ledger.reader import LATEST, open_reader
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create


def test_a_reader_of_its_own_reads_and_cannot_write(db_url: str) -> None:
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        create(
            tx,
            NewPledge(
                name="Ada", email="ada@example.org", address="1 Lane",
                amount=Money(5000, "GBP"), round="crowd",
            ),
        )  # fmt: skip
    ledger.dispose()
    with open_reader(db_url) as reader:
        assert reader is not None
        assert reader.one("SELECT count(*), sum(amount) FROM pledges") == (1, 5000)
        (entries,) = reader.one("SELECT count(*) FROM journal")
        with pytest.raises(Exception, match=r"(?i)read.?only"):
            reader.rows("DELETE FROM journal")
    again = open_ledger(db_url)
    with again.read() as conn:
        assert conn.execute(schema.journal.select()).all()[-1].seq == entries
    proof = audit.verify(again)
    assert proof.ok, proof.lines()
    again.dispose()


def test_a_missing_ledger_is_left_to_the_ledger_to_make(tmp_path: Path) -> None:
    path = tmp_path / "var" / "ledger.sqlite"
    with open_reader(f"sqlite:///{path}") as reader:
        assert reader is None
    assert not path.exists() and not path.parent.exists()


def test_migrations_end_at_the_version_the_reader_reads() -> None:
    from fundraiser.ledger import migrations

    assert migrations.LATEST == LATEST
    assert sorted(migrations.MIGRATIONS) == list(range(1, LATEST))
