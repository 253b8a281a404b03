"""Ledger writes on a second thread, in order, while this thread computes.

Python's sqlite3 (and psycopg) release the GIL while the database works, so an
issue can insert one chunk of register rows while it builds the next: the two
cores share the work. Statements still run one at a time, on the caller's
connection and inside its transaction; the caller must not use the connection
itself between submit() and wait().
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any, TypeVar

T = TypeVar("T")
_SWITCH_INTERVAL = 0.0005  # seconds


class Background:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="ledger-background")
        self._pending: list[Future[Any]] = []
        self._interval = sys.getswitchinterval()

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        future = self._pool.submit(fn, *args)
        self._pending.append(future)
        return future

    def wait(self) -> None:
        """Until everything submitted has run; raise the first failure."""
        pending, self._pending = self._pending, []
        errors = [error for error in (f.exception() for f in pending) if error is not None]
        if errors:
            raise errors[0]

    def __enter__(self) -> Background:
        # The writer gives up the GIL while the database works and must get it
        # back to send the next statement: a short switch interval keeps it
        # from waiting the default 5 ms each time behind this thread's Python.
        self._interval = sys.getswitchinterval()
        sys.setswitchinterval(_SWITCH_INTERVAL)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        # Never leave the transaction while a statement may still run on it.
        try:
            if kind is None:
                self.wait()
            else:
                for future in self._pending:
                    future.exception()
        finally:
            self._pool.shutdown(wait=True)
            sys.setswitchinterval(self._interval)
