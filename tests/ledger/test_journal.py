"""The journal's conditional append: entries go in after a remembered head only while
it is still the head, all or none."""

from __future__ import annotations

from fundraiser.ledger import journal, open_ledger


def test_append_on_the_head_appends_and_on_a_moved_head_appends_nothing(db_url: str) -> None:
    ledger = open_ledger(db_url)
    try:
        with ledger.write() as tx:
            tx.record("test.first", "one", {"n": 1})
        head = ledger.head()
        with ledger.write() as tx:
            tx.record("test.second", "two", {"n": 2})
        moved = ledger.head()
        with ledger.write() as tx:
            # The head an earlier write left: another writer appended since.
            assert journal.append_on(tx.conn, head, tx.now, [("test.x", "x", "{}")]) is None
            new = journal.append_on(
                tx.conn, moved, tx.now, [("test.third", "a", "{}"), ("test.third", "b", "{}")]
            )
            assert new is not None and new[0] == moved[0] + 2
        assert ledger.head() == new
        report = ledger.verify()
        assert report.ok and report.entries == moved[0] + 2
    finally:
        ledger.dispose()


def test_append_on_declines_an_empty_journal_and_oversized_batches(sqlite_url: str) -> None:
    ledger = open_ledger(sqlite_url)
    try:
        with ledger.write() as tx:
            # Nothing to check against: the caller reads the head.
            empty = (0, journal.GENESIS)
            assert journal.append_on(tx.conn, empty, tx.now, [("a", "b", "{}")]) is None
            many = [("test.many", str(n), "{}") for n in range(journal.APPEND_ON_MOST + 1)]
            # The true head, declined for the batch's size alone.
            assert journal.append_on(tx.conn, journal.head(tx.conn), tx.now, many) is None
            tx.record("test.one", "one", {})
        assert ledger.verify().ok
    finally:
        ledger.dispose()
