"""Bad input: a clear message, a non-zero exit, and the ledger byte-for-byte unchanged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.conftest import Cli

PERSON = ["--name", "Ada", "--email", "ada@example.org", "--address", "1 Road"]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def seeded(sqlite_cli: Cli, campaign_dir: Path) -> tuple[Cli, Path]:
    sqlite_cli.ok("pledges", "add", *PERSON, "--amount", "100.00", "--status", "paid")
    sqlite_cli.ok("pledges", "add", *PERSON, "--amount", "60.00")
    sqlite_cli.ok("pledges", "cancel", "2")
    return sqlite_cli, campaign_dir / "var" / "ledger.sqlite"


BAD = [
    (["pledges", "add", *PERSON, "--amount", "-5"], "negative"),
    (["pledges", "add", *PERSON, "--amount", "0"], "zero"),
    (["pledges", "add", *PERSON, "--amount", "12.345"], "too many decimals"),
    (["pledges", "add", *PERSON, "--amount", "12.50 EUR"], "is in EUR"),
    (["pledges", "add", *PERSON, "--amount", "10.00"], "below the minimum holding"),
    (
        [
            "pledges",
            "add",
            "--name",
            "Ada",
            "--email",
            "ada(at)example",
            "--address",
            "x",
            "--amount",
            "50",
        ],
        "is not an email address",
    ),
    (["pledges", "add", *PERSON, "--amount", "50", "--round", "winter"], "not a round"),
    (["pledges", "cancel", "42"], "does not exist"),
    (["pledges", "mark-paid", "2"], "cannot become paid"),
    (["pledges", "cancel", "1"], "cannot become cancelled"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_changes_nothing(seeded: tuple[Cli, Path], args: list[str], message: str) -> None:
    cli, ledger_file = seeded
    before = digest(ledger_file)
    result = cli(*args)
    assert result.exit_code in (1, 2), result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert digest(ledger_file) == before


def test_bad_csv_changes_nothing(seeded: tuple[Cli, Path], tmp_path: Path) -> None:
    cli, ledger_file = seeded
    before = digest(ledger_file)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "name,email,amount,round,status,reference,address\n"
        "Ok,ok@example.org,50,seed,paid,R1,1 Road\n"
        "Bad,bad@example.org,50.001,seed,paid,R2,1 Road\n"
    )
    result = cli("pledges", "import", str(bad))
    assert result.exit_code == 2 and "line 3 amount" in result.output
    assert digest(ledger_file) == before


def test_a_bad_row_after_many_good_ones_changes_nothing(
    seeded: tuple[Cli, Path], tmp_path: Path
) -> None:
    """Good rows are written while later ones are checked; a late bad row takes them back."""
    cli, ledger_file = seeded
    before = digest(ledger_file)
    good = [f"Backer {n},b{n}@example.org,50.00,crowd,paid,T{n},{n} Road" for n in range(25_000)]
    big = tmp_path / "big.csv"
    big.write_text(
        "name,email,amount,round,status,reference,address\n"
        + "\n".join(good)
        + "\nLate,late@example.org,fifty,crowd,paid,T-late,1 Road\n"
    )
    result = cli("pledges", "import", str(big))
    assert result.exit_code == 2 and "line 25002 amount" in result.output, result.output
    assert digest(ledger_file) == before
    # Without the bad row the same file goes in whole, once.
    big.write_text("name,email,amount,round,status,reference,address\n" + "\n".join(good) + "\n")
    done = json.loads(cli.ok("pledges", "import", str(big), "--json").output)
    assert (done["new"], done["skipped"]) == (25_000, 0)


def test_broken_campaign_file_changes_nothing(seeded: tuple[Cli, Path], campaign_dir: Path) -> None:
    cli, ledger_file = seeded
    before = digest(ledger_file)
    toml = campaign_dir / "campaign.toml"
    toml.write_text(toml.read_text().replace('currency = "GBP"', 'currency = "XYZ"'))
    result = cli("pledges", "add", *PERSON, "--amount", "50")
    assert result.exit_code == 2
    assert "campaign.currency" in result.output and "unknown currency" in result.output
    assert digest(ledger_file) == before
