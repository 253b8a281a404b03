"""The CSV importer: every bad row named by its line, all rows or none, never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser.config import Campaign, load_campaign
from fundraiser.errors import ImportRejected
from fundraiser.importer import import_file, plan_import
from fundraiser.ledger import Ledger, open_ledger, schema

ROOT = Path(__file__).resolve().parent.parent
HEADER = "name,email,amount,round,status,reference,address\n"


@pytest.fixture
def campaign() -> Campaign:
    return load_campaign(ROOT / "campaign.toml")


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    return open_ledger(f"sqlite:///{tmp_path / 'ledger.sqlite'}")


def csv_file(tmp_path: Path, body: str, *, prefix: str = HEADER, encoding: str = "utf-8") -> Path:
    path = tmp_path / "seed.csv"
    path.write_bytes((prefix + body).encode(encoding))
    return path


def count(ledger: Ledger) -> int:
    with ledger.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(schema.pledges)).scalar())


def test_rows_become_pledges_once_however_often_the_file_is_imported(
    tmp_path: Path, ledger: Ledger, campaign: Campaign
) -> None:
    path = csv_file(
        tmp_path,
        "Ada,ada@example.org,250.00,seed,paid,BT-1,1 High St\n"
        "Bob,bob@example.org,50,crowd,pledged,,2 Low St\n"
        "Bob,bob@example.org,50,crowd,pledged,,2 Low St\n",  # the same row twice: two pledges
        encoding="utf-8-sig",  # a spreadsheet's byte-order mark is read as nothing
    )
    first = import_file(ledger, campaign, path)
    again = import_file(ledger, campaign, path)
    assert (len(first.new), first.skipped, first.total) == (3, 0, 35000)
    assert (len(again.new), again.skipped) == (0, 3)
    assert count(ledger) == 3


def test_every_bad_row_is_named_and_nothing_is_written(
    tmp_path: Path, ledger: Ledger, campaign: Campaign
) -> None:
    path = csv_file(
        tmp_path,
        "Ada,ada@example.org,250.00,seed,paid,BT-1,1 High St\n"
        ",not-an-email,12.345,moon,maybe,,\n"
        "Cy,cy@example.org,250.00,seed,paid,BT-1,3 Mid St\n"
        "Di,di@example.org,250.00,seed,paid,BT-9,4 St,extra\n",
    )
    with pytest.raises(ImportRejected) as caught:
        import_file(ledger, campaign, path)
    where = [p.where for p in caught.value.problems]
    assert "seed.csv: line 3 name" in where
    assert "seed.csv: line 3 email" in where
    assert "seed.csv: line 3 amount" in where
    assert "seed.csv: line 3 round" in where
    assert "seed.csv: line 3 status" in where
    assert "seed.csv: line 3 address" in where
    assert "seed.csv: line 4 reference" in where  # BT-1 is also on line 2
    assert "seed.csv: line 5" in where  # more fields than the header
    assert count(ledger) == 0


@pytest.mark.parametrize(
    ("prefix", "body", "says"),
    [
        ("", "", "no header"),
        ("name;email;amount;round;status;reference;address\n", "", "not separated by commas"),
        ("name,email,amount\n", "Ada,ada@example.org,1\n", "missing column(s)"),
        (HEADER, "", "has a header but no rows"),
    ],
)
def test_a_file_that_is_not_our_csv_is_refused_with_the_fix(
    tmp_path: Path, ledger: Ledger, campaign: Campaign, prefix: str, body: str, says: str
) -> None:
    path = csv_file(tmp_path, body, prefix=prefix)
    with ledger.read() as conn, pytest.raises(ImportRejected) as caught:
        plan_import(conn, campaign, path)
    assert any(says in p.message for p in caught.value.problems)


def test_a_file_that_is_not_utf8_is_refused(
    tmp_path: Path, ledger: Ledger, campaign: Campaign
) -> None:
    path = csv_file(tmp_path, "Zoë,zoe@example.org,50,crowd,paid,,1 Rue\n", encoding="latin-1")
    with ledger.read() as conn, pytest.raises(ImportRejected) as caught:
        plan_import(conn, campaign, path)
    assert "CSV UTF-8" in caught.value.problems[0].fix
