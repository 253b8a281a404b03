"""The journal proves the tables: replayed into empty tables, it gives them back."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from fundraiser import outbox
from fundraiser.ledger import Ledger, audit, open_ledger, replay, schema
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, Source, Status, create, create_many, transition

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def new(n: int, **extra: object) -> NewPledge:
    return NewPledge(
        name=f"Backer {n}",
        email=f"b{n}@example.org",
        address=f"{n} Road, Town",
        amount=Money(5000 * n, "GBP"),
        round="crowd",
        **extra,  # type: ignore[arg-type]
    )


def history(ledger: Ledger) -> None:
    with ledger.write() as tx:
        one = create(tx, new(1, reference="BT-1"))
        create_many(tx, [new(2), new(3, source=Source.IMPORT), new(4, display_name="Dee")])
        transition(tx, one, Status.PAID, reason="bank transfer received")
        outbox.queue(
            tx,
            outbox.Kind.PAYMENT_RECEIVED,
            f"pledge-{one}-paid",
            to_email="b1@example.org",
            to_name="Backer 1",
            data={"pledge_id": one},
            pledge_id=one,
        )
    with ledger.write() as tx:
        transition(tx, 2, Status.CANCELLED, reason="cancelled by an organizer")


def tamper(ledger: Ledger, sql: str) -> None:
    with ledger.engine.begin() as conn:
        conn.execute(sa.text(sql))


def test_an_untouched_ledger_replays_to_its_own_tables(ledger: Ledger) -> None:
    history(ledger)
    verdict = audit.verify(ledger)
    assert verdict.ok, verdict.lines()
    assert verdict.tables is not None and verdict.tables.first == 1
    assert verdict.tables.changes >= 5


def test_the_journal_holds_fingerprints_not_people(ledger: Ledger) -> None:
    history(ledger)
    with ledger.read() as conn:
        text = " ".join(conn.execute(sa.select(schema.journal.c.data)).scalars())
    for private in ("Backer", "example.org", "Road", "Dee", "BT-1"):
        assert private not in text
    assert "fp:" in text


@pytest.mark.parametrize(
    ("sql", "table", "row", "column"),
    [
        ("UPDATE pledges SET amount = 500000 WHERE id = 1", "pledges", "id=1", "amount"),
        ("UPDATE pledges SET status = 'refunded' WHERE id = 1", "pledges", "id=1", "status"),
        ("UPDATE pledges SET name = 'Mallory' WHERE id = 3", "pledges", "id=3", "name"),
        ("UPDATE pledges SET address = '1 Other St' WHERE id = 4", "pledges", "id=4", "address"),
        ("DELETE FROM outbox WHERE id = 1", "outbox", "id=1", "(row)"),
        (
            "UPDATE outbox SET status = 'sent', sent_at = 'x' WHERE id = 1",
            "outbox",
            "id=1",
            "status",
        ),
    ],
)
def test_each_edit_of_a_table_is_named(
    ledger: Ledger, sql: str, table: str, row: str, column: str
) -> None:
    history(ledger)
    tamper(ledger, sql)
    verdict = audit.verify(ledger)
    assert not verdict.ok and verdict.chain.ok  # the chain itself is intact
    assert verdict.tables is not None
    found = {(d.table, d.row, d.column) for d in verdict.tables.differences}
    assert (table, row, column) in found
    text = "\n".join(verdict.lines())
    assert "Mallory" not in text and "Other St" not in text  # people are never printed


def test_a_ledger_bigger_than_what_verify_holds_is_proved_and_its_edits_named(
    ledger: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # verify's bounds made tiny: the journal is read an entry at a time, and the
    # replay is a file in the temp folder, gone afterwards.
    monkeypatch.setattr(replay, "_ENTRIES", 1)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    history(ledger)
    with ledger.write() as tx:
        create_many(tx, [new(n) for n in range(5, 40)])
    verdict = audit.verify(ledger)
    assert verdict.ok, verdict.lines()
    tamper(ledger, "UPDATE pledges SET email = 'b5@example.org' WHERE id = 38")
    verdict = audit.verify(ledger)
    assert verdict.tables is not None
    assert [(d.table, d.row, d.column) for d in verdict.tables.differences] == [
        ("pledges", "id=38", "email")
    ]
    assert list(scratch.iterdir()) == []


def test_differences_in_tables_compared_apart_are_named_in_the_tables_order(
    ledger: Ledger,
) -> None:
    # The pledges are compared in a process of their own, the other tables in
    # verify's: what both find is told in the tables' order, and past `keep` counted.
    history(ledger)
    tamper(ledger, "UPDATE pledges SET amount = amount + 1")
    tamper(ledger, "DELETE FROM outbox")
    found = replay.prove(ledger)
    assert [(d.table, d.row, d.column) for d in found.differences] == [
        *[("pledges", f"id={n}", "amount") for n in (1, 2, 3, 4)],
        ("outbox", "id=1", "(row)"),
    ]
    assert found.more == 0
    cut = replay.prove(ledger, keep=3)
    assert [(d.table, d.row) for d in cut.differences] == [
        ("pledges", "id=1"),
        ("pledges", "id=2"),
        ("pledges", "id=3"),
    ]
    assert cut.more == 2 and not cut.ok


def test_a_row_inserted_behind_the_journal_is_named(ledger: Ledger) -> None:
    history(ledger)
    tamper(
        ledger,
        "INSERT INTO pledges (id, created_at, updated_at, person_key, name, email, address, "
        "round, amount, currency, status, source) VALUES (99, 'x', 'x', 'k', 'n', 'e', 'a', "
        "'crowd', 1, 'GBP', 'paid', 'offline')",
    )
    verdict = audit.verify(ledger)
    assert verdict.tables is not None
    assert [(d.table, d.row, d.column) for d in verdict.tables.differences] == [
        ("pledges", "id=99", "(row)")
    ]


def test_a_published_head_catches_a_journal_cut_short(ledger: Ledger) -> None:
    history(ledger)
    seq, head = ledger.head()
    assert audit.verify(ledger, head_hash=head, head_at=seq).ok
    tamper(ledger, f"DELETE FROM journal WHERE seq > {seq - 1}")
    cut = audit.verify(ledger, head_hash=head, head_at=seq)
    assert cut.chain.ok  # what is left still chains
    assert cut.head_problem is not None and "cut short" in cut.head_problem


def test_a_published_head_catches_a_rewritten_journal(ledger: Ledger) -> None:
    history(ledger)
    seq, _ = ledger.head()
    verdict = audit.verify(ledger, head_hash="0" * 64, head_at=seq)
    assert verdict.head_problem is not None and "rewritten" in verdict.head_problem


def test_changes_not_journalled_are_refused_and_rolled_back(ledger: Ledger) -> None:
    from fundraiser.errors import LedgerError

    with pytest.raises(LedgerError), ledger.write() as tx:
        tx.update(schema.pledges, {"id": 1}, amount=1)  # touches nothing: allowed
        tx.insert(
            schema.members,
            ["number", "person_key", "name", "address", "admitted_on", "created_at"],
            [(1, "k", "n", "a", "2027-01-01", tx.now)],
        )
    with ledger.read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(schema.members)).scalar() == 0


def test_direct_writes_to_a_proved_table_are_refused(ledger: Ledger) -> None:
    from fundraiser.errors import LedgerError

    with pytest.raises(LedgerError, match="journalled"), ledger.write() as tx:
        tx.execute(schema.pledges.delete())


# -- random histories: every one proves its tables; every tampering is named ------

ROOT = Path(__file__).resolve().parents[2]
PEOPLE = ["ada@example.org", "bob@example.org", "cy@example.org", "di@example.org"]

Step = tuple[str, int, int]  # (action, who or which, size)


def _run(ledger: Ledger, steps: list[Step]) -> None:
    """Apply a history through the domain's own operations; refusals are part of life."""
    from fundraiser import cancel, offline
    from fundraiser.config import load_campaign
    from fundraiser.errors import FundraiserError
    from fundraiser.issuing import issue
    from fundraiser.membership import privacy, withdrawal

    campaign = load_campaign(ROOT / "campaign.toml")
    now = campaign.campaign.opens
    for action, who, size in steps:
        email = PEOPLE[who % len(PEOPLE)]
        try:
            if action == "pledge":
                offline.record_offline(
                    ledger,
                    NewPledge(
                        name=f"Person {who}",
                        email=email,
                        address=f"{who} Lane\nTown",
                        amount=Money(5000 * size, "GBP"),
                        round="crowd",
                        reference=None,
                    ),
                    notify=False,
                )
            elif action in ("pay", "cancel"):
                with ledger.read() as conn:
                    ids = conn.execute(sa.select(schema.pledges.c.id)).scalars().all()
                if not ids:
                    continue
                target = ids[who % len(ids)]
                if action == "pay":
                    offline.mark_paid(ledger, target, notify=True)
                else:
                    cancel.cancel(
                        ledger,
                        target,
                        who=cancel.Who.ORGANIZER,
                        reason="changed their mind",
                        now=now,
                        deadline=campaign.campaign.deadline,
                        at_stripe=lambda pid, reason: (_ for _ in ()).throw(
                            AssertionError("no card pledges here")
                        ),
                    )
            elif action == "issue":
                issue(ledger, campaign, today="2027-03-01")
            elif action == "withdraw":
                withdrawal.withdraw(ledger, campaign, 1 + who % 3, size, today="2027-04-01")
            elif action == "forget":
                privacy.forget(ledger, email, today="2040-01-01")
        except FundraiserError:
            pass


