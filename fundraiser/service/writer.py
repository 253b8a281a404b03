"""The service's one ledger writer: writes queued, and those that arrive together
committed together (group commit).

SQLite takes one writer at a time, and the journal's hash chain orders every
write on PostgreSQL too. Threads that each open a write transaction wait on
that lock (SQLite's busy handler polls), each holding a pooled connection and a
worker thread while it waits. Here one thread writes: the jobs that arrive while
it commits share the next transaction, one commit (one fsync) per batch, and a
job's caller is answered only after the commit that holds its change.

The batch's journal entries are held and appended together when it ends
(Tx.hold_journal): a job that reads the journal calls `tx.flush()` first.

A job is a function of the open transaction. A refusal it names (a pledge over
a tier's limit) must be raised before the job writes anything: the batch goes
on without it. Any other failure rolls the batch back, and each job is tried
again in its own transaction, so one bad job cannot sink the others; a job may
therefore run twice, and must undo in-memory effects of a run rolled back.

On PostgreSQL each process has its writer, and their batches run side by side
when every job names what its checks read (`Job.locks`, `whole=False`): two
pledges for one tier wait on each other, pledges for different people and
tiers do not, and only the journal's append and the commit take turns.

There a writer also has two lanes, each a thread with its own queue and
connection: jobs that hold nothing (`whole=False`, no locks: a card form
recorded on its own row) go in the second, so they are not queued behind a
batch waiting on a tier's lock or on the database's round trips; every other
job goes in the first. SQLite, one writer at a time, has one lane.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fundraiser.ledger import Ledger, Tx

R = TypeVar("R")


@dataclass(frozen=True)
class Job(Generic[R]):
    run: Callable[[Tx], R]
    #: Exceptions `run` raises before it writes: the job's answer, not the batch's failure.
    refusals: tuple[type[BaseException], ...] = ()
    #: What the job's checks read, as lock keys (a tier's places, a person's pledges),
    #: when `whole` is False: see Ledger.write. A job that names them runs beside
    #: other processes' writes on PostgreSQL; one that does not holds the whole ledger.
    locks: tuple[str, ...] = ()
    whole: bool = True


class Writer:
    """Jobs in, one transaction per batch, answers out (awaited on the event loop).

    Each lane is a thread of its own with a thread-safe queue, so the writer serves
    any event loop (a test may drive one app from two).
    """

    def __init__(self, ledger: Ledger, max_batch: int = 128, lanes: int | None = None) -> None:
        self.ledger = ledger
        self.max_batch = max_batch
        count = lanes if lanes is not None else (1 if ledger.is_sqlite else 2)
        self.lanes: list[queue.SimpleQueue[_Queued | None]] = [
            queue.SimpleQueue() for _ in range(count)
        ]
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def lane(self, job: Job[Any]) -> int:
        """The lane a job goes in: the last for one that holds nothing, else the first."""
        return len(self.lanes) - 1 if not job.whole and not job.locks else 0

    async def submit(self, job: Job[R]) -> R:
        """Run `job` in the next batch of its lane; its result, or its exception raised here."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        with self.lock:
            if not self.threads:
                for number, jobs in enumerate(self.lanes):
                    thread = threading.Thread(
                        target=self._serve,
                        args=(jobs,),
                        name=f"ledger-writer-{number}",
                        daemon=True,
                    )
                    thread.start()
                    self.threads.append(thread)
        self.lanes[self.lane(job)].put(_Queued(job, future, loop))
        result = await future
        if isinstance(result, BaseException):
            raise result
        return result  # type: ignore[no-any-return]

    def _serve(self, jobs: queue.SimpleQueue[_Queued | None]) -> None:
        while True:
            first = jobs.get()
            if first is None:
                return
            batch = [first]
            stop = False
            while len(batch) < self.max_batch:
                try:
                    more = jobs.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            try:
                results = self.write([queued.job for queued in batch])
            except Exception as exc:  # the writer itself failed: fail this batch only
                results = [exc] * len(batch)
            # One wake-up of each waiting event loop a batch, not one an answer: each
            # call_soon_threadsafe writes to the loop's self-pipe (a system call).
            answers: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
            for queued, result in zip(batch, results, strict=True):
                answers.setdefault(queued.loop, []).append((queued.future, result))
            for loop, settled in answers.items():
                with contextlib.suppress(RuntimeError):  # its loop has closed: nobody waits
                    loop.call_soon_threadsafe(_settle, settled)
            if stop:
                return

    def write(self, jobs: list[Job[Any]]) -> list[Any]:
        """Run the jobs in one transaction; if it fails, each in its own."""
        try:
            results: list[Any] = []
            with self._transaction(jobs) as tx:
                if len(jobs) > 1:  # their journal entries go in together, at the end
                    tx.hold_journal()
                for job in jobs:
                    try:
                        results.append(job.run(tx))
                    except job.refusals as exc:
                        results.append(exc)
            return results
        except Exception as exc:
            if len(jobs) == 1:
                return [exc]
        results = []
        for job in jobs:
            try:
                with self._transaction([job]) as tx:
                    results.append(job.run(tx))
            except Exception as exc:
                results.append(exc)
        return results

    def _transaction(self, jobs: list[Job[Any]]) -> AbstractContextManager[Tx]:
        """A write holding what these jobs name (all their locks, taken in order up
        front), or the whole ledger if one of them asks for it."""
        locks = {key for job in jobs for key in job.locks}
        return self.ledger.write(locks=locks, whole=any(job.whole for job in jobs))

    def close(self) -> None:
        """Finish the jobs queued, then stop."""
        with self.lock:
            threads, self.threads = self.threads, []
        for jobs in self.lanes if threads else ():
            jobs.put(None)
        for thread in threads:
            thread.join()


@dataclass(frozen=True)
class _Queued:
    job: Job[Any]
    future: asyncio.Future[Any]
    loop: asyncio.AbstractEventLoop


def _settle(settled: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in settled:
        if not future.done():  # a caller that went away (cancelled) is not answered
            future.set_result(result)
