"""`fundraiser status`: what a script's `status --json` costs to start.

The figures themselves are tested in tests/cli/test_basics.py and test_output.py;
here, in a fresh interpreter as a script or a monitor runs it, what the command
loads: the ledger and the figures, not the printing, payment, page or PDF code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

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
