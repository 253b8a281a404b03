"""`fundraiser books export`: beancount's own loader takes it, and it agrees with the ledger."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from beancount import loader
from beancount.core import data, realization

from fundraiser.ledger import open_ledger, schema
from tests.bankfixtures import Tx, mt940
from tests.conftest import Cli
from tests.spreadsheet import is_number, mode

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all

AFTER = {"FUNDRAISER_NOW": "2027-03-05T12:00:00+00:00"}


def _campaign(cli: Cli) -> None:
    text = cli.campaign.read_text().replace('goal = "250000.00"', 'goal = "100.00"')
    cli.campaign.write_text(text)


def _scenario(cli: Cli, tmp_path: Path) -> None:
    """Bank receipts (paid, part, over, unmatched), one marked paid by hand, shares issued."""
    _campaign(cli)
    people = [
        ("Ann Lee", "75.00"),
        ('=HYPERLINK("http://x")', "100.00"),
        ("Cy Dee", "50.00"),
        ("Di Fox", "200.00"),
    ]
    for n, (name, amount) in enumerate(people, start=1):
        cli.ok(
            "pledges",
            "add",
            "--name",
            name,
            "--email",
            f"p{n}@ex.org",
            "--address",
            "1 Road",
            "--amount",
            amount,
            "--round",
            "crowd",
        )
    cli.ok("pledges", "mark-paid", "4", "--reference", "BT-1")
    statement = mt940(
        tmp_path / "s.sta",
        [
            Tx("B1", "75.00", "PLEDGE-1", day="2027-02-01"),
            Tx("B2", "130.00", "PLEDGE-2", day="2027-02-02"),  # 30.00 over
            Tx("B3", "20.00", "PLEDGE-3", day="2027-02-03"),  # part: pledge 3 waits
            Tx("B4", "12.00", "a gift", day="2027-02-04"),  # unmatched
        ],
    )
    cli.ok("bank", "import", str(statement))
    cli.ok("shares", "issue", env=AFTER)


def _balances(path: Path) -> dict[str, Decimal]:
    entries, errors, _ = loader.load_file(str(path))
    assert errors == []
    real = realization.realize(entries)
    found = {}
    for account in realization.iter_children(real):
        units = account.balance.get_currency_units("GBP").number
        if account.account and units:
            found[account.account] = units
    assert any(isinstance(e, data.Balance) for e in entries)  # the ledger's totals, checked
    return found


def test_the_beancount_books_load_and_their_balances_are_the_ledgers(
    cli: Cli, tmp_path: Path
) -> None:
    _scenario(cli, tmp_path)
    out = tmp_path / "books.beancount"
    summary = json.loads(
        cli.ok(
            "books", "export", "--format", "beancount", "--out", str(out), "--json", env=AFTER
        ).output
    )
    assert mode(out) == 0o600
    balances = _balances(out)
    ledger = open_ledger(cli.db_url)
    with ledger.read() as conn:
        shares = conn.execute(sa.select(sa.func.sum(schema.register_entries.c.amount))).scalar()
        owed = conn.execute(sa.select(sa.func.sum(schema.remainders.c.amount))).scalar()
        waiting = conn.execute(
            sa.select(sa.func.sum(schema.pledges.c.paid_amount)).where(
                schema.pledges.c.status == "pending"
            )
        ).scalar()
    ledger.dispose()
    # Money in: 75 + 130 + 20 + 12 by statement, 200 by hand.
    assert balances["Assets:Bank:Current"] == Decimal("437.00")
    assert balances["Equity:Share-Capital"] == -Decimal(shares) / 100 == Decimal("-350.00")
    assert balances["Liabilities:Refunds-Due"] == -Decimal(owed) / 100  # 25 fraction + 30 over
    assert balances["Liabilities:Refunds-Due"] == Decimal("-55.00")
    assert balances["Liabilities:Unidentified-Receipts"] == Decimal("-12.00")
    assert balances["Liabilities:Pledges"] == -Decimal(waiting) / 100 == Decimal("-20.00")
    assert summary["balances"]["Assets:Bank:Current"] == 43700
    text = out.read_text()
    assert "HYPERLINK" not in text and "Ann Lee" not in text and "p1@ex.org" not in text
    assert 'ref: "bank-txn:2"' in text and 'ref: "register-entry:1"' in text


def test_the_books_csv_opens_cleanly_and_balances(cli: Cli, tmp_path: Path) -> None:
    _scenario(cli, tmp_path)
    out = tmp_path / "books.csv"
    cli.ok("books", "export", "--format", "csv", "--out", str(out), env=AFTER)
    assert mode(out) == 0o600
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8"))))
    assert rows and {r["currency"] for r in rows} == {"GBP"}
    # Our own amounts open as numbers, negative ones too (never neutralised as text).
    assert any(r["amount"].startswith("-") for r in rows)
    assert all(is_number(r["amount"]) for r in rows)
    for row in rows:
        for key, value in row.items():
            if key != "amount":
                assert not value.startswith(("=", "+", "-", "@", "\t", "\r")), (key, value)
    by_txn: dict[str, Decimal] = {}
    for r in rows:
        by_txn[r["transaction"]] = by_txn.get(r["transaction"], Decimal(0)) + Decimal(r["amount"])
    assert set(by_txn.values()) == {Decimal(0)}  # every transaction balances
    bank = sum(Decimal(r["amount"]) for r in rows if r["account"] == "Assets:Bank:Current")
    assert bank == Decimal("437.00")


def test_a_books_chart_is_checked_in_campaign_toml(cli: Cli, tmp_path: Path) -> None:
    text = cli.campaign.read_text().replace(
        "\n[[tiers]]",
        '\n[books]\nbank = "Assets:Bank:Triodos"\nshare_capital = "Assets:Shares"\n'
        'pledges = "liabilities:x"\n\n[[tiers]]',
        1,
    )
    cli.campaign.write_text(text)
    result = cli("check")
    assert result.exit_code != 0
    assert "books.share_capital: 'Assets:Shares' is not under Equity" in result.output
    assert "books.pledges: 'liabilities:x' is not an account name" in result.output
