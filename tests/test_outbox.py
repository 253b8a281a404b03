"""The outbox: one message per cause, whichever path queues it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser import outbox
from fundraiser.ledger import Ledger, open_ledger, schema


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def rows(ledger: Ledger) -> list[sa.Row[tuple[object, ...]]]:
    with ledger.read() as conn:
        return list(conn.execute(sa.select(schema.outbox).order_by(schema.outbox.c.id)))


def messages(count: int, now: str, prefix: str = "k") -> list[outbox.Row]:
    return [
        outbox.message(
            outbox.Kind.WELCOME,
            f"{prefix}-{n}",
            to_email=f"m{n}@example.org",
            to_name=f"Member {n}",
            data={"member_number": n, "admitted_on": "2027-03-01"},
            now=now,
            member_number=None,
        )
        for n in range(count)
    ]


def test_queue_once_per_dedupe_key(ledger: Ledger) -> None:
    with ledger.write() as tx:
        assert outbox.queue(
            tx,
            outbox.Kind.PLEDGE_RECEIVED,
            "p-1",
            to_email="a@x.org",
            to_name="A",
            data={"b": 1, "a": 2},
        )
        assert not outbox.queue(
            tx,
            outbox.Kind.PLEDGE_RECEIVED,
            "p-1",
            to_email="a@x.org",
            to_name="A",
            data={"b": 1, "a": 2},
        )
    (row,) = rows(ledger)
    assert row.status == "queued" and row.attempts == 0 and row.kind == "pledge_received"
    assert row.data == '{"a": 2, "b": 1}'  # sorted keys: the same cause, the same bytes


@pytest.mark.parametrize("count", [3, 21, 501])
def test_every_batch_size_skips_keys_already_queued(ledger: Ledger, count: int) -> None:
    """Small, medium and large batches look up known keys three different ways."""
    with ledger.write() as tx:
        first = outbox.queue_many(tx, messages(count, tx.now)[: count // 2])
    with ledger.write() as tx:
        second = outbox.queue_many(tx, messages(count, tx.now))
    assert first == count // 2 and second == count - count // 2
    keys = [r.dedupe_key for r in rows(ledger)]
    assert len(keys) == len(set(keys)) == count


def test_queueing_is_journalled_without_addresses(ledger: Ledger) -> None:
    with ledger.write() as tx:
        outbox.queue_many(tx, messages(2, tx.now))
    with ledger.read() as conn:
        entry = conn.execute(
            sa.select(schema.journal).where(schema.journal.c.action == "mail.queue")
        ).one()
    data = json.loads(entry.data)
    (change,) = data.pop("changes")  # the rows, their people as fingerprints
    assert data == {"count": 2, "kinds": ["welcome"]}
    assert change["t"] == "outbox" and len(change["i"]["to_email"]) == 2
    assert "@" not in entry.data and "Member" not in entry.data
