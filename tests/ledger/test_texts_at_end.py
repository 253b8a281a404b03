"""A write may make its big changes' journal texts as it ends (Tx.texts_at_end),
while PostgreSQL builds what the bulk write put off: the journal it leaves is
the one a write making them as it goes leaves, and a refusal at the end leaves
nothing behind. Texts a child makes (an import's batches) are taken a change
later: one child at a time, none left when the write fails."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

from fundraiser.ledger import Ledger, audit, changes, open_ledger, pgbulk, schema, tx
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create_many
from tests.conftest import PostgresServer
from tests.processes import children_of_this_process

PLEDGES = 2_000
# Two parts and a bit: the remainders go in as three journal entries of rows.
ROWS = 2 * tx.PART + 500
KEY_FROM_PLEDGE = changes.Copy("pledges", "pledge_id", {"person_key": "person_key"})
DUE = {"currency": "GBP", "status": "due", "created_at": "now"}


def new_ledger(url: str) -> Ledger:
    opened = open_ledger(url)
    with opened.write(bulk_work=True) as write:
        create_many(
            write,
            [
                NewPledge(f"B{n}", f"b{n}@x.org", "1 Road", Money(5000, "GBP"), "crowd")
                for n in range(PLEDGES)
            ],
        )
    return opened


@pytest.fixture
def ledgers(db_url: str) -> Iterator[tuple[Ledger, Ledger]]:
    yield from pair(db_url)


@pytest.fixture
def pg_ledgers(postgres: PostgresServer) -> Iterator[tuple[Ledger, Ledger]]:
    yield from pair(postgres.new_database())


def pair(db_url: str) -> Iterator[tuple[Ledger, Ledger]]:
    """Two ledgers alike: the second in a database (or file) beside the first."""
    if db_url.startswith("sqlite"):
        other = db_url.replace(".sqlite", "-other.sqlite")
    else:
        base, _, name = db_url.rpartition("/")
        engine = sa.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}_other"')
        engine.dispose()
        other = f"{base}/{name}_other"
    first, second = new_ledger(db_url), new_ledger(other)
    yield first, second
    first.dispose()
    second.dispose()


def remainders() -> list[tuple[int, int, str]]:
    """Rows naming their pledge (the journal names it too: no personal value)."""
    return [(1 + n % PLEDGES, 100 + n, "fraction") for n in range(ROWS)]


def write_remainders(ledger: Ledger, rows: list[tuple[int, int, str]], *, at_end: bool) -> None:
    with ledger.write("2026-11-30T10:00:00Z", bulk_work=True) as write:
        if at_end:
            write.texts_at_end()
        write.insert(
            schema.remainders, ["pledge_id", "amount", "reason"], rows, DUE, copy=KEY_FROM_PLEDGE
        )
        write.record("test.remainders", "remainders", {"rows": len(rows)})


def entries(ledger: Ledger) -> list[tuple[str, str, str]]:
    j = schema.journal.c
    with ledger.read() as conn:
        query = sa.select(j.action, j.subject, j.data).order_by(j.seq)
        return [(row[0], row[1], row[2]) for row in conn.execute(query)]


def test_texts_made_at_the_end_are_the_texts_made_as_it_goes(
    ledgers: tuple[Ledger, Ledger],
) -> None:
    at_end, as_it_goes = ledgers
    before = len(entries(at_end))
    write_remainders(at_end, remainders(), at_end=True)
    write_remainders(as_it_goes, remainders(), at_end=False)
    made = entries(at_end)[before:]
    assert [(action, subject) for action, subject, _ in made] == [
        ("ledger.rows", f"remainders:1-{tx.PART}/{ROWS}"),
        ("ledger.rows", f"remainders:{tx.PART + 1}-{2 * tx.PART}/{ROWS}"),
        ("ledger.rows", f"remainders:{2 * tx.PART + 1}-{ROWS}/{ROWS}"),
        ("test.remainders", "remainders"),
    ]
    assert made == entries(as_it_goes)[before:]  # byte for byte
    assert audit.verify(at_end).ok and audit.verify(as_it_goes).ok


@pytest.mark.postgres
def test_a_row_refused_as_the_write_ends_leaves_no_rows_and_no_entries(
    pg_ledgers: tuple[Ledger, Ledger],
) -> None:
    ledger, _ = pg_ledgers
    before = entries(ledger)
    rows = remainders()
    rows[-1] = (PLEDGES + 7, 1, "fraction")  # names no pledge: the key check at the end refuses
    with (
        pytest.raises(psycopg.errors.ForeignKeyViolation),
        ledger.write(bulk_work=True) as write,
    ):
        assert pgbulk.indexes_after(write.conn)
        write.texts_at_end()
        # Not a copy: a row whose pledge is missing would be dropped by the join.
        keyed = [(pledge, f"key-{pledge}", amount, reason) for pledge, amount, reason in rows]
        write.insert(schema.remainders, ["pledge_id", "person_key", "amount", "reason"], keyed, DUE)
        write.record("test.remainders", "remainders", {})
    assert entries(ledger) == before
    with ledger.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.remainders)).scalar() == 0
    assert audit.verify(ledger).ok


def backers(first: int, count: int) -> list[NewPledge]:
    return [
        NewPledge(f"Backer <b>{n}</b>", f"b{n}@x.org", f"=1+{n}", Money(5000, "GBP"), "crowd")
        for n in range(first, first + count)
    ]


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    """Parts of 300 rows whose texts a child makes, as an import's batches of 50,000."""
    monkeypatch.setattr(tx, "PART", 300)
    monkeypatch.setattr(tx, "_ASIDE_FROM", 1)
    return 300


