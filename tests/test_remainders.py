"""Remainders as the treasurer opens them: the bank refunds CSV (issue 13, items 5 and 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.spreadsheet import ATTACKS, as_typed, is_number, live_formulas, mode, open_csv

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all


def test_the_bank_refunds_csv_runs_no_formula_and_is_private(
    sqlite_cli: Cli, tmp_path: Path
) -> None:
    for n, name in enumerate(ATTACKS):  # £120 each: two shares and £20 owed back
        sqlite_cli.ok(
            "pledges", "add", "--name", name, "--email", f"r{n}@example.org", "--address", "1 Road",
            "--amount", "120.00", "--status", "paid", "--reference", f"-{n}+1",
        )  # fmt: skip
    sqlite_cli.ok("shares", "issue")
    out = tmp_path / "refunds.csv"
    old = os.umask(0o022)
    try:
        sqlite_cli.ok("refunds", "list", "--csv", str(out))
    finally:
        os.umask(old)
    assert mode(out) == 0o600
    rows = open_csv(out)
    assert live_formulas(rows) == []
    assert [as_typed(r["name"]) for r in rows] == [a.strip() for a in ATTACKS]
    assert [as_typed(r["paid_with_reference"]) for r in rows] == [
        f"-{n}+1" for n in range(len(ATTACKS))
    ]
    for r in rows:  # ours: numbers and references as written
        assert is_number(r["pledge_id"]) and r["amount"] == "20.00" and r["currency"] == "GBP"
        assert r["refund_reference"] == f"REFUND-P{r['pledge_id']}"
