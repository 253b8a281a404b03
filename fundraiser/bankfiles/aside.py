"""A big statement read in a child process, while this one reads the ledger.

Reading a camt.053 of 50,000 transfers is a second of the interpreter's
time (the XML parser holds the GIL: a thread would wait its turn), and
nothing in it needs the ledger; the import's own first steps (its modules,
the pledges) need nothing from the file. So a forked child reads the file
and sends back the lines as plain values; the parent asks for them only when
it has done what it can without them.

A small file is read here and now (a fork costs more than it saves), and so
is every file where `fork` is not how processes start (Windows; macOS, where
forking a process that has used system frameworks is unsafe). A refusal in
the child comes back as the same StatementError, naming the same line.
"""

from __future__ import annotations

import gc
import multiprocessing
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from fundraiser.bank.statement import Line, Statement, StatementError, fail
from fundraiser.bankfiles import read
from fundraiser.config import BankCsv
from fundraiser.errors import Problem

#: From this size a statement is read in a child process (about 3,000 camt.053 entries).
ASIDE_FROM = 1024 * 1024

Source = Statement | Callable[[], Statement]


def _forkable() -> bool:
    return sys.platform.startswith("linux") and "fork" in multiprocessing.get_all_start_methods()


@contextmanager
def reading(
    path: Path,
    fmt: str | None = None,
    *,
    csv_settings: BankCsv | None = None,
    currency: str,
    encoding: str | None = None,
    aside_from: int = ASIDE_FROM,
) -> Iterator[Source]:
    """The statement (a small file), or a callable that waits for it (a big one,
    read in a child process meanwhile). A child not waited for is stopped on exit."""
    try:
        size = path.stat().st_size
    except OSError:
        size = 0  # `read` names what is wrong with the path
    if size < aside_from or not _forkable():
        yield read(path, fmt, csv_settings=csv_settings, currency=currency, encoding=encoding)
        return
    if fmt in (None, "camt053"):
        # Imported here, not in the child: a fork while another thread holds the
        # import lock would leave the child waiting for it forever.
        from fundraiser.bankfiles import camt053  # noqa: F401
    for stream in (sys.stdout, sys.stderr):
        stream.flush()  # or the child's exit writes this process's buffered output again
    context = multiprocessing.get_context("fork")
    ours, theirs = context.Pipe(duplex=False)
    child = context.Process(
        target=_child,
        args=(theirs, path, fmt, csv_settings, currency, encoding),
        name="statement-reader",
        daemon=True,
    )
    child.start()
    theirs.close()
    try:
        yield lambda: _received(ours, child, path)
    finally:
        ours.close()
        if child.is_alive():
            child.terminate()
        child.join()


def _child(
    out: Connection,
    path: Path,
    fmt: str | None,
    csv_settings: BankCsv | None,
    currency: str,
    encoding: str | None,
) -> None:
    # The child lives for one file: the cyclic collector would only walk the
    # tree's 700,000 elements again and again (a sixth of the read), freeing nothing.
    gc.disable()
    reply: tuple[str, Any]
    try:
        statement = read(path, fmt, csv_settings=csv_settings, currency=currency, encoding=encoding)
        reply = ("ok", _frozen(statement))
    except StatementError as exc:
        reply = ("refused", (exc.summary, [(p.where, p.message, p.fix) for p in exc.problems]))
    except BaseException:  # a bug: its traceback goes to the parent, which raises it
        reply = ("failed", traceback.format_exc())
    out.send(reply)
    out.close()


def _frozen(statement: Statement) -> tuple[Any, ...]:
    """The statement as plain values, its lines a list per field: long flat lists
    pickle fastest, and a day or a currency repeated in every line goes once."""
    columns: list[list[Any]] = [list(values) for values in zip(*statement.lines, strict=True)]
    if columns:  # none when the statement has no lines
        for repeated in (Line._fields.index("booked_on"), Line._fields.index("currency")):
            once: dict[Any, Any] = {}
            columns[repeated] = [once.setdefault(v, v) for v in columns[repeated]]
    s = statement
    return (s.path, s.format, s.account, s.currency, columns, s.notes)


def _received(ours: Connection, child: Any, path: Path) -> Statement:
    try:
        kind, value = ours.recv()
    except EOFError:
        child.join()
        raise fail(
            path.name,
            "",
            f"could not be read: its reader stopped (exit code {child.exitcode})",
            "import it again; if it stops again, the machine may be short of memory",
        ) from None
    if kind == "refused":
        summary, problems = value
        raise StatementError(summary, [Problem(*p) for p in problems])
    if kind == "failed":
        raise RuntimeError(f"reading {path.name} failed in the reader process:\n{value}")
    name, fmt, account, currency, columns, notes = value
    lines = tuple(map(Line, *columns)) if columns else ()
    return Statement(name, fmt, account, currency, lines, notes)
