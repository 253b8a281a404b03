"""Benchmark the core on a synthetic campaign: CSV import, allocate, issue, export.

Makes 100,000 pledges from 80,000 people (some pledge twice), all paid, in an
oversubscribed offer so scale-back runs, on a SQLite ledger in a temp folder.
Targets on a 2-core machine: each step under 5 s, peak memory under 400 MB.

    python scripts/bench_ledger.py [--pledges N] [--people N] [--policy pro-rata]
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fundraiser import importer, register  # noqa: E402
from fundraiser.config import load_campaign  # noqa: E402
from fundraiser.ledger import open_ledger  # noqa: E402


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_campaign(folder: Path, policy: str, offer_max: str) -> Path:
    text = (ROOT / "campaign.toml").read_text()
    text = text.replace('scale_back = "small-first"', f'scale_back = "{policy}"')
    text = text.replace('offer_maximum = "400000.00"', f'offer_maximum = "{offer_max}"')
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


def make_csv(folder: Path, pledges: int, people: int, seed: int) -> Path:
    rng = random.Random(seed)
    path = folder / "pledges.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "email", "amount", "round", "status", "reference", "address"])
        for n in range(pledges):
            person = n if n < people else rng.randrange(people)
            pounds = rng.choice([50, 50, 100, 200, 250, 500, 1000, 75, 120, 2500, 12000])
            pence = rng.choice([0, 0, 0, 50, 99])
            writer.writerow([
                f"Backer {person}", f"Backer.{person}@Example.org", f"{pounds}.{pence:02d}",
                "crowd" if n % 10 else "seed", "paid", f"TX-{n:07d}",
                f"{person} Commons Road, Leeds LS{person % 30} {person % 9}AB",
            ])
    return path


def step(name: str, results: list[tuple[str, float]], func):  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    value = func()
    elapsed = time.perf_counter() - start
    results.append((name, elapsed))
    print(f"{name:<16} {elapsed:7.2f} s   peak RSS so far {peak_mb():6.0f} MB", flush=True)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pledges", type=int, default=100_000)
    parser.add_argument("--people", type=int, default=80_000)
    parser.add_argument("--policy", default="pro-rata",
                        choices=["pro-rata", "first-come", "small-first"])
    parser.add_argument("--offer-max", default="20000000.00",
                        help="offer maximum in GBP (below the total, so scale-back runs)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        campaign = load_campaign(make_campaign(folder, args.policy, args.offer_max))
        source = make_csv(folder, args.pledges, args.people, args.seed)
        ledger = open_ledger(campaign.default_database_url())
        print(f"{args.pledges:,} pledges from {args.people:,} people, scale-back {args.policy}, "
              f"SQLite at {ledger.url}")
        results: list[tuple[str, float]] = []
        plan_import = step("CSV import", results,
                           lambda: importer.import_file(ledger, campaign, source))
        with ledger.read() as conn:
            plan = step("allocate", results, lambda: register.make_plan(conn, campaign))
        issued = step("issue", results, lambda: register.issue(
            ledger, campaign, today="2027-03-01"))
        with ledger.read() as conn:
            count = step("register export", results, lambda: register.export(
                conn, campaign.currency, folder / "register.csv"))
        print(f"imported {len(plan_import.new):,}; plan {plan.total_shares:,} shares for "
              f"{len(plan.admitted):,} members, {len(plan.remainders):,} remainders; issued "
              f"{issued.members_admitted:,} members; exported {count:,}")
        verify = step("ledger verify", results, ledger.verify)
        print(f"journal entries {verify.entries:,}, chain ok: {verify.ok}")
        ledger.dispose()
    worst = max(t for _, t in results[:4])
    peak = peak_mb()
    print(f"slowest step {worst:.2f} s (target < 5 s): {'PASS' if worst < 5 else 'FAIL'}; "
          f"peak memory {peak:.0f} MB (target < 400 MB): {'PASS' if peak < 400 else 'FAIL'}")
    return 0 if worst < 5 and peak < 400 else 1


if __name__ == "__main__":
    raise SystemExit(main())