STEP = st.tuples(
    st.sampled_from(["pledge", "pledge", "pay", "pay", "cancel", "issue", "withdraw", "forget"]),
    st.integers(0, 7),
    st.integers(1, 4),
)
# Most histories found the co-op first (pledges paid, shares issued), then go anywhere.
FOUNDING: list[Step] = [("pledge", 0, 2), ("pledge", 1, 1), ("pay", 0, 1), ("pay", 1, 1)]
STEPS = st.builds(
    lambda founded, rest, issued: ([*FOUNDING, ("issue", 0, 0)] if founded else []) + rest + issued,
    st.booleans(),
    st.lists(STEP, min_size=2, max_size=12),
    st.lists(st.just(("issue", 0, 0)), max_size=1),
)


# Edits a person with database access might make behind the journal's back.
TAMPERING = [
    (
        "pledges",
        "UPDATE pledges SET amount = amount * 100 WHERE id = (SELECT MIN(id) FROM pledges)",
    ),
    ("pledges", "UPDATE pledges SET status = 'refunded' WHERE id = (SELECT MAX(id) FROM pledges)"),
    ("pledges", "UPDATE pledges SET name = 'Mallory' WHERE id = (SELECT MIN(id) FROM pledges)"),
    (
        "pledges",
        "DELETE FROM pledges WHERE id = (SELECT MAX(id) FROM pledges) AND id NOT IN "
        "(SELECT pledge_id FROM allotments UNION SELECT pledge_id FROM remainders "
        "UNION SELECT pledge_id FROM outbox WHERE pledge_id IS NOT NULL)",
    ),
    ("members", "UPDATE members SET address = '1 Other Street' WHERE number = 1"),
    ("members", "UPDATE members SET ceased_on = NULL WHERE ceased_on IS NOT NULL"),
    ("register_entries", "UPDATE register_entries SET shares = shares * 100 WHERE id = 1"),
    (
        "register_entries",
        "INSERT INTO register_entries (id, member_number, kind, shares, amount, "
        "currency, entry_date, created_at) SELECT 999, number, 'issue', 150, "
        "750000, 'GBP', '2027-03-01', 'x' FROM members LIMIT 1",
    ),
    ("remainders", "UPDATE remainders SET status = 'refunded' WHERE status = 'due'"),
    ("outbox", "UPDATE outbox SET status = 'sent', sent_at = 'x' WHERE status = 'queued'"),
]


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(steps=STEPS, tampering=st.sampled_from(TAMPERING))
def test_random_histories_prove_their_tables_and_every_tampering_is_named(
    tmp_path_factory: pytest.TempPathFactory, steps: list[Step], tampering: tuple[str, str]
) -> None:
    folder = tmp_path_factory.mktemp("history")
    ledger = open_ledger(f"sqlite:///{folder / 'ledger.sqlite'}")
    try:
        touched = proves_and_names_tampering(ledger, steps, tampering)
        event(f"tampered with {tampering[0]}" if touched else "nothing to tamper with")
    finally:
        ledger.dispose()


def proves_and_names_tampering(
    ledger: Ledger, steps: list[Step], tampering: tuple[str, str]
) -> bool:
    """Run `steps`, check verify proves the tables, tamper, and check verify names the
    table; False when the history had nothing of the kind to tamper with."""
    _run(ledger, steps)
    honest = audit.verify(ledger)
    assert honest.ok, honest.lines()
    table, sql = tampering
    with ledger.engine.begin() as conn:
        touched = conn.execute(sa.text(sql)).rowcount
    if not touched:
        return False  # nothing of the kind in this history to tamper with
    caught = audit.verify(ledger)
    assert not caught.ok and caught.chain.ok
    assert caught.tables is not None
    assert table in {d.table for d in caught.tables.differences}, caught.lines()
    return True
