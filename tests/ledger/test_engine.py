"""Writers side by side on PostgreSQL: a write that names what it holds (Ledger.write's
`locks`, `whole=False`) waits only for writes that name the same, and the journal's
chain stays whole."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from fundraiser.ledger import Ledger, audit, open_ledger, schema
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create
from tests.conftest import PostgresServer, proved

pytestmark = pytest.mark.postgres


def _pledge(n: int, tier: str) -> NewPledge:
    return NewPledge(
        name=f"Backer {n}",
        email=f"b{n}@example.org",
        address=f"{n} Road",
        amount=Money(5000, "GBP"),
        round="crowd",
        tier=tier,
    )


@pytest.fixture
def two(postgres: PostgresServer, request: pytest.FixtureRequest) -> Iterator[list[Ledger]]:
    """Two ledgers on one database, as two service processes have."""
    url = postgres.new_database()
    ledgers = [open_ledger(url), open_ledger(url)]
    yield ledgers
    for ledger in ledgers:
        ledger.dispose()
    proved(url, request)


class Held:
    """A write on its own thread, held open (its pledge made, not committed) until let go."""

    def __init__(self, ledger: Ledger, locks: set[str], item: NewPledge) -> None:
        self.inside = threading.Event()
        self.release = threading.Event()
        self.made: int | None = None
        self.error: BaseException | None = None

        def run() -> None:
            try:
                with ledger.write(locks=locks, whole=False) as tx:
                    # Made before the others start: which write draws which pledge id
                    # is then not left to the scheduler.
                    self.made = create(tx, item)
                    self.inside.set()
                    self.release.wait(30)
            except BaseException as exc:  # the test asserts on it
                self.error = exc
                self.inside.set()

        self.thread = threading.Thread(target=run)
        self.thread.start()

    def finish(self) -> int:
        self.release.set()
        self.thread.join(30)
        assert self.error is None, self.error
        assert self.made is not None
        return self.made


def _count(ledger: Ledger, tier: str) -> int:
    with ledger.read() as conn:
        found = conn.execute(
            sa.select(sa.func.count()).where(schema.pledges.c.tier == tier)
        ).scalar()
    return int(found or 0)


def test_writes_for_other_people_and_tiers_commit_while_one_is_open(two: list[Ledger]) -> None:
    first, second = two
    held = Held(first, {"tier:a", "person:1"}, _pledge(1, "a"))
    try:
        assert held.inside.wait(30)
        # Another process's pledge for another tier and person: not held up.
        done = threading.Event()

        def other() -> None:
            with second.write(locks={"tier:b", "person:2"}, whole=False) as tx:
                create(tx, _pledge(2, "b"))
            done.set()

        thread = threading.Thread(target=other)
        thread.start()
        assert done.wait(20), "a write for another tier waited for the open one"
        thread.join()
        assert _count(second, "b") == 1 and _count(second, "a") == 0
    finally:
        made = held.finish()
    with first.read() as conn:
        ids = sorted(conn.execute(sa.select(schema.pledges.c.id)).scalars())
    assert made in ids and len(ids) == 2 == len(set(ids))
    report = audit.verify(first)
    assert report.ok, report.lines()


def test_a_write_for_the_same_tier_waits_and_then_sees_the_place_taken(
    two: list[Ledger],
) -> None:
    first, second = two
    held = Held(first, {"tier:a", "person:1"}, _pledge(1, "a"))
    seen: list[int] = []
    try:
        assert held.inside.wait(30)

        def same_tier() -> None:
            with second.write(locks={"tier:a", "person:3"}, whole=False) as tx:
                seen.append(
                    int(
                        tx.conn.execute(
                            sa.select(sa.func.count()).where(schema.pledges.c.tier == "a")
                        ).scalar_one()
                    )
                )
                create(tx, _pledge(3, "a"))

        thread = threading.Thread(target=same_tier)
        thread.start()
        thread.join(1.5)
        assert thread.is_alive() and not seen, "a write for the same tier did not wait"
    finally:
        held.finish()
    thread.join(30)
    assert seen == [1]  # the first pledge, committed before the second counted
    assert _count(first, "a") == 2


def test_a_whole_ledger_write_waits_for_a_keyed_one_and_the_chain_stays_linear(
    two: list[Ledger],
) -> None:
    first, second = two
    held = Held(first, {"person:1"}, _pledge(1, "a"))
    try:
        assert held.inside.wait(30)
        done = threading.Event()
        made: list[int] = []

        def whole() -> None:
            with second.write() as tx:
                made.append(create(tx, _pledge(2, "b")))
            done.set()

        thread = threading.Thread(target=whole)
        thread.start()
        # It takes the journal at once; the open write appends at its end and
        # waits for it: both commit, one after the other.
        assert done.wait(20)
    finally:
        kept_open = held.finish()
    thread.join(30)
    with first.read() as conn:
        actions = list(
            conn.execute(
                sa.select(schema.journal.c.subject).order_by(schema.journal.c.seq)
            ).scalars()
        )
    # Journalled in the order they committed: the whole write first, though it began second.
    assert actions[-2:] == [f"pledge:{made[0]}", f"pledge:{kept_open}"]
    assert first.verify().ok
