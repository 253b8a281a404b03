"""The journal texts of a big change's parts, made beside the write.

Writing 100,000 rows is the database's work (which lets go of the
interpreter's lock); their journal text is Python's (a keyed hash of every
personal value, then JSON). On a thread the two take turns at the lock; in a
child process forked once the change's rows exist, the text is made on the
other core while this process writes: the import and issue steps pay for
the journal's proof in wall time only where they wait for it. When this
process has written its rows and would wait, it makes the last parts' texts
itself, and the child stops before them (a number they share): both cores
work until the end.

The child shares the rows by fork (nothing is copied to it), sends each
part's text back through a socket pair, and exits without touching the database:
`os._exit` runs no finalizer, so the parent's connection (its socket, its
SQLite locks, which belong to the parent process) is left as it was. Where
there is no safe fork (not Linux), or the child fails, the parent makes the texts itself:
the same function, so the journal is the same either way.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import queue
import signal
import socket
import struct
import sys
import threading
from collections.abc import Callable

from fundraiser.ledger import changes, journal
from fundraiser.ledger.changes import Change

_LENGTH = struct.Struct("<Q")
#: Seconds to wait for one part's text before the parent makes it itself.
_PATIENCE = 120.0
#: Texts made here ahead of their turn, held at most (about 4 MB each for an import).
_HELD_AHEAD = 3


def entry_text(change: Change, fingerprint: changes.Fingerprinter) -> str:
    """A journal entry's data for one change: {"changes": [its journal form]}."""
    return journal.canonical({"changes": [change.encode(fingerprint)]})


class PartTexts:
    """The journal text of part `index` of a change, for index 0, 1, 2... in order."""

    def __init__(
        self,
        part_at: Callable[[int], Change],
        count: int,
        fingerprint: changes.Fingerprinter,
        *,
        patience: float = _PATIENCE,
        aside: bool = True,
        hold: int = 3,
    ) -> None:
        self.part_at = part_at
        self.patience = patience
        self.count = count
        self.fingerprint = fingerprint
        # A few parts ahead at most (`hold`): the texts of a million rows are never
        # all held. A caller that takes them later (Tx.texts_at_end) holds them all.
        self.texts: queue.Queue[bytearray | None] = queue.Queue(maxsize=hold)
        self.pid = 0
        self.sent = 0  # the index of the child's next text on the socket
        self.made: dict[int, str] = {}  # the last parts' texts, made here while waiting
        self.ahead = count  # the first part made here: the child stops before it
        # The child's stop, in memory both processes share (an anonymous mmap is MAP_SHARED).
        self.stop_at = mmap.mmap(-1, _LENGTH.size)
        _LENGTH.pack_into(self.stop_at, 0, count)
        self.reader: threading.Thread | None = None
        self.failed = False
        # Linux only: on macOS a fork after system frameworks are loaded is unsafe.
        # `aside` False: too little Python work to pay for a fork (its copy-on-write
        # faults cost the writing parent about a second at 300 MB).
        if aside and sys.platform.startswith("linux") and count > 1:
            self._start()

    def _start(self) -> None:
        # A socket pair, not a pipe: the reader takes a whole text in one call
        # (MSG_WAITALL), so it needs the interpreter's lock once per text. From a
        # pipe a read returns what the pipe holds (64 KB), and each of the ~60
        # reads of an import's 4 MB text waited up to the switch interval (5 ms)
        # for the lock while this process checked rows: the child stood blocked
        # on its write for a third of a second a batch instead of working.
        ours, theirs = socket.socketpair()
        pid = os.fork()
        if pid == 0:  # the child: make every part's text, send it, leave
            status = 1
            try:
                ours.close()
                for index in range(self.count):
                    if index >= _LENGTH.unpack_from(self.stop_at)[0]:
                        break  # the parent makes the rest
                    data = entry_text(self.part_at(index), self.fingerprint).encode()
                    theirs.sendall(_LENGTH.pack(len(data)))
                    theirs.sendall(data)
                status = 0
            finally:
                os._exit(status)
        theirs.close()
        self.pid = pid
        self.reader = threading.Thread(
            target=self._read, args=(ours,), name="ledger-journal-texts", daemon=True
        )
        self.reader.start()

    def _read(self, source: socket.socket) -> None:
        """Take each text off the socket as it comes (a blocking receive holds no lock)."""
        with source:
            for _ in range(self.count):
                head = _receive(source, _LENGTH.size)
                if head is None:
                    break
                (size,) = _LENGTH.unpack(head)
                data = _receive(source, size)
                if data is None:
                    break
                self.texts.put(data)
            else:
                return
        self.texts.put(None)  # the child stopped short: the parent makes the rest

    def get(self, index: int) -> str:
        while self.reader is not None and not self.failed:
            if index in self.made:
                return self.made.pop(index)
            try:
                data = self.texts.get_nowait()
            except queue.Empty:
                if self._make_ahead(index):
                    continue
                try:
                    # A part takes the child a fraction of a second: one stuck far longer
                    # (a fork that inherited a held lock) is stopped, and the work done here.
                    data = self.texts.get(timeout=self.patience)
                except queue.Empty:
                    data = None
                    self._stop()
            if data is None:
                self.failed = True
                break
            sent, self.sent = self.sent, self.sent + 1
            if sent == index:
                return data.decode()
            # else a part made here that the child had already begun: the same text
        made = self.made.pop(index, None)
        return made if made is not None else entry_text(self.part_at(index), self.fingerprint)

    def _make_ahead(self, waiting_for: int) -> bool:
        """While the child makes `waiting_for`, make the last part it has not begun."""
        last = self.ahead - 1
        # The child has sent `sent` parts, holds up to qsize() more, and works on the next.
        if last <= waiting_for or last <= self.sent + self.texts.qsize():
            return False
        if len(self.made) >= _HELD_AHEAD:  # they wait for the end: a million rows' are not held
            return False
        _LENGTH.pack_into(self.stop_at, 0, last)  # before the work: the child checks it first
        self.ahead = last
        # Its own fingerprinter: the write's memory of values is not grown for parts made once.
        self.made[last] = entry_text(self.part_at(last), self.fingerprint.forgetful())
        return True

    def _stop(self) -> None:
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        """Reap the child (stopping it first when the write ended early)."""
        if not self.pid:
            return
        pid, self.pid = self.pid, 0
        done, _ = os.waitpid(pid, os.WNOHANG)
        if not done:
            if self.reader is not None and self.reader.is_alive():
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        while self.reader is not None and self.reader.is_alive():
            try:  # a reader waiting to hand over a text the write no longer wants
                self.texts.get_nowait()
            except queue.Empty:
                self.reader.join(0.05)


def _receive(source: socket.socket, size: int) -> bytearray | None:
    """Exactly `size` bytes from the child, or None when it stopped before them.

    MSG_WAITALL: the kernel gathers them in one call, whatever the socket's buffer;
    only a signal returns early with part of them, and the loop asks for the rest.
    """
    data = bytearray(size)
    view = memoryview(data)
    got = 0
    try:
        while got < size:
            received = source.recv_into(view[got:], size - got, socket.MSG_WAITALL)
            if received == 0:
                return None
            got += received
    except OSError:  # the child was stopped mid-text
        return None
    finally:
        view.release()
    return data
