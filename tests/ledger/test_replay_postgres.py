"""The proof of a PostgreSQL ledger: its tables copied in a second process, from the
snapshot the journal is read in, and compared with the journal's replay."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fundraiser.ledger import Ledger, audit, open_ledger
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
