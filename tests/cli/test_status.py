"""`fundraiser status`: what a script's `status --json` costs to start, and what it reads.

Here, in a fresh interpreter as a script or a monitor runs it, what the command
loads (the ledger's driver and the figures, not SQLAlchemy once the ledger is
made, nor the printing, payment, page or PDF code), and that what it reads that
way is what the pledge service publishes, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from fundraiser.errors import LedgerError
from fundraiser.figures import HOLD_ENV
from fundraiser.ledger import Ledger, open_ledger, schema, stamp
from fundraiser.ledger.migrations import LATEST
from fundraiser.money import Money
from fundraiser.payments import orphans
from fundraiser.pledges import NewPledge, Source, Status, create, transition
from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.stripe_fixtures import NOW, TestClient, make_settings

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env

RUN = """
import contextlib, gc, io, json, sys
from fundraiser.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    main(["status", "--json"], standalone_mode=False)
print(json.dumps({"figures": json.loads(out.getvalue()), "modules": sorted(sys.modules),
                  "collector_on": gc.isenabled()}))
"""

ROOT = Path(__file__).resolve().parents[2]


def test_status_json_reads_the_ledger_and_loads_nothing_it_does_not_print(
    campaign_dir: Path, sqlite_url: str
) -> None:
    env = {
        **os.environ,
        "FUNDRAISER_CAMPAIGN": str(campaign_dir / "campaign.toml"),
        "DATABASE_URL": sqlite_url,
        "FUNDRAISER_NOW": "2026-12-10T12:00:00+00:00",
        "PYTHONPATH": str(ROOT),
    }
    done = subprocess.run(
        [sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["figures"]["pledged"] == 0 and seen["figures"]["currency"] == "GBP"
    assert seen["figures"]["attention"] == []
    modules = set(seen["modules"])
    assert {"sqlalchemy", "fundraiser.figures", "fundraiser.cli.status"} <= modules
    for heavy in (
        "rich",  # tables and bars for people; --json prints none
        "stripe",
        "aiohttp",
        "starlette",
        "jinja2",
        "weasyprint",
        "pelican",
        "fundraiser.cli.campaign",  # init's scaffolding
        "fundraiser.scaffold",
        "fundraiser.starter",
    ):
        assert heavy not in modules, f"status --json loaded {heavy}"
    # Paused only while the command's module was imported.
    assert seen["collector_on"] is True


def run_status(campaign_dir: Path, url: str) -> tuple[int, dict[str, Any], set[str], str]:
    """`fundraiser status --json` in a fresh interpreter: exit code, JSON, modules, stderr."""
    env = {
        **os.environ,
        "FUNDRAISER_CAMPAIGN": str(campaign_dir / "campaign.toml"),
        "DATABASE_URL": url,
        "FUNDRAISER_NOW": NOW.isoformat(),
        "PYTHONPATH": str(ROOT),
    }
    env.pop(HOLD_ENV, None)
    done = subprocess.run(
        [sys.executable, "-c", RUN_CLI], env=env, capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        return done.returncode, {}, set(), done.stderr
    seen = json.loads(done.stdout)
    return 0, seen["figures"], set(seen["modules"]), done.stderr


# As a script runs it, with click's own exit codes and messages.
RUN_CLI = """
import contextlib, io, json, sys
from fundraiser.cli import main
out = io.StringIO()
with contextlib.redirect_stdout(out):
    try:
        main(["status", "--json"], prog_name="fundraiser")
    except SystemExit as exc:
        if exc.code:
            raise
