"""A big change's journal texts made in a child process: the same journal as made here,
whatever becomes of the child, and no child left behind when the write fails."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser.ledger import Ledger, audit, changes, encoder, open_ledger, schema
from fundraiser.ledger.changes import Change
from fundraiser.ledger.tx import PART
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create_many
from tests.processes import children_of_this_process

SALT = "ab" * 32


def parts(count: int, size: int = 500) -> list[Change]:
    return [
        Change(
            "pledges",
            "insert",
            columns=["id", "name", "email"],
            rows=[
                (n, f"Backer <b>{n}</b> =1+1", f"b{n}@example.org")
                for n in range(i * size, (i + 1) * size)
            ],
        )
        for i in range(count)
    ]


def test_texts_from_the_child_are_the_texts_made_here() -> None:
    made = parts(4)
    texts = encoder.PartTexts(made.__getitem__, len(made), changes.make_fingerprint(SALT))
    try:
        assert texts.pid != 0, "a child process makes the texts where the system can fork"
        got = [texts.get(i) for i in range(len(made))]
    finally:
        texts.close()
    here = changes.make_fingerprint(SALT)
    assert got == [encoder.entry_text(part, here) for part in made]
    assert "Backer" not in "".join(got) and "example.org" not in "".join(got)


def test_texts_far_bigger_than_the_socket_buffer_arrive_whole() -> None:
    # An import's part is about 4 MB of text, these over 1 MB: many times what the
    # kernel buffers between the processes, so each arrives over many writes.
    made = parts(3, size=20_000)
    texts = encoder.PartTexts(made.__getitem__, len(made), changes.make_fingerprint(SALT))
    try:
        got = [texts.get(i) for i in range(len(made))]
        assert texts.sent >= 1, "the first text came from the child"
    finally:
        texts.close()
    here = changes.make_fingerprint(SALT)
    assert min(len(text) for text in got) > 1_000_000
    assert got == [encoder.entry_text(part, here) for part in made]


def test_a_text_cut_off_by_the_child_ending_is_not_taken() -> None:
    ours, theirs = socket.socketpair()

    def send() -> None:  # more than the socket holds: taken as it comes
        theirs.sendall(b"x" * 300_000)
        theirs.shutdown(socket.SHUT_WR)

    sender = threading.Thread(target=send)
    sender.start()
    with ours, theirs:
        assert encoder._receive(ours, 200_000) == bytearray(b"x" * 200_000)
        assert encoder._receive(ours, 200_000) is None  # 100,000 came, then the end
        sender.join()


def test_a_child_that_stops_short_leaves_the_rest_to_the_parent() -> None:
    made = parts(4)
    parent = os.getpid()

    def part_at(index: int) -> Change:
        if index == 2 and os.getpid() != parent:
            raise RuntimeError("the child fails at the third part")
        return made[index]

    texts = encoder.PartTexts(part_at, len(made), changes.make_fingerprint(SALT))
    try:
        got = [texts.get(i) for i in range(len(made))]
    finally:
        texts.close()
    here = changes.make_fingerprint(SALT)
    assert got == [encoder.entry_text(part, here) for part in made]


def test_a_child_that_hangs_is_stopped_and_the_parent_makes_the_texts() -> None:
    made = parts(3)
    parent = os.getpid()

    def part_at(index: int) -> Change:
        if index == 1 and os.getpid() != parent:
            time.sleep(3600)  # as a child stuck on a lock it inherited would be
        return made[index]

    started = time.monotonic()
    texts = encoder.PartTexts(part_at, 3, changes.make_fingerprint(SALT), patience=0.5)
    try:
        got = [texts.get(i) for i in range(3)]
    finally:
        texts.close()
    assert time.monotonic() - started < 30
    here = changes.make_fingerprint(SALT)
    assert got == [encoder.entry_text(part, here) for part in made]


def test_while_the_child_is_slow_the_parent_makes_the_last_parts() -> None:
    made = parts(4)
    parent = os.getpid()

    def part_at(index: int) -> Change:
        if index == 0 and os.getpid() != parent:
            time.sleep(1.5)  # a child slower than the parent's writes
        return made[index]

    texts = encoder.PartTexts(part_at, len(made), changes.make_fingerprint(SALT))
    try:
        got = [texts.get(i) for i in range(len(made))]
        assert texts.ahead == 1, "the parent made parts 1 to 3 while the child made part 0"
    finally:
        texts.close()
    here = changes.make_fingerprint(SALT)
    assert got == [encoder.entry_text(part, here) for part in made]


def test_the_parent_holds_few_parts_ahead_of_their_turn() -> None:
    made = parts(8)
    parent = os.getpid()

    def part_at(index: int) -> Change:
        if index == 0 and os.getpid() != parent:
            time.sleep(1.5)  # a child far slower than the parent's writes
        return made[index]

    texts = encoder.PartTexts(part_at, len(made), changes.make_fingerprint(SALT))
    try:
        got = [texts.get(0)]
        assert sorted(texts.made) == [5, 6, 7], "three made ahead, then the parent waits"
        got += [texts.get(i) for i in range(1, len(made))]
    finally:
        texts.close()
    here = changes.make_fingerprint(SALT)
    assert got == [encoder.entry_text(part, here) for part in made]


def test_the_parent_leaves_the_part_it_waits_for_to_the_child() -> None:
    made = parts(4)
    parent = os.getpid()

    def part_at(index: int) -> Change:
        if index == 2 and os.getpid() != parent:
            time.sleep(0.5)  # the child is inside part 2 when the parent waits for it
        return made[index]

    texts = encoder.PartTexts(part_at, len(made), changes.make_fingerprint(SALT))
    try:
        # The child has sent parts 0 and 1 and begun part 2 (waited for, not guessed:
        # on a loaded machine the child may take longer than any fixed pause).
        deadline = time.monotonic() + 30
        while texts.texts.qsize() < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert texts.texts.qsize() == 2
        got = [texts.get(i) for i in range(len(made))]
        assert texts.ahead == 3, "the parent made part 3 only"
    finally:
        texts.close()
    here = changes.make_fingerprint(SALT)
    assert got == [encoder.entry_text(part, here) for part in made]


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def backers(count: int) -> list[NewPledge]:
    return [
        NewPledge(
            name=f"Backer {n}",
            email=f"b{n}@example.org",
            address=f"{n} Road",
            amount=Money(5000, "GBP"),
            round="crowd",
        )
        for n in range(count)
    ]


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_big_import_is_journalled_in_parts_and_proved(ledger: Ledger) -> None:
    before = children_of_this_process()
    with ledger.write() as tx:
        create_many(tx, backers(2 * PART + 7))
    assert children_of_this_process() == before, "the child was reaped"
    with ledger.engine.connect() as conn:
        entries = conn.execute(
            sa.select(schema.journal.c.subject).where(schema.journal.c.action == "ledger.rows")
        ).scalars()
        assert list(entries) == [
            f"pledges:1-{PART}/{2 * PART + 7}",
            f"pledges:{PART + 1}-{2 * PART}/{2 * PART + 7}",
            f"pledges:{2 * PART + 1}-{2 * PART + 7}/{2 * PART + 7}",
        ]
    assert audit.verify(ledger).ok  # the journal replays to the live table


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads /proc")
def test_a_write_that_fails_midway_leaves_no_rows_and_no_child(ledger: Ledger) -> None:
    with ledger.write() as tx:
        create_many(tx, backers(1))
    before = children_of_this_process()
    people = [replace(p, request_key=f"key-{n}") for n, p in enumerate(backers(2 * PART))]
    people[PART + 5] = replace(people[PART + 5], request_key="key-3")  # in the second part
    with pytest.raises(sqlite3.IntegrityError, match="request_key"), ledger.write() as tx:
        create_many(tx, people)
    assert children_of_this_process() == before
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.pledges)).scalar() == 1
    assert audit.verify(ledger).ok
