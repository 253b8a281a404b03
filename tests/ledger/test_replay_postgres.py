"""The proof of a PostgreSQL ledger: its tables copied in a second process, from the
snapshot the journal is read in, and compared with the journal's replay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fundraiser.ledger import Ledger, audit, open_ledger, schema
from tests.conftest import PostgresServer
from tests.ledger.test_replay import history, tamper

pytestmark = [pytest.mark.postgres, pytest.mark.keep_it_all]


@pytest.fixture
def ledger(postgres: PostgresServer) -> Iterator[Ledger]:
    opened = open_ledger(postgres.new_database())
    yield opened
    opened.dispose()


def test_an_untouched_postgresql_ledger_replays_to_its_own_tables(ledger: Ledger) -> None:
    history(ledger)
    verdict = audit.verify(ledger)
    assert verdict.ok, verdict.lines()
    assert verdict.tables is not None and verdict.tables.changes >= 5


@pytest.mark.parametrize(
    ("sql", "table", "row", "column"),
    [
        ("UPDATE pledges SET amount = 500000 WHERE id = 1", "pledges", "id=1", "amount"),
        ("UPDATE pledges SET name = 'Mallory' WHERE id = 3", "pledges", "id=3", "name"),
        ("DELETE FROM outbox WHERE id = 1", "outbox", "id=1", "(row)"),
        (
            "INSERT INTO pledges (id, created_at, updated_at, person_key, name, email, address, "
            "round, amount, currency, status, source) VALUES (99, 'x', 'x', 'k', 'n', 'e', 'a', "
            "'crowd', 1, 'GBP', 'paid', 'offline')",
            "pledges",
            "id=99",
            "(row)",
        ),
    ],
)
def test_each_edit_of_a_postgresql_table_is_named(
    ledger: Ledger, sql: str, table: str, row: str, column: str
) -> None:
    history(ledger)
    tamper(ledger, sql)
    verdict = audit.verify(ledger)
    assert not verdict.ok and verdict.chain.ok
    assert verdict.tables is not None
    assert (table, row, column) in {(d.table, d.row, d.column) for d in verdict.tables.differences}
    assert "Mallory" not in "\n".join(verdict.lines())


def test_a_table_keyed_by_two_columns_is_copied_and_its_edit_named_with_values(
    ledger: Ledger,
) -> None:
    """Allotments (keyed by entry and pledge) take the copy's other path: a table
    filled, then indexed; the edit is named from the copy, its values shown."""
    history(ledger)
    with ledger.write() as tx:
        tx.insert(
            schema.members,
            ("number", "person_key", "name", "email", "address", "admitted_on", "created_at"),
            [(1, "b1@example.org", "Backer 1", "b1@example.org", "1 Road", "2027-03-01", tx.now)],
        )
        tx.insert(
            schema.register_entries,
            ("id", "member_number", "kind", "shares", "amount", "currency", "entry_date"),
            [(1, 1, "issue", 1, 5000, "GBP", "2027-03-01")],
            {"created_at": tx.now},
        )
        tx.insert(schema.allotments, ("entry_id", "pledge_id", "amount"), [(1, 1, 5000)])
        tx.record("test.issue", "register", {})
    assert audit.verify(ledger).ok
    tamper(ledger, "UPDATE allotments SET amount = 1 WHERE entry_id = 1")
    tamper(ledger, "UPDATE members SET name = 'Mallory' WHERE number = 1")
    verdict = audit.verify(ledger)
    assert verdict.tables is not None and not verdict.ok
    named = {(d.table, d.row, d.column): d for d in verdict.tables.differences}
    allotted = named[("allotments", "entry_id=1,pledge_id=1", "amount")]
    assert (allotted.journal, allotted.found) == (5000, 1)
    member = named[("members", "number=1", "name")]
    assert member.found == "(personal)" and "Mallory" not in "\n".join(verdict.lines())
