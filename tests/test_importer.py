"""The CSV importer: every bad row named by its line, all rows or none, never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser import importer
from fundraiser.config import Campaign, load_campaign
from fundraiser.errors import ImportRejected
from fundraiser.importer import import_file, plan_import
from fundraiser.ledger import Ledger, audit, open_ledger, schema

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
    assert (first.new, first.skipped, first.total) == (3, 0, 35000)
    assert (again.new, again.skipped) == (0, 3)
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


def rows_of(first: int, last: int) -> str:
    return "".join(
        f"Backer {n},b{n}@example.org,{50 + n}.00,crowd,paid,BT-{n},{n} Road\n"
        for n in range(first, last + 1)
    )


def test_a_file_bigger_than_a_batch_is_written_in_batches_all_or_none(
    tmp_path: Path, ledger: Ledger, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 2)  # 7 rows: three full batches and one of 1
    path = csv_file(tmp_path, rows_of(1, 7))
    plan = import_file(ledger, campaign, path)
    assert (plan.new, plan.skipped, plan.total) == (7, 0, sum(5000 + 100 * n for n in range(1, 8)))
    with ledger.read() as conn:
        found = conn.execute(
            sa.select(
                schema.pledges.c.id, schema.pledges.c.reference, schema.pledges.c.amount
            ).order_by(schema.pledges.c.id)
        ).all()
    assert [tuple(r) for r in found] == [(n, f"BT-{n}", 5000 + 100 * n) for n in range(1, 8)]
    # Imported again with two more rows: the seven are skipped, whichever batch they are in.
    path.write_text(HEADER + rows_of(1, 9))
    again = import_file(ledger, campaign, path)
    assert (again.new, again.skipped) == (2, 7)
    assert count(ledger) == 9
    assert audit.verify(ledger).ok


def test_a_bad_row_after_batches_were_written_takes_them_all_back(
    tmp_path: Path, ledger: Ledger, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 2)
    bad = "Eve,not-an-email,60.00,crowd,paid,BT-99,9 Road\n"
    path = csv_file(tmp_path, rows_of(1, 5) + bad + rows_of(6, 7))
    with pytest.raises(ImportRejected) as caught:
        import_file(ledger, campaign, path)
    assert [p.where for p in caught.value.problems] == ["seed.csv: line 7 email"]
    assert count(ledger) == 0
    with ledger.read() as conn:
        actions = conn.execute(sa.select(schema.journal.c.action)).scalars().all()
    assert "pledge.create_many" not in actions  # the journal took nothing either
    assert audit.verify(ledger).ok


def test_rows_without_references_are_told_apart_by_their_place_across_batches(
    tmp_path: Path, ledger: Ledger, campaign: Campaign, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(importer, "BATCH", 2)
    same = "Bob,bob@example.org,50,crowd,pledged,,2 Low St\n"
    path = csv_file(tmp_path, same * 5)
    assert import_file(ledger, campaign, path).new == 5
    path.write_text(HEADER + same * 6)  # one more of the same: only it is new
    again = import_file(ledger, campaign, path)
    assert (again.new, again.skipped) == (1, 5)
    assert count(ledger) == 6
