"""The ledger on real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser.errors import LedgerError
from fundraiser.ledger import audit, open_ledger, schema
from fundraiser.ledger.migrations import LATEST, V3_PLEDGE_COLUMNS, V4_REMAINDER_COLUMNS
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, create


def _pledge(n: int) -> NewPledge:
    return NewPledge(
        name=f"Backer {n}",
        email=f"b{n}@example.org",
        address=f"{n} Road",
        amount=Money(5000 * n, "GBP"),
        round="crowd",
    )


def test_new_ledger_is_at_latest_version_with_a_verified_chain(db_url: str) -> None:
    ledger = open_ledger(db_url)
    assert ledger.version() == LATEST
    report = ledger.verify()
    assert report.ok and report.entries == 1
    ledger.dispose()


def test_every_write_extends_the_chain_and_verify_passes(db_url: str) -> None:
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        create(tx, _pledge(1))
    with ledger.write() as tx:
        create(tx, _pledge(2))
    report = ledger.verify()
    assert report.ok and report.entries == 3
    assert ledger.head() == (3, report.head)
    ledger.dispose()


def test_a_failed_transaction_leaves_no_trace(db_url: str) -> None:
    ledger = open_ledger(db_url)
    before = ledger.head()
    with pytest.raises(RuntimeError), ledger.write() as tx:
        create(tx, _pledge(1))
        raise RuntimeError("crash mid-change")
    assert ledger.head() == before
    with ledger.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pledges")).scalar() == 0
    ledger.dispose()


def _page_cache(conn: sa.Connection) -> int:
    return int(conn.exec_driver_sql("PRAGMA cache_size").scalar() or 0)


def test_a_small_cache_write_gives_the_connection_back_as_it_found_it(sqlite_url: str) -> None:
    """An issue writes with a bulk read's page cache (SQLite); the pooled connection
    the next write takes has the writer's own again, after a commit or a failure."""
    ledger = open_ledger(sqlite_url)
    with ledger.write() as tx:
        usual = _page_cache(tx.conn)
    assert usual == -65536  # KiB: the writer's 64 MB
    with ledger.write(small_cache=True) as tx:
        assert _page_cache(tx.conn) == -8192
        create(tx, _pledge(1))
    with pytest.raises(RuntimeError), ledger.write(small_cache=True) as tx:
        create(tx, _pledge(2))
        raise RuntimeError("crash mid-change")
    with ledger.write() as tx:
        assert _page_cache(tx.conn) == usual
    with ledger.read() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM pledges")).scalar() == 1
    assert ledger.verify().ok
    ledger.dispose()


@pytest.mark.parametrize(
    "column,value",
    [
        ("data", '{"amount":1}'),
        ("action", "pledge.paid"),
        ("prev_hash", "f" * 64),
        ("hash", "0" * 64),
    ],
)
@pytest.mark.tampers
def test_verify_reports_the_first_edited_entry(db_url: str, column: str, value: str) -> None:
    ledger = open_ledger(db_url)
    for n in range(1, 5):
        with ledger.write() as tx:
            create(tx, _pledge(n))
    with ledger.engine.begin() as conn:
        conn.execute(
            schema.journal.update().where(schema.journal.c.seq == 3).values({column: value})
        )
    report = ledger.verify()
    assert not report.ok
    assert report.broken_at == 3
    ledger.dispose()


@pytest.mark.tampers
def test_verify_reports_a_deleted_entry(db_url: str) -> None:
    ledger = open_ledger(db_url)
    for n in range(1, 4):
        with ledger.write() as tx:
            create(tx, _pledge(n))
    with ledger.engine.begin() as conn:
        conn.execute(schema.journal.delete().where(schema.journal.c.seq == 2))
    report = ledger.verify()
    assert report.broken_at == 3 and "missing" in report.reason
    ledger.dispose()


