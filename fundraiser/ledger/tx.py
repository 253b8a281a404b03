"""One open write transaction: the journal's appends and the bulk writes inside it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import bulk, journal

P = ParamSpec("P")
R = TypeVar("R")


class Tx:
    """One open write transaction; `record` appends to the journal."""

    def __init__(self, conn: Connection, now: str) -> None:
        self.conn = conn
        self.now = now
        self._head: tuple[int, str] | None = None
        self._second: ThreadPoolExecutor | None = None

    def execute(self, statement: Any, *args: Any) -> sa.CursorResult[Any]:
        return self.conn.execute(statement, *args)

    # -- the journal ---------------------------------------------------------
    def record(self, action: str, subject: str, data: dict[str, Any]) -> None:
        self.record_many([(action, subject, data)])

    def record_encoded(self, action: str, subject: str, text: str) -> None:
        """Append one entry whose data is canonical(data) already (encoded off the database)."""
        self._append([(action, subject, text)])

    def record_many(self, entries: Sequence[tuple[str, str, dict[str, Any]]]) -> None:
        """Append entries to the hash chain, in order, in this transaction."""
        self._append(
            [(action, subject, journal.canonical(data)) for action, subject, data in entries]
        )

    def _append(self, entries: Sequence[tuple[str, str, str]]) -> None:
        if self._head is None:
            self._head = journal.head(self.conn)
        self._head = journal.append(self.conn, self._head, self.now, entries)

    # -- bulk writes -----------------------------------------------------------
    def insert_rows(
        self,
        table: sa.Table,
        rows: Sequence[Any],
        columns: Sequence[str] | None = None,
        constants: dict[str, Any] | None = None,
    ) -> None:
        """Insert many rows (dicts, or tuples in `columns` order) through the driver."""
        bulk.insert_rows(self.conn, table, rows, columns, constants)

    def fetch_rows(self, statement: sa.Select[Any]) -> list[tuple[Any, ...]]:
        """A big SELECT of our own values, as plain tuples (see bulk.fetch_rows)."""
        return bulk.fetch_rows(self.conn, statement)

    def alongside(self, work: Callable[P, R], *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run one database step on a second thread while Python works on this one.

        SQLite and psycopg let go of the GIL while a statement runs, so on two
        cores a bulk UPDATE runs while Python computes. The transaction's
        connection is used by one thread at a time: between submitting and
        taking the result the caller must not touch the database. The write
        waits for the step before it commits or rolls back.
        """
        if self._second is None:
            self._second = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-tx")
        return self._second.submit(work, *args, **kwargs)

    def finish(self) -> None:
        """Wait for a step still running alongside (Ledger.write calls it)."""
        if self._second is not None:
            self._second.shutdown(wait=True)
            self._second = None
