"""The outbox: one message per cause, whichever path queues it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser import outbox
from fundraiser.ledger import Ledger, Tx, open_ledger, schema


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


def _members(tx: Tx, numbers: range) -> None:
    tx.insert(
        schema.members,
        ("number", "person_key", "name", "email", "address"),
        [(n, f"m{n}@example.org", f"Member {n}", f"m{n}@example.org", "1 Road") for n in numbers],
        {"admitted_on": "2027-03-01", "created_at": tx.now},
    )
    tx.record("test.members", "members", {})


def test_mail_to_members_takes_their_addresses_and_skips_keys_queued(ledger: Ledger) -> None:
    """An issue's welcome: each row addressed to its member as the register holds
    them, queued once per key, journalled with no address, proved by replay."""
    from fundraiser.ledger import audit

    def mail(numbers: range) -> list[tuple[str, str, int]]:
        return [(f"welcome:member:{n}", f'{{"member_number": {n}}}', n) for n in numbers]

    with ledger.write() as tx:
        _members(tx, range(1, 1201))
        first = outbox.queue_to_members(tx, outbox.Kind.WELCOME, mail(range(1, 601)))
        tx.record("test.welcome", "outbox", {})
    with ledger.write() as tx:
        again = outbox.queue_to_members(tx, outbox.Kind.WELCOME, mail(range(1, 1201)))
        tx.record("test.welcome", "outbox", {})
    assert (first, again) == (600, 600)
    queued = rows(ledger)
    assert len(queued) == 1200 == len({r.dedupe_key for r in queued})
    last = queued[-1]
    assert (last.to_email, last.to_name, last.member_number) == (
        "m1200@example.org",
        "Member 1200",
        1200,
    )
    assert (last.kind, last.status, last.attempts, last.pledge_id) == ("welcome", "queued", 0, None)
    assert last.created_at == last.next_attempt_at
    with ledger.read() as conn:
        texts = [
            entry.data
            for entry in conn.execute(
                sa.select(schema.journal).where(schema.journal.c.action == "test.welcome")
            )
        ]
    assert len(texts) == 2 and not any("@" in text or "Member" in text for text in texts)
    tables = audit.verify(ledger).tables
    assert tables is not None and tables.ok
