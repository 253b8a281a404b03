"""The pledge state machine: one table; an illegal move raises and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundraiser.errors import InvalidTransition
from fundraiser.ledger import open_ledger, schema
from fundraiser.money import Money
from fundraiser.pledges import (
    PLEDGE_COLUMNS,
    TRANSITIONS,
    NewPledge,
    Status,
    create,
    create_many,
    find,
    get,
    transition,
)
from tests.conftest import PostgresServer

TERMINAL = {s for s, targets in TRANSITIONS.items() if not targets}


def test_every_status_has_a_row() -> None:
    assert set(TRANSITIONS) == set(Status)
    for targets in TRANSITIONS.values():
        assert targets <= set(Status)


def test_paid_can_never_be_cancelled_or_unpaid() -> None:
    assert Status.CANCELLED not in TRANSITIONS[Status.PAID]
    assert Status.PENDING not in TRANSITIONS[Status.PAID]
    assert Status.AUTHORIZED not in TRANSITIONS[Status.PAID]
    assert {Status.FAILED, Status.CANCELLED, Status.RELEASED, Status.REFUNDED} == TERMINAL


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(moves=st.lists(st.sampled_from(list(Status)), min_size=1, max_size=12))
def test_random_walks_follow_the_table(
    tmp_path_factory: pytest.TempPathFactory, moves: list[Status]
) -> None:
    folder: Path = tmp_path_factory.mktemp("walk")
    ledger = open_ledger(f"sqlite:///{folder / 'l.sqlite'}")
    with ledger.write() as tx:
        pledge_id = create(
            tx,
            NewPledge(
                name="A",
                email="a@example.org",
                address="x",
                amount=Money(5000, "GBP"),
                round="crowd",
            ),
        )
    current = Status.PENDING
    for target in moves:
        head = ledger.head()
        if target in TRANSITIONS[current]:
            with ledger.write() as tx:
                transition(tx, pledge_id, target)
            current = target
            assert ledger.head()[0] == head[0] + 1
        else:
            with pytest.raises(InvalidTransition), ledger.write() as tx:
                transition(tx, pledge_id, target)
            assert ledger.head() == head  # nothing changed, not even the journal
        with ledger.read() as conn:
            assert get(conn, pledge_id).status is current
    assert ledger.verify().ok
    ledger.dispose()


def _new(n: int) -> NewPledge:
    return NewPledge(f"Backer {n}", f"b{n}@example.org", "1 Road", Money(5000, "GBP"), "crowd")


@pytest.mark.postgres
def test_ids_drawn_with_gaps_between_them_are_the_ids_the_pledges_get(
    postgres: PostgresServer,
) -> None:
    """Another writer drawing from the sequence in the middle of a bulk draw leaves
    gaps (here: a sequence stepping by 3); the pledges get exactly the ids drawn,
    and a draw alone on the sequence runs on without one."""
    ledger = open_ledger(postgres.new_database())
    with ledger.write() as tx:
        tx.conn.exec_driver_sql("ALTER SEQUENCE pledge_ids INCREMENT BY 3")
        gapped = create_many(tx, [_new(n) for n in range(1, 5)])
        tx.conn.exec_driver_sql("ALTER SEQUENCE pledge_ids INCREMENT BY 1")
        after = create_many(tx, [_new(n) for n in range(5, 8)])
    assert gapped == [1, 4, 7, 10] and after == [11, 12, 13]
    with ledger.read() as conn:
        names = {p.id: p.name for p in find(conn)}
    assert names == {i: f"Backer {n}" for i, n in zip(gapped + after, range(1, 8), strict=True)}
    ledger.dispose()


def test_new_pledges_take_ids_above_every_pledge_there_is(db_url: str) -> None:
    """On PostgreSQL ids come from a sequence (writers run side by side); a pledge
    written with its own id (as a restored or hand-made ledger has) is never given
    again: the sequence is moved past it."""
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        first = create(tx, _new(1))
    with ledger.write() as tx:
        values = dict.fromkeys(PLEDGE_COLUMNS) | {
            "id": 50,
            "person_key": "b50@example.org",
            "name": "Backer 50",
            "email": "b50@example.org",
            "address": "1 Road",
            "round": "crowd",
            "amount": 5000,
            "currency": "GBP",
            "status": "pending",
            "source": "offline",
            "paid_amount": 0,
        }
        stamps = {"created_at": tx.now, "updated_at": tx.now, "refunded_amount": 0}
        tx.insert(schema.pledges, PLEDGE_COLUMNS, [tuple(values.values())], stamps)
        tx.record("pledge.create", "pledge:50", {"id": 50})
    with ledger.write() as tx:
        after = create_many(tx, [_new(2), _new(3)])
    with ledger.read() as conn:
        assert get(conn, after[1]).name == "Backer 3"
    ledger.dispose()
    assert first == 1 and after == [51, 52]