print(json.dumps({"figures": json.loads(out.getvalue()), "modules": sorted(sys.modules)}))
"""


def pledge(
    ledger: Ledger,
    email: str,
    pounds: int,
    moves: tuple[Status, ...] = (),
    *,
    source: Source = Source.ONLINE,
    tier: str | None = None,
    round_id: str = "crowd",
    ago: timedelta = timedelta(days=1),
) -> int:
    with ledger.write(stamp(NOW - ago)) as tx:
        pid = create(
            tx,
            NewPledge(
                name=f"Person {email}",
                email=email,
                address="1 Secret Lane",
                amount=Money(pounds * 100, "GBP"),
                round=round_id,
                source=source,
                tier=tier,
            ),
        )
        for move in moves:
            transition(tx, pid, move)
    return pid


def test_status_reads_without_sqlalchemy_what_the_service_publishes(
    campaign_dir: Path, db_url: str, stripe_env: dict[str, str]
) -> None:
    """Pledges in every status, a tier's places taken and held, an orphaned payment:
    `status --json` reads them through the driver alone, on SQLite and PostgreSQL,
    and says what GET /api/campaign says."""
    S = Status
    ledger = open_ledger(db_url)
    by_hand = Source.OFFLINE
    pledge(ledger, "a@example.org", 100, source=by_hand)  # promised by hand: counts
    pledge(ledger, "b@example.org", 200, (S.PAID,), source=by_hand)
    held = timedelta(minutes=5)  # its card form is open: holds a place, not a backer
    pledge(ledger, "c@example.org", 1000, tier="founder", ago=held)
    pledge(ledger, "d@example.org", 1000, tier="founder", ago=timedelta(hours=2))  # hold over
    pledge(ledger, "e@example.org", 1000, (S.AUTHORIZED,), tier="founder")
    pledge(ledger, "f@example.org", 300, (S.AUTHORIZED, S.PROCESSING))
    pledge(ledger, "g@example.org", 400, (S.AUTHORIZED, S.PAYMENT_FAILED))
    pledge(ledger, "h@example.org", 500, (S.AUTHORIZED, S.PAYMENT_FAILED, S.FAILED))
    cancelled = pledge(ledger, "i@example.org", 600, (S.CANCELLED,), source=by_hand)
    pledge(ledger, "j@example.org", 700, (S.AUTHORIZED, S.RELEASED))
    pledge(ledger, "k@example.org", 800, (S.PAID, S.REFUNDED), source=by_hand)
    pledge(ledger, "l@example.org", 900, (S.PAID, S.DISPUTED), round_id="seed")
    pledge(ledger, "A@Example.org ", 50, source=by_hand, round_id="seed")  # a again
    with ledger.write(stamp(NOW)) as tx:
        row = SimpleNamespace(id=cancelled, status="cancelled")
        orphans.record(tx, row, "pi_orphan", "ch_orphan", Money(60000, "GBP"))
    assert {s for s in S} == {
        S.PENDING, S.AUTHORIZED, S.PROCESSING, S.PAID, S.PAYMENT_FAILED, S.FAILED,
        S.CANCELLED, S.RELEASED, S.REFUNDED, S.DISPUTED,
    }  # fmt: skip
    ledger.dispose()

    code, figures, modules, stderr = run_status(campaign_dir, db_url)
    assert code == 0, stderr
    assert "sqlalchemy" not in modules
    assert figures["pledged"] == (100 + 200 + 1000 + 300 + 400 + 900 + 50) * 100
    assert figures["paid"] == (200 + 900) * 100
    assert figures["backers"] == 6  # a (twice), b, e, f, g, l
    assert figures["by_round"] == {"seed": 95000, "crowd": 200000}
    founder = next(t for t in figures["tiers"] if t["id"] == "founder")
    assert founder["taken"] == 2  # e's card saved, c's hold
    assert founder["left"] == founder["limit"] - 2
    assert len(figures["attention"]) == 1
    assert (
        f"for pledge {cancelled}, which is cancelled (charge ch_orphan" in figures["attention"][0]
    )

    settings = make_settings(campaign_dir, db_url, stripe_env)
    settings = replace(settings, figures_seconds=0)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        served = client.get("/api/campaign")
    assert served.status_code == 200
    assert {**served.json(), "attention": figures["attention"]} == figures


def test_status_of_a_ledger_not_made_yet_makes_it_then_reads_it_alone(
    campaign_dir: Path, sqlite_url: str
) -> None:
    first = run_status(campaign_dir, sqlite_url)
    assert first[0] == 0, first[3]
    assert "sqlalchemy" in first[2]  # the Ledger made it
    second = run_status(campaign_dir, sqlite_url)
    assert second[0] == 0 and "sqlalchemy" not in second[2]
    assert first[1] == second[1] and second[1]["pledged"] == 0


def test_status_takes_an_older_ledger_forward_as_the_ledger_does(
    campaign_dir: Path, db_url: str
) -> None:
    ledger = open_ledger(db_url)
    pledge(ledger, "a@example.org", 100, (Status.PAID,), source=Source.OFFLINE)
    with ledger.engine.begin() as conn:  # as schema version 8 left it (later steps redo theirs)
        conn.execute(sa.text("DROP INDEX ix_pledges_tier_places"))
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("DROP SEQUENCE pledge_ids"))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version >= 9))
    ledger.dispose()
    code, figures, modules, stderr = run_status(campaign_dir, db_url)
    assert code == 0, stderr
    assert figures["paid"] == 10000 and "sqlalchemy" in modules  # migrated by the Ledger
    again = open_ledger(db_url)
    assert again.version() == LATEST
    again.dispose()


@pytest.mark.tampers
def test_status_refuses_a_ledger_newer_than_the_code_in_the_ledgers_words(
    campaign_dir: Path, db_url: str
) -> None:
    ledger = open_ledger(db_url)
    with ledger.engine.begin() as conn:
        conn.execute(schema.schema_version.insert().values(version=LATEST + 1, applied_at="later"))
    ledger.dispose()
    with pytest.raises(LedgerError) as refused:
        open_ledger(db_url)
    code, _, _, stderr = run_status(campaign_dir, db_url)
    assert code == 1
    assert f"Error: {refused.value}" in stderr
    assert f"newer than this fundraiser understands ({LATEST}): upgrade fundraiser" in stderr
    assert "Traceback" not in stderr
