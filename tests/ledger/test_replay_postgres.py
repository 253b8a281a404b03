"""The proof of a PostgreSQL ledger: its tables copied in a second process, from the
snapshot the journal is read in, and compared with the journal's replay."""

from __future__ import annotations

import multiprocessing
import uuid
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundraiser.ledger import Ledger, audit, open_ledger, replay, schema
from tests.conftest import PostgresServer
from tests.ledger.test_replay import (
    STEPS,
    TAMPERING,
    Step,
    history,
    proves_and_names_tampering,
    tamper,
)

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
    """Allotments (keyed by entry and pledge) are walked by both columns of their key;
    the edit is named with both, its values shown."""
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


def test_differences_are_named_in_the_tables_order_and_counted_past_keep(ledger: Ledger) -> None:
    # The pledges are compared in a process of their own, the other tables in
    # verify's: told in the tables' order; past `keep` only counted.
    history(ledger)
    tamper(ledger, "UPDATE pledges SET amount = amount + 1 WHERE id <> 3")
    tamper(ledger, "DELETE FROM outbox")
    found = replay.prove(ledger)
    assert [(d.table, d.row, d.column) for d in found.differences] == [
        *[("pledges", f"id={n}", "amount") for n in (1, 2, 4)],
        ("outbox", "id=1", "(row)"),
    ]
    assert (found.differences[0].journal + 1, found.more) == (found.differences[0].found, 0)
    cut = replay.prove(ledger, keep=2)
    assert [(d.table, d.row) for d in cut.differences] == [("pledges", "id=1"), ("pledges", "id=2")]
    assert cut.more == 2 and not cut.ok


def test_rows_missing_or_added_anywhere_in_a_table_are_named(ledger: Ledger) -> None:
    """The two sides are read in key order and walked together: a row the journal
    has and the table lacks, first, between or last, and one only the table has."""
    history(ledger)
    tamper(ledger, "UPDATE pledges SET round = 'seed' WHERE id = 4")
    tamper(ledger, "ALTER TABLE pledges DISABLE TRIGGER ALL")  # foreign keys: delete any row
    tamper(ledger, "DELETE FROM pledges WHERE id IN (1, 3)")
    tamper(
        ledger,
        "INSERT INTO pledges (id, created_at, updated_at, person_key, name, email, address, "
        "round, amount, currency, status, source) VALUES (0, 'x', 'x', 'k', 'n', 'e', 'a', "
        "'crowd', 1, 'GBP', 'paid', 'offline')",
    )
    found = replay.prove(ledger)
    assert [(d.table, d.row, d.column, d.journal, d.found) for d in found.differences] == [
        ("pledges", "id=0", "(row)", "has no such row", "has it"),
        ("pledges", "id=1", "(row)", "has this row", "does not"),
        ("pledges", "id=3", "(row)", "has this row", "does not"),
        ("pledges", "id=4", "round", "crowd", "seed"),
    ]


def test_only_a_mail_marked_sent_behind_the_journal_is_a_difference(ledger: Ledger) -> None:
    """Of the mail queue's states only "sent" is journalled: a claim is bookkeeping."""
    history(ledger)
    tamper(ledger, "UPDATE outbox SET status = 'sending', attempts = 3")
    assert audit.verify(ledger).ok
    tamper(ledger, "UPDATE outbox SET status = 'sent'")
    verdict = audit.verify(ledger)
    assert verdict.tables is not None
    assert [(d.table, d.row, d.column) for d in verdict.tables.differences] == [
        ("outbox", "id=1", "status")
    ]