def test_migrates_forward_from_version_1(db_url: str) -> None:
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        create(tx, _pledge(1))
    # Make it look like a ledger written by schema version 1.
    with ledger.engine.begin() as conn:
        for table in (schema.bank_transactions, schema.refund_accounts):
            table.drop(conn)
        for column in V4_REMAINDER_COLUMNS:
            conn.execute(sa.text(f"ALTER TABLE remainders DROP COLUMN {column.name}"))
        for table in (schema.stripe_events, schema.outbox, schema.state, schema.register_flags):
            table.drop(conn)
        conn.execute(sa.text("DROP INDEX ix_pledges_stripe_charge"))
        conn.execute(sa.text("DROP INDEX ix_pledges_tier_places"))
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SEQUENCE pledge_ids"))
        for column in V3_PLEDGE_COLUMNS:
            conn.execute(sa.text(f"ALTER TABLE pledges DROP COLUMN {column.name}"))
        conn.execute(schema.schema_version.delete())
        conn.execute(schema.schema_version.insert().values(version=1, applied_at="earlier"))
    ledger.dispose()
    again = open_ledger(db_url)
    assert again.version() == LATEST
    with again.read() as conn:
        assert sa.inspect(conn).has_table("stripe_events")
        assert sa.inspect(conn).has_table("outbox")
        columns = {c["name"] for c in sa.inspect(conn).get_columns("pledges")}
        assert {"stripe_charge", "failure_code", "fix_until"} <= columns
        assert conn.execute(sa.text("SELECT count(*) FROM pledges")).scalar() == 1
        actions = conn.execute(
            sa.select(schema.journal.c.action).order_by(schema.journal.c.seq)
        ).scalars()
        # v5 journals the tables as they stand; v6 (membership), v7 (joins), v8 (the
        # member's page), v9 (a tier's places from an index, PostgreSQL's pledge
        # ids from a sequence), v10 (room on PostgreSQL's pages of pledges) and v11 (the
        # journal's hashes unindexed) come after.
        assert list(actions)[-8:] == [
            "ledger.migrate",
            "ledger.snapshot",
            "ledger.migrate",
            "ledger.migrate",
            "ledger.migrate",
            "ledger.migrate",
            "ledger.migrate",
            "ledger.migrate",
        ]
        indexes = {i["name"] for i in sa.inspect(conn).get_indexes("pledges")}
        assert "ix_pledges_tier_places" in indexes
    with again.write() as tx:  # the next pledge follows the one there was
        assert create(tx, _pledge(2)) == 2
    assert again.verify().ok
    # From the snapshot its migration took, the journal proves the tables.
    proof = audit.verify(again)
    assert proof.ok, proof.lines()
    assert proof.tables is not None and proof.tables.first > 1 and proof.tables.changes >= 1
    again.dispose()


@pytest.mark.tampers
def test_refuses_a_ledger_newer_than_the_code(db_url: str) -> None:
    ledger = open_ledger(db_url)
    with ledger.engine.begin() as conn:
        conn.execute(schema.schema_version.insert().values(version=LATEST + 1, applied_at="later"))
    ledger.dispose()
    with pytest.raises(LedgerError, match="upgrade fundraiser"):
        open_ledger(db_url)


def test_journal_holds_no_personal_data(db_url: str) -> None:
    ledger = open_ledger(db_url)
    with ledger.write() as tx:
        create(
            tx,
            NewPledge(
                name="MARKER-NAME",
                email="marker@example.org",
                address="MARKER-ADDRESS",
                amount=Money(5000, "GBP"),
                round="seed",
            ),
        )
    with ledger.read() as conn:
        text = json.dumps([list(r) for r in conn.execute(sa.select(schema.journal))])
    assert "MARKER" not in text and "marker@" not in text
    ledger.dispose()


@pytest.mark.tampers
def test_cli_verify_reports_ok_and_broken(cli: object) -> None:
    from tests.conftest import Cli

    assert isinstance(cli, Cli)
    cli.ok(
        "pledges",
        "add",
        "--name",
        "A",
        "--email",
        "a@example.org",
        "--address",
        "1 Road",
        "--amount",
        "100.00",
    )
    result = cli.ok("ledger", "verify", "--json")
    assert json.loads(result.output)["ok"] is True
    ledger = open_ledger(cli.db_url)
    with ledger.engine.begin() as conn:
        conn.execute(schema.journal.update().where(schema.journal.c.seq == 2).values(data="{}"))
    ledger.dispose()
    result = cli("ledger", "verify", "--json")
    assert result.exit_code == 1
    report = json.loads(result.output)
    assert report["ok"] is False and report["broken_at"] == 2
    plain = cli("ledger", "verify")
    assert plain.exit_code == 1 and "BROKEN at entry 2" in plain.output


def test_a_named_ledger_that_does_not_exist_is_refused_and_nothing_is_made(
    campaign_dir: Path,
) -> None:
    from click.testing import CliRunner

    from fundraiser.cli import main

    missing = campaign_dir / "no" / "such" / "dir" / "x.sqlite"
    result = CliRunner().invoke(
        main,
        [
            "--campaign",
            str(campaign_dir / "campaign.toml"),
            "--db",
            f"sqlite:///{missing}",
            "status",
        ],
    )
    assert result.exit_code == 2
    assert f"names {missing}, and there is no ledger there" in result.output
    assert "Traceback" not in result.output
    assert not (campaign_dir / "no").exists()
    assert not (campaign_dir / "var").exists()


def test_the_default_ledger_is_made_on_first_use_readable_by_its_owner_only(
    campaign_dir: Path,
) -> None:
    from click.testing import CliRunner

    from fundraiser.cli import main

    result = CliRunner().invoke(main, ["--campaign", str(campaign_dir / "campaign.toml"), "status"])
    assert result.exit_code == 0, result.output
    ledger = campaign_dir / "var" / "ledger.sqlite"
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o600
    assert stat.S_IMODE(ledger.parent.stat().st_mode) == 0o700
