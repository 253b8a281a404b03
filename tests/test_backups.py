"""Backups, and restores that refuse a copy whose journal does not prove its tables."""

from __future__ import annotations

import sqlite3
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import Cli, PostgresServer


def pledge(cli: Cli, n: int) -> None:
    cli.ok(
        "pledges", "add", "--name", f"Backer {n}", "--email", f"b{n}@example.org",
        "--address", f"{n} High Street", "--amount", "250.00", "--round", "seed",
    )  # fmt: skip


def pledge_names(url: str) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text("SELECT name FROM pledges ORDER BY id")).scalars())
    finally:
        engine.dispose()


def test_a_backup_comes_back_and_the_ledger_it_replaces_is_kept(sqlite_cli: Cli) -> None:
    pledge(sqlite_cli, 1)
    pledge(sqlite_cli, 2)
    sqlite_cli.ok("backup")
    (copy,) = (sqlite_cli.campaign.parent / "var" / "backups").glob("ledger-*.sqlite")
    pledge(sqlite_cli, 3)  # after the backup: the restore takes the ledger back before it
    checked = sqlite_cli.ok("restore", str(copy), "--dry-run")
    assert "proves itself" in checked.output and "Nothing was changed" in checked.output
    assert pledge_names(sqlite_cli.db_url) == ["Backer 1", "Backer 2", "Backer 3"]
    done = sqlite_cli.ok("restore", str(copy))
    assert pledge_names(sqlite_cli.db_url) == ["Backer 1", "Backer 2"]
    ledger = Path(sqlite_cli.db_url.removeprefix("sqlite:///"))
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    (kept,) = ledger.parent.glob("ledger.before-restore-*.sqlite")
    assert str(kept) in done.output
    assert pledge_names(f"sqlite:///{kept}") == ["Backer 1", "Backer 2", "Backer 3"]
    assert sqlite_cli.ok("ledger", "verify").output.startswith("OK")


@pytest.mark.parametrize(
    ("edit", "named"),
    [
        ("UPDATE pledges SET amount = 2500000 WHERE id = 1", "pledges id=1 amount"),
        ("UPDATE pledges SET name = 'Mallory' WHERE id = 2", "pledges id=2 name"),
        ("DELETE FROM journal WHERE seq = (SELECT MAX(seq) FROM journal)", "pledges id=2"),
    ],
)
def test_a_copy_that_does_not_prove_itself_is_refused_and_nothing_changes(
    sqlite_cli: Cli, edit: str, named: str
) -> None:
    pledge(sqlite_cli, 1)
    pledge(sqlite_cli, 2)
    sqlite_cli.ok("backup")
    (copy,) = (sqlite_cli.campaign.parent / "var" / "backups").glob("ledger-*.sqlite")
    with sqlite3.connect(copy) as db:
        db.execute(edit)
    db.close()
    ledger = Path(sqlite_cli.db_url.removeprefix("sqlite:///"))
    before = ledger.read_bytes()
    refused = sqlite_cli("restore", str(copy))
    assert refused.exit_code == 1, refused.output
    assert "does not prove itself" in refused.output and named in refused.output
    assert "Mallory" not in refused.output and "Traceback" not in refused.output
    assert ledger.read_bytes() == before
    assert not list(ledger.parent.glob("ledger.before-restore-*"))


def test_a_restore_waits_for_the_ledger_to_be_free(sqlite_cli: Cli) -> None:
    pledge(sqlite_cli, 1)
    sqlite_cli.ok("backup")
    (copy,) = (sqlite_cli.campaign.parent / "var" / "backups").glob("ledger-*.sqlite")
    ledger = Path(sqlite_cli.db_url.removeprefix("sqlite:///"))
    busy = sqlite3.connect(ledger, isolation_level=None)
    try:
        busy.execute("BEGIN IMMEDIATE")  # a writer at work: the pledge service, say
        refused = sqlite_cli("restore", str(copy))
    finally:
        busy.execute("ROLLBACK")
        busy.close()
    assert refused.exit_code == 1 and "in use" in refused.output
    assert pledge_names(sqlite_cli.db_url) == ["Backer 1"]


@pytest.mark.postgres
def test_a_postgresql_ledger_is_dumped_and_restored_into_an_empty_database(
    campaign_dir: Path, postgres: PostgresServer
) -> None:
    source = Cli(campaign_dir / "campaign.toml", postgres.new_database())
    pledge(source, 1)
    pledge(source, 2)
    made = source.ok("backup")
    (dump,) = (campaign_dir / "var" / "backups").glob("ledger-*.dump")
    assert str(dump) in made.output and stat.S_IMODE(dump.stat().st_mode) == 0o600
    target = Cli(campaign_dir / "campaign.toml", postgres.new_database())
    target.ok("restore", str(dump))
    assert pledge_names(target.db_url) == ["Backer 1", "Backer 2"]
    assert target.ok("ledger", "verify").output.startswith("OK")
    # Into a database that holds a ledger already: refused, nothing touched.
    again = source("restore", str(dump))
    assert again.exit_code == 1 and "not empty" in again.output
    assert pledge_names(source.db_url) == ["Backer 1", "Backer 2"]


@pytest.mark.postgres
@pytest.mark.tampers
def test_a_dump_of_a_tampered_ledger_is_refused_and_its_database_left_empty(
    campaign_dir: Path, postgres: PostgresServer
) -> None:
    source = Cli(campaign_dir / "campaign.toml", postgres.new_database())
    pledge(source, 1)
    engine = sa.create_engine(source.db_url)
    with engine.begin() as conn:  # behind the journal's back, before the dump
        conn.execute(sa.text("UPDATE pledges SET amount = 999999 WHERE id = 1"))
    engine.dispose()
    source.ok("backup")
    (dump,) = (campaign_dir / "var" / "backups").glob("ledger-*.dump")
    target = Cli(campaign_dir / "campaign.toml", postgres.new_database())
    refused = target("restore", str(dump))
    assert refused.exit_code == 1 and "pledges id=1 amount" in refused.output
    engine = sa.create_engine(target.db_url)
    with engine.connect() as conn:
        assert sa.inspect(conn).get_table_names() == []
    engine.dispose()