def import_batches(ledger: Ledger, *, at_end: bool) -> list[int]:
    """Three batches in one write, as an import of three batches; the children seen."""
    seen = []
    with ledger.write("2026-11-30T10:00:00Z", bulk_work=True) as write:
        if at_end:
            write.texts_at_end()
        for batch in range(3):
            create_many(write, backers(10_000 + 1_000 * batch, 700))
            seen.append(len(children_of_this_process()))
    return seen


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_batches_whose_texts_a_child_makes_leave_the_journal_made_as_it_goes(
    ledgers: tuple[Ledger, Ledger], small_parts: int
) -> None:
    at_end, as_it_goes = ledgers
    before = len(entries(at_end))
    alive = children_of_this_process()
    assert import_batches(at_end, at_end=True) == [len(alive) + 1] * 3  # one child at a time
    assert children_of_this_process() == alive  # and none left
    import_batches(as_it_goes, at_end=False)
    made = entries(at_end)[before:]
    first = PLEDGES + 1
    assert [(action, subject) for action, subject, _ in made] == [
        ("ledger.rows", "pledges:1-300/700"),
        ("ledger.rows", "pledges:301-600/700"),
        ("ledger.rows", "pledges:601-700/700"),
        ("pledge.create_many", f"pledges:{first}-{first + 699}"),
    ] + [
        entry
        for batch in (1, 2)
        for entry in [
            ("ledger.rows", "pledges:1-300/700"),
            ("ledger.rows", "pledges:301-600/700"),
            ("ledger.rows", "pledges:601-700/700"),
            ("pledge.create_many", f"pledges:{first + 700 * batch}-{first + 700 * batch + 699}"),
        ]
    ]
    # Byte for byte but the fingerprints: each ledger has its own salt.
    assert unsalted(made) == unsalted(entries(as_it_goes)[before:])
    assert audit.verify(at_end).ok  # each part's text replays to its rows


def unsalted(made: list[tuple[str, str, str]]) -> list[tuple[str, str, str]]:
    return [
        (action, subject, re.sub(r'"fp:[0-9a-f]+"', '"fp"', text)) for action, subject, text in made
    ]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_batch_refused_after_a_child_began_leaves_no_rows_no_entries_no_child(
    ledgers: tuple[Ledger, Ledger], small_parts: int
) -> None:
    ledger, _ = ledgers
    before, alive = entries(ledger), children_of_this_process()
    clash = [replace(p, request_key=f"k-{n}") for n, p in enumerate(backers(0, 700))]
    again = [replace(p, request_key=f"k-{n + 650}") for n, p in enumerate(backers(700, 700))]
    refused = (sqlite3.IntegrityError, psycopg.errors.UniqueViolation)
    with pytest.raises(refused), ledger.write(bulk_work=True) as write:
        write.texts_at_end()
        create_many(write, clash)  # its child at work
        create_many(write, again)  # 50 keys the first batch holds: refused
    assert children_of_this_process() == alive
    assert entries(ledger) == before
    with ledger.read() as conn:
        count = sa.select(sa.func.count()).select_from(schema.pledges)
        assert conn.execute(count).scalar() == PLEDGES
    assert audit.verify(ledger).ok
