"""The voter roll as a spreadsheet opens it, and kept private (issue 13, items 5 and 16)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.spreadsheet import ATTACKS, as_typed, is_number, live_formulas, mode, open_csv

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all


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
