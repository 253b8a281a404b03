"""The ledger benchmark's verdicts (scripts/bench_ledger.py), on times given here.

The benchmark's times come from the machine; what it concludes from them is
code, and a wrong conclusion would pass or fail issue 18's targets unseen.
No step is timed here.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    scripts = str(ROOT / "scripts")
    sys.path.insert(0, scripts)  # the script imports ledger_bounds beside it
    try:
        spec = importlib.util.spec_from_file_location(
            "bench_ledger", ROOT / "scripts/bench_ledger.py"
        )
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(scripts)
    return module


STEPS = ("CSV import", "allocate")


def _run(seconds: dict[str, float], peak: float = 100.0) -> dict[str, tuple[float, float]]:
    return {step: (seconds[step], peak) for step in STEPS}


def _verdicts(output: str) -> dict[str, list[str]]:
    """Each printed step line's PASS/FAIL words, by its size, database and step."""
    found: dict[str, list[str]] = {}
    heading = ""
    for line in output.splitlines():
        if line.startswith(" ") and line.strip().endswith(":"):
            heading = line.strip().rstrip(":")
        for step in STEPS:
            if line.strip().startswith(step):
                words = [w.strip("[]:,") for w in line.split()]
                found[f"{heading} {step}"] = [w for w in words if w in ("PASS", "FAIL")]
    return found


def test_a_ratio_is_against_the_mean_of_the_first_size_timed_twice(bench: ModuleType) -> None:
    runs = {
        (100, "sqlite"): [_run({"CSV import": 2.0, "allocate": 1.0})],
        (300, "sqlite"): [_run({"CSV import": 9.0, "allocate": 3.3})],
    }
    again = {(100, "sqlite"): [_run({"CSV import": 4.0, "allocate": 1.0})]}

    assert bench.paired(runs, (300, "sqlite"), (100, "sqlite"), "CSV import", again) == [3.0]
    assert bench.paired(runs, (300, "sqlite"), (100, "sqlite"), "allocate", again) == [
        pytest.approx(3.3)
    ]
    # Without the second time, the first alone.
    assert bench.paired(runs, (300, "sqlite"), (100, "sqlite"), "CSV import") == [4.5]


def test_the_median_of_the_runs_own_ratios_is_judged(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Three runs; the import's own ratios 2.9, 3.0 and 4.0 (median 3.0: met), the
    # allocation's 2.9, 3.1 and 4.0 / 1.25 = 3.2 (median 3.1: not met).
    base = [_run({"CSV import": 1.0, "allocate": s}) for s in (1.0, 1.0, 1.0)]
    again = [_run({"CSV import": 1.0, "allocate": s}) for s in (1.0, 1.0, 1.5)]
    big = [
        _run({"CSV import": 2.9, "allocate": 2.9}),
        _run({"CSV import": 3.0, "allocate": 3.1}),
        _run({"CSV import": 4.0, "allocate": 4.0}),
    ]
    runs = {(100, "sqlite"): base, (300, "sqlite"): big}

    failed = bench.report(runs, [100, 300], ["sqlite"], None, {(100, "sqlite"): again})

    printed = capsys.readouterr().out
    verdicts = _verdicts(printed)
    assert verdicts["300 pledges, sqlite CSV import"] == ["PASS", "PASS"]  # ratio, memory
    assert verdicts["300 pledges, sqlite allocate"] == ["FAIL", "PASS"]
    assert verdicts["100 pledges, sqlite allocate"] == ["PASS", "PASS"]
    assert "3.10 x its 100 time (runs 2.90-3.20)" in printed
    assert "[twice: 1.00 x (runs 1.00-1.50)]" in printed
    assert failed == 1
    assert printed.rstrip().endswith("1 target(s) NOT met")


def test_postgresql_is_judged_against_sqlite_timed_around_it(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    # Each database twice, SQLite first and last: PostgreSQL's 3.0 and 3.0 against
    # SQLite's 1.0 and 3.0 is 1.5 x (met); against the first SQLite time alone it
    # would be 3 x.
    runs = {
        (100, "sqlite"): [_run({"CSV import": 1.0, "allocate": 1.0})],
        (100, "postgresql"): [_run({"CSV import": 3.0, "allocate": 1.6})],
    }
    again = {
        (100, "sqlite"): [_run({"CSV import": 3.0, "allocate": 1.0})],
        (100, "postgresql"): [_run({"CSV import": 3.0, "allocate": 1.6})],
    }

    failed = bench.report(runs, [100], ["sqlite", "postgresql"], None, again)

    verdicts = _verdicts(capsys.readouterr().out)
    assert verdicts["100 pledges, postgresql CSV import"] == ["PASS", "PASS", "PASS"]
    assert verdicts["100 pledges, postgresql allocate"] == ["PASS", "FAIL", "PASS"]
    assert failed == 1
