"""Copies: an insert that takes a person's details from a row the journal already
proves names that row in the journal instead of fingerprinting the details again."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser.config import load_campaign
from fundraiser.errors import LedgerError
from fundraiser.issuing import issue
from fundraiser.ledger import Ledger, audit, open_ledger, schema
from fundraiser.ledger.changes import Copy
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, Status, create, transition

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all

FROM_PLEDGE = Copy("pledges", "from_pledge", {"person_key": "person_key", "name": "name"})


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    opened = open_ledger(db_url)
    yield opened
    opened.dispose()


def pledge(ledger: Ledger, n: int, *, paid: bool = True, email: str | None = None) -> int:
    with ledger.write() as tx:
        made = create(
            tx,
            NewPledge(
                name=f"Backer {n} <b>=1+1",
                email=email or f"b{n}@example.org",
                address=f"{n} Road, Town",
                amount=Money(10_000, "GBP"),
                round="crowd",
            ),
        )
        if paid:
            transition(tx, made, Status.PAID, reason="bank transfer received")
    return made


def journal_of(ledger: Ledger, after: int = 0) -> list[dict[str, object]]:
    with ledger.read() as conn:
        texts = conn.execute(
            sa.select(schema.journal.c.data).where(schema.journal.c.seq > after)
        ).scalars()
        return [change for text in texts for change in json.loads(text).get("changes", [])]


def head(ledger: Ledger) -> int:
    return ledger.head()[0]


def test_a_copied_insert_holds_the_source_values_and_the_journal_only_their_row(
    ledger: Ledger,
) -> None:
    first, second = pledge(ledger, 1), pledge(ledger, 2)
    before = head(ledger)
    with ledger.write() as tx:
        tx.insert(
            schema.members,
            ("number", "from_pledge", "email", "address"),
            [(7, second, "x@example.org", "A"), (8, first, "y@example.org", "B")],
            {"admitted_on": "2027-01-01", "created_at": tx.now},
            copy=FROM_PLEDGE,
        )
        tx.record("test.members", "members", {})
    with ledger.read() as conn:
        rows = conn.execute(
            sa.select(
                schema.members.c.number, schema.members.c.person_key, schema.members.c.name
            ).order_by(schema.members.c.number)
        ).all()
    assert [tuple(r) for r in rows] == [
        (7, "b2@example.org", "Backer 2 <b>=1+1"),
        (8, "b1@example.org", "Backer 1 <b>=1+1"),
    ]
    (change,) = journal_of(ledger, before)
    assert change["c"] == {"f": "pledges", "b": "from_pledge", "s": FROM_PLEDGE.columns}
    inserted = change["i"]
    assert isinstance(inserted, dict)
    assert inserted["from_pledge"] == [second, first]
    assert "name" not in inserted and "person_key" not in inserted
    # The columns given, not copied, are fingerprinted as ever.
    assert all(str(v).startswith("fp:") for v in inserted["email"])
    verdict = audit.verify(ledger)
    assert verdict.ok, verdict.lines()


def test_a_copy_naming_a_missing_row_is_refused_and_changes_nothing(ledger: Ledger) -> None:
    first = pledge(ledger, 1)
    before = head(ledger)
    refused = pytest.raises(LedgerError, match="1 of 2 rows name no pledges row")
    with refused, ledger.write() as tx:
        tx.insert(
            schema.members,
            ("number", "from_pledge", "email", "address"),
            [(1, first, "x@example.org", "A"), (2, first + 999, "y@example.org", "B")],
            {"admitted_on": "2027-01-01", "created_at": tx.now},
            copy=FROM_PLEDGE,
        )
        tx.record("test.members", "members", {})
    assert head(ledger) == before
    with ledger.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.members)).scalar() == 0


@pytest.mark.parametrize(
    ("copy", "message"),
    [
        (Copy("stripe_events", "from_pledge", {"name": "type"}), "only from a proved table"),
        (Copy("pledges", "email", {"name": "name"}), "may not find rows by email"),
        (Copy("pledges", "from_pledge", {"number": "id"}), "both given and copied"),
        (Copy("pledges", "from_pledge", {"name": "no_such"}), "not columns of pledges"),
    ],
)
def test_a_copy_the_replay_could_not_repeat_is_refused(
    ledger: Ledger, copy: Copy, message: str
) -> None:
    first = pledge(ledger, 1)
    with pytest.raises(ValueError, match=message), ledger.write() as tx:
        tx.insert(
            schema.members,
            ("number", "from_pledge", "email", "address"),
            [(1, first, "z@example.org", "C")],
            {"admitted_on": "2027-01-01", "created_at": tx.now},
            copy=copy,
        )
        tx.record("test.members", "members", {})


@pytest.mark.tampers
def test_an_edited_copy_is_named_by_the_proof(ledger: Ledger, campaign_dir: Path) -> None:
    campaign = load_campaign(campaign_dir / "campaign.toml")
    pledge(ledger, 1)
    pledge(ledger, 2)
    issue(ledger, campaign, today="2027-03-01")
    with ledger.engine.begin() as conn:
        conn.execute(sa.text("UPDATE members SET name = 'Mallory' WHERE number = 1"))
        conn.execute(sa.text("UPDATE outbox SET to_email = 'm@evil.example' WHERE id = 2"))
    verdict = audit.verify(ledger)
    assert not verdict.ok
    assert verdict.tables is not None
    named = {(d.table, d.row, d.column) for d in verdict.tables.differences}
    assert ("members", "number=1", "name") in named
    assert ("outbox", "id=2", "to_email") in named
    # The pledges the copies came from are as the journal says.
    assert not any(table == "pledges" for table, _row, _column in named)


def test_an_issue_journals_each_person_once(ledger: Ledger, campaign_dir: Path) -> None:
    """Members and remainders name their pledge, welcome mail its member: the issue's
    entries hold no fingerprint of a name, an email, an address or a key."""
    campaign = load_campaign(campaign_dir / "campaign.toml")
    for n in range(1, 6):
        pledge(ledger, n)
    before = head(ledger)
    issue(ledger, campaign, today="2027-03-01")
    issued = journal_of(ledger, before)
    tables = {change["t"] for change in issued}
    assert {"members", "outbox"} <= tables
    for change in issued:
        inserted = change.get("i") or {}
        assert isinstance(inserted, dict)
        for column in ("person_key", "name", "email", "address", "to_email", "to_name"):
            assert column not in inserted, (change["t"], column)
    with ledger.read() as conn:
        welcome = conn.execute(
            sa.select(schema.outbox.c.to_email, schema.outbox.c.to_name).order_by(
                schema.outbox.c.id
            )
        ).all()
    assert welcome[0] == ("b1@example.org", "Backer 1 <b>=1+1")
    verdict = audit.verify(ledger)
    assert verdict.ok, verdict.lines()


def test_a_key_stored_unlike_its_normal_form_is_journalled_as_given(
    ledger: Ledger, campaign_dir: Path
) -> None:
    """A pledge whose stored key is not its normal form (a ledger from before keys were
    normalised): its member's key is the normal form, so nothing is copied; the issue
    fingerprints the values as they are and the proof still holds."""
    campaign = load_campaign(campaign_dir / "campaign.toml")
    odd = pledge(ledger, 1, paid=False)
    with ledger.write() as tx:
        tx.update(schema.pledges, {"id": odd}, person_key="  B1@Example.ORG ")
        transition(tx, odd, Status.PAID, reason="bank transfer received")
        tx.record("test.legacy_key", f"pledge:{odd}", {})
    pledge(ledger, 2)
    before = head(ledger)
    issue(ledger, campaign, today="2027-03-01")
    with ledger.read() as conn:
        members = conn.execute(
            sa.select(
                schema.members.c.person_key, schema.members.c.name, schema.members.c.address
            ).order_by(schema.members.c.number)
        ).all()
        assert [tuple(m) for m in members] == [
            ("b1@example.org", "Backer 1 <b>=1+1", "1 Road, Town"),
            ("b2@example.org", "Backer 2 <b>=1+1", "2 Road, Town"),
        ]
        welcome = conn.execute(
            sa.select(schema.outbox.c.to_email).where(schema.outbox.c.kind == "welcome")
        ).scalars()
        assert sorted(welcome) == ["b1@example.org", "b2@example.org"]
    members = [c for c in journal_of(ledger, before) if c["t"] == "members"]
    inserted = members[0]["i"]
    assert isinstance(inserted, dict) and "person_key" in inserted
    verdict = audit.verify(ledger)
    assert verdict.ok, verdict.lines()
