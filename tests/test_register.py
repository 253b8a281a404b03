"""The share register's own writes: issue, withdraw and cancel entries, and holdings from them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser import issuing, register
from fundraiser.config import Campaign, load_campaign
from fundraiser.errors import NotFound
from fundraiser.ledger import Ledger, open_ledger, schema
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, Status, create_many
from tests.conftest import Cli
from tests.spreadsheet import ATTACKS, as_typed, is_number, live_formulas, mode, open_csv

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all

TODAY = "2026-12-10"


@pytest.fixture
def campaign(campaign_dir: Path) -> Campaign:
    return load_campaign(campaign_dir / "campaign.toml")  # £50 a share, 1 to 200 each


@pytest.fixture
def ledger(db_url: str) -> Iterator[Ledger]:
    opened = open_ledger(db_url)
    yield opened
    opened.dispose()


def paid(name: str, pounds: int) -> NewPledge:
    email = f"{name.lower()}@example.org"
    money = Money(pounds * 100, "GBP")
    return NewPledge(name, email, f"{name}'s house", money, "crowd", status=Status.PAID)


def entries(ledger: Ledger) -> list[tuple[object, ...]]:
    columns = schema.register_entries.c
    with ledger.read() as conn:
        rows = conn.execute(
            sa.select(
                columns.id,
                columns.member_number,
                columns.kind,
                columns.shares,
                columns.amount,
                columns.pledge_id,
                columns.certificate_number,
                columns.entry_date,
            ).order_by(columns.id)
        )
        return [tuple(row) for row in rows]


def issued(ledger: Ledger, campaign: Campaign) -> None:
    """Ada pays £120 (two shares, £20 back), Bo £250 (five shares)."""
    with ledger.write() as tx:
        create_many(tx, [paid("Ada", 120), paid("Bo", 250)])
    issuing.issue(ledger, campaign, today=TODAY)


def test_issue_numbers_members_entries_and_certificates_in_order(
    ledger: Ledger, campaign: Campaign
) -> None:
    issued(ledger, campaign)
    assert entries(ledger) == [
        (1, 1, "issue", 2, 10000, None, 1, TODAY),
        (2, 2, "issue", 5, 25000, None, 2, TODAY),
    ]
    with ledger.read() as conn:
        assert register.holding(conn, 1) == (2, 10000)
        assert register.holding(conn, 2) == (5, 25000)
        assert [(h.number, h.name, h.shares, h.paid) for h in register.holdings(conn, "GBP")] == [
            (1, "Ada", 2, Money(10000, "GBP")),
            (2, "Bo", 5, Money(25000, "GBP")),
        ]
        link = schema.allotments.c
        links = conn.execute(sa.select(link.entry_id, link.pledge_id, link.amount)).all()
        assert sorted(tuple(r) for r in links) == [(1, 1, 10000), (2, 2, 25000)]
        rem = schema.remainders.c
        rems = conn.execute(sa.select(rem.pledge_id, rem.amount, rem.status)).all()
        assert [tuple(r) for r in rems] == [(1, 2000, "due")]
    head = ledger.head()
    again = issuing.issue(ledger, campaign, today="2026-12-11")
    assert (again.entries, again.members_admitted) == (0, 0) and ledger.head() == head


def test_a_withdrawal_entry_carries_a_balance_certificate_until_the_member_ceases(
    ledger: Ledger, campaign: Campaign
) -> None:
    issued(ledger, campaign)
    with ledger.write() as tx:
        part = register.enter_withdrawal(
            tx, 2, 3, Money(15000, "GBP"), today="2026-12-12", note="minute 7"
        )
        tx.record("register.test", "register", {})  # its callers journal it
    assert part == register.Reduction(3, 3, Money(15000, "GBP"), 3, 2, False)
    with ledger.write() as tx:
        rest = register.enter_withdrawal(
            tx, 2, 2, Money(10000, "GBP"), today="2026-12-13", note=None
        )
        tx.record("register.test", "register", {})  # its callers journal it
    assert rest == register.Reduction(4, 2, Money(10000, "GBP"), None, 0, True)
    assert entries(ledger)[2:] == [
        (3, 2, "withdraw", 3, 15000, None, 3, "2026-12-12"),
        (4, 2, "withdraw", 2, 10000, None, None, "2026-12-13"),
    ]
    with ledger.read() as conn:
        assert register.holding(conn, 2) == (0, 0)
        assert register.get_member(conn, 2).ceased_on == "2026-12-13"
        assert register.get_member(conn, 1).ceased_on is None  # Ada keeps her two shares
        entry = schema.register_entries.c
        note = conn.execute(sa.select(entry.note).where(entry.id == 3)).scalar()
        assert note == "minute 7"


def test_a_cancel_entry_names_its_pledge_and_is_counted_for_it_only(
    ledger: Ledger, campaign: Campaign
) -> None:
    issued(ledger, campaign)
    with ledger.write() as tx:
        taken = register.enter_cancellation(
            tx, 1, 1, Money(5000, "GBP"), today=TODAY, pledge_id=1, note="pledge 1 refunded"
        )
        tx.record("register.test", "register", {})  # its callers journal it
    assert taken == register.Reduction(3, 1, Money(5000, "GBP"), 3, 1, False)
    assert entries(ledger)[2] == (3, 1, "cancel", 1, 5000, 1, 3, TODAY)
    with ledger.read() as conn:
        assert register.holding(conn, 1) == (1, 5000)
        assert register.cancelled_shares(conn, 1, [1]) == 1
        assert register.cancelled_shares(conn, 1, [2]) == 0
        assert register.cancelled_shares(conn, 2, [1, 2]) == 0
    with ledger.write() as tx:
        last = register.enter_cancellation(
            tx, 1, 1, Money(5000, "GBP"), today=TODAY, pledge_id=1, note="pledge 1 refunded"
        )
        tx.record("register.test", "register", {})  # its callers journal it
    assert (last.entry_id, last.balance_certificate, last.ceased) == (4, None, True)
    with ledger.read() as conn:
        assert register.cancelled_shares(conn, 1, [1]) == 2
        assert register.holding(conn, 1) == (0, 0)
        assert register.get_member(conn, 1).ceased_on == TODAY


def test_an_unknown_member_holds_nothing_and_is_not_found(ledger: Ledger) -> None:
    with ledger.read() as conn:
        assert register.holding(conn, 9) == (0, 0)
        with pytest.raises(
            NotFound, match="member 9 does not exist: see `fundraiser members list`"
        ):
            register.get_member(conn, 9)


# -- the register as the board opens it (issue 13, items 5 and 16) --------------------


def _attackers(cli: Cli) -> None:
    for n, name in enumerate(ATTACKS):
        cli.ok(
            "pledges", "add", "--name", name, "--email", f"a{n}@example.org", "--address", name,
            "--amount", "120.00", "--status", "paid", "--reference", f"R{n}",
        )  # fmt: skip
    cli.ok("shares", "issue")


def test_the_register_csv_runs_no_formula_and_keeps_numbers_and_text(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    _attackers(sqlite_cli)
    out = tmp_path / "register.csv"
    sqlite_cli.ok("members", "export", "--format", "csv", "--out", str(out))
    rows = open_csv(out)
    assert len(rows) == len(ATTACKS)
    assert live_formulas(rows) == []
    assert [as_typed(r["name"]) for r in rows] == [
        a.strip() for a in ATTACKS
    ]  # as typed, shown as text
    assert [as_typed(r["address"]) for r in rows] == [a.strip() for a in ATTACKS]
    for r in rows:  # our own columns stay numbers and dates
        assert is_number(r["number"]) and is_number(r["shares"]) and is_number(r["amount_paid"])
        assert r["amount_paid"] == "100.00" and r["shares"] == "2"  # £20 each is a remainder
        assert r["admitted_on"] == TODAY and r["currency"] == "GBP"


def test_register_exports_are_readable_by_their_owner_only(sqlite_cli: Cli, tmp_path: Path) -> None:
    _attackers(sqlite_cli)
    old = os.umask(0o022)  # the usual umask would make them world-readable
    try:
        for fmt in ("csv", "json"):
            out = tmp_path / f"register.{fmt}"
            out.write_text("an older export, world-readable")
            out.chmod(0o644)
            (tmp_path / f"register.{fmt}.part").write_text("left by a crash")
            (tmp_path / f"register.{fmt}.part").chmod(0o644)
            sqlite_cli.ok("members", "export", "--format", fmt, "--out", str(out))
            assert mode(out) == 0o600, fmt
            assert not (tmp_path / f"register.{fmt}.part").exists()
        public = tmp_path / "summary.csv"
        sqlite_cli.ok("members", "export", "--public", "--out", str(public))
        assert mode(public) == 0o600
    finally:
        os.umask(old)
