"""The voter roll: without the members the rules suspend, Decidim's census, and as a
spreadsheet opens it, kept private (issues 16; 13, items 5 and 16)."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path

import pytest

from fundraiser.config import Interval, Rate
from fundraiser.ledger import open_ledger
from fundraiser.membership import fees
from fundraiser.membership.fees import EventKind, FeeEvent
from fundraiser.money import Money
from tests.conftest import Cli
from tests.smtp_fixtures import found
from tests.spreadsheet import ATTACKS, as_typed, is_number, live_formulas, mode, open_csv

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all


def fees_for_grace_and_alan(cli: Cli) -> None:
    """Grace's fee is paid for December; Alan's failed in October and lapsed; Big has none."""
    ledger = open_ledger(cli.db_url)
    try:
        with ledger.write() as tx:
            for number in (1, 2):
                fees.start(
                    tx,
                    member_number=number,
                    rate=Rate.STANDARD,
                    amount=Money(300, "GBP"),
                    interval=Interval.MONTH,
                    started_on="2026-10-01",
                    stripe_subscription=f"sub_{number}",
                )
            fees.apply(
                tx,
                FeeEvent(
                    EventKind.INVOICE_PAID, "sub_1", "in_1", 300, "GBP", "2026-12-01", "2027-01-01"
                ),
            )
            fees.apply(
                tx,
                FeeEvent(
                    EventKind.PAYMENT_FAILED,
                    "sub_2",
                    "in_2",
                    300,
                    "GBP",
                    "2026-10-01",
                    "2026-11-01",
                ),
            )
    finally:
        ledger.dispose()


def test_the_roll_leaves_out_a_lapsed_member_and_says_why(cli: Cli) -> None:
    found(cli)
    fees_for_grace_and_alan(cli)
    result = cli("members", "roll")  # the CLI's clock: 2026-12-10
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["member_number"] for r in rows] == ["1", "3"]
    assert "1 member the rules suspend is left off (fee lapsed or ended)" in result.stderr
    off = list(csv.DictReader(io.StringIO(cli.ok("members", "roll", "--left-out").stdout)))
    assert off == [
        {
            "email": "alan@example.org",
            "name": "Alan Turing",
            "member_number": "2",
            "why": "fee unpaid since 2026-10-01, lapsed after 2026-10-31",
        }
    ]
    data = json.loads(cli.ok("members", "roll", "--format", "json").stdout)
    assert data["count"] == 2


def test_the_census_is_decidims_one_column_of_emails(cli: Cli, tmp_path: Path) -> None:
    found(cli)
    fees_for_grace_and_alan(cli)
    out = tmp_path / "census.csv"
    said = cli.ok("members", "census", "--out", str(out)).output
    assert f"Wrote 2 voters to {out}." in said
    rows = list(csv.reader(out.open(encoding="utf-8", newline="")))
    # As Decidim reads it: no header, one column, the first row already an email.
    assert rows == [["grace@example.org"], ["big@example.org"]]
    bad = cli("members", "census", "--out", str(tmp_path / "nowhere" / "c.csv"))
    assert bad.exit_code == 2 and "does not exist" in bad.output


def _members(cli: Cli) -> None:
    for n, name in enumerate(ATTACKS):
        cli.ok(
            "pledges", "add", "--name", name, "--email", f"v{n}@example.org", "--address", "1 Road",
            "--amount", "50.00", "--status", "paid", "--reference", f"R{n}",
        )  # fmt: skip
    cli.ok("shares", "issue")


def test_the_roll_runs_no_formula_on_stdout_or_in_a_file(sqlite_cli: Cli, tmp_path: Path) -> None:
    _members(sqlite_cli)
    printed = open_csv(sqlite_cli.ok("members", "roll").output)
    out = tmp_path / "roll.csv"
    old = os.umask(0o022)
    try:
        sqlite_cli.ok("members", "roll", "--out", str(out))
    finally:
        os.umask(old)
    assert mode(out) == 0o600
    for rows in (printed, open_csv(out)):
        assert live_formulas(rows) == []
        assert [as_typed(r["name"]) for r in rows] == [a.strip() for a in ATTACKS]
        assert all(is_number(r["member_number"]) for r in rows)
