"""The pledge state machine: one table; an illegal move raises and changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundraiser.errors import InvalidTransition
from fundraiser.ledger import open_ledger
from fundraiser.money import Money
from fundraiser.pledges import TRANSITIONS, NewPledge, Status, create, get, transition

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