@pytest.fixture
def icu_ledger(postgres: PostgresServer) -> Iterator[Ledger]:
    """A database whose text sorts as people read it (ICU, en-US: "in_a" before
    "in_B"), not byte by byte as SQLite's replay does ("in_B" before "in_a")."""
    import psycopg

    name = "icu_" + uuid.uuid4().hex[:12]
    with psycopg.connect(postgres.url().replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(
            f'CREATE DATABASE "{name}" TEMPLATE template0 LOCALE_PROVIDER icu '
            "ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        )
    opened = open_ledger(postgres.url(name))
    yield opened
    opened.dispose()


def test_a_table_keyed_by_text_is_compared_in_byte_order_whatever_the_collation(
    icu_ledger: Ledger,
) -> None:
    ledger = icu_ledger
    with ledger.write() as tx:
        tx.insert(
            schema.fee_subscriptions,
            ("id", "rate", "amount", "currency", "interval", "started_on"),
            [(1, "standard", 500, "GBP", "month", "2027-01-01")],
            {"created_at": tx.now, "updated_at": tx.now},
        )
        tx.insert(
            schema.fee_invoices,
            ("id", "subscription_id", "status", "amount", "period_start", "period_end"),
            [
                (key, 1, "paid", 500, "2027-01-01", "2027-02-01")
                for key in ("in_a", "in_B", "in_c", "in_D", "in_10", "in_9")
            ],
            {"currency": "GBP", "created_at": tx.now, "updated_at": tx.now},
        )
        tx.record("test.fees", "fees", {})
    with ledger.read() as conn:
        by_server = conn.exec_driver_sql("SELECT id FROM fee_invoices ORDER BY id").scalars().all()
    assert by_server.index("in_a") < by_server.index("in_B")  # the collation is not bytes
    verdict = audit.verify(ledger)
    assert verdict.ok, verdict.lines()
    tamper(ledger, "UPDATE fee_invoices SET amount = 5 WHERE id = 'in_c'")
    verdict = audit.verify(ledger)
    assert verdict.tables is not None
    assert [(d.table, d.row, d.column, d.journal, d.found) for d in verdict.tables.differences] == [
        ("fee_invoices", "id=in_c", "amount", 500, 5)
    ]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS, tampering=st.sampled_from(TAMPERING))
def test_random_postgresql_histories_prove_their_tables_and_every_tampering_is_named(
    postgres: PostgresServer, steps: list[Step], tampering: tuple[str, str]
) -> None:
    ledger = open_ledger(postgres.new_database())
    try:
        proves_and_names_tampering(ledger, steps, tampering)
    finally:
        ledger.dispose()


def test_the_chain_is_checked_in_the_replays_read_of_the_journal(ledger: Ledger) -> None:
    """verify reads a PostgreSQL journal once: an edited entry and a removed one still
    break the chain, where they are, as the chain's own check finds them."""
    history(ledger)
    with ledger.read() as conn:
        subject = conn.exec_driver_sql("SELECT subject FROM journal WHERE seq = 2").scalar()
    honest = audit.verify(ledger).chain
    assert honest.ok and honest == ledger.verify() and honest.entries >= 3
    tamper(ledger, "UPDATE journal SET subject = 'pledge:99' WHERE seq = 2")
    edited = audit.verify(ledger).chain
    assert (edited.broken_at, edited.entries) == (2, 2) and edited == ledger.verify()
    assert edited.reason == "its contents do not match its hash (edited after writing)"
    tamper(ledger, f"UPDATE journal SET subject = '{subject}' WHERE seq = 2")
    tamper(ledger, "DELETE FROM journal WHERE seq = 3")
    removed = audit.verify(ledger).chain
    assert (removed.broken_at, removed.reason) == (4, "entry 3 is missing (next is 4)")
    assert removed == ledger.verify()


def test_a_replay_that_fails_stops_the_copying_process_too(ledger: Ledger) -> None:
    """A journal entry that is not JSON stops the replay; the process copying the
    tables beside it stops as well, rather than wait for a replay that never ends."""
    history(ledger)
    tamper(ledger, """UPDATE journal SET data = '{"changes": [' WHERE seq = 2""")
    with pytest.raises(ValueError):
        audit.verify(ledger)
    assert multiprocessing.active_children() == []
