"""What a process's writes carry from one to the next (Tx's `Carried`): the salt and
the journal's head, never read again while this process is the only writer, and
never trusted when another writer (a second process, a CLI command) moved the head
or the write that left it was rolled back."""

from __future__ import annotations

import sqlite3

import pytest

from fundraiser.ledger import Ledger, open_ledger


def _entry(ledger: Ledger, name: str) -> None:
    with ledger.write() as tx:
        tx.record("test.entry", name, {"who": tx.fingerprint(f"{name}@example.org")})


def test_two_writers_alternating_keep_one_chain(db_url: str) -> None:
    """Two processes' ledgers on one database (or the service and a CLI command)."""
    service, command = open_ledger(db_url), open_ledger(db_url)
    try:
        start = service.head()[0]
        for n in range(3):
            _entry(service, f"service-{n}")
            _entry(command, f"command-{n}")
            _entry(command, f"command-{n}b")
        report = service.verify()
        assert report.ok, report.reason
        assert report.entries == start + 9
        # Each remembers the head its own last write left, and the other moved it since.
        assert service.carried.head != service.head()
        _entry(service, "service-last")
        assert service.verify().ok and service.head()[0] == start + 10
        # The same salt on both sides: one person, one fingerprint.
        with service.write() as a_tx:
            mine = a_tx.fingerprint("same@example.org")
            a_tx.record("test.entry", "salted", {})
        with command.write() as b_tx:
            assert b_tx.fingerprint("same@example.org") == mine
            b_tx.record("test.entry", "salted", {})
    finally:
        service.dispose()
        command.dispose()


def test_a_rolled_back_write_leaves_nothing_to_carry(db_url: str) -> None:
    ledger = open_ledger(db_url)
    try:
        _entry(ledger, "kept")
        carried = ledger.carried.head
        with pytest.raises(RuntimeError), ledger.write() as tx:
            tx.record("test.entry", "lost", {})
            tx.flush()
            raise RuntimeError("crash after the append")
        assert ledger.carried.head == carried
        # A head that never committed (a guess gone wrong) costs a read, not the chain.
        ledger.carried.head = (carried[0] + 1, "f" * 64)
        _entry(ledger, "after")
        report = ledger.verify()
        assert report.ok, report.reason
        assert ledger.head()[0] == carried[0] + 1 == ledger.carried.head[0]
    finally:
        ledger.dispose()


def test_a_second_write_reads_neither_the_head_nor_the_salt(sqlite_url: str) -> None:
    """The webhook writer's write: its statements are the journal's append and the
    commit, with no ping of the connection (a SQLite file has no server to lose)."""
    ledger = open_ledger(sqlite_url)
    statements: list[str] = []
    try:
        _entry(ledger, "first")
        with ledger.write() as tx:
            driver = tx.conn.connection.dbapi_connection
            assert isinstance(driver, sqlite3.Connection)
            driver.set_trace_callback(statements.append)
            tx.record("test.entry", "second", {})
        _entry(ledger, "third")
        driver.set_trace_callback(None)
    finally:
        ledger.dispose()
    third = statements[statements.index("COMMIT") + 1 :]
    assert [s.split(" (")[0] for s in third] == [
        "BEGIN IMMEDIATE",
        "INSERT INTO journal",
        "COMMIT",
    ], third
    assert "ORDER BY seq DESC LIMIT 1) = " in third[1]
