"""Benchmark membership fees: a month of fee webhooks for 50,000 members, and the board's report.

1. Fee events: 50,000 members on a SQLite ledger, each with a monthly fee
   subscription; one invoice event each for the month (95% invoice.paid, 5%
   invoice.payment_failed), correctly signed and POSTed C at a time (default
   32) to the pledge service's real webhook endpoint, one uvicorn worker on
   loopback, so each event goes through the same function the webhook calls in
   production (payments.events -> membership.fees.apply). Then 1,000 of them
   again (duplicates: no-ops). Target: at least 500 events/s, p99 under 100 ms.
2. The board's report (`fundraiser members fees`): timed in-process (the
   function, median of 3) and as the command in its own process. Target: 2 s.
   The ledger is then checked: each invoice stored once, each event journalled once.

Run: python scripts/bench_membership.py [--members N] [--concurrency C] [--keep DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import sqlalchemy as sa  # noqa: E402
from bench_service import ENV, SERVE, blast, free_port, wait_port  # noqa: E402

from fundraiser import issuing  # noqa: E402
from fundraiser.config import load_campaign  # noqa: E402
from fundraiser.ledger import open_ledger, schema  # noqa: E402
from fundraiser.membership import fees  # noqa: E402
from fundraiser.people import person_key  # noqa: E402

MONTH = ("2027-03-01", "2027-04-01")
TODAY = date(2027, 3, 20)


def campaign_copy(folder: Path) -> Path:
    """The example campaign without its offer maximum (50,000 members need 50,000 shares),
    keep-it-all: its founding members are issued without a close to record first."""
    text = (ROOT / "campaign.toml").read_text(encoding="utf-8")
    text = text.replace('offer_maximum = "400000.00"\n', "")
    text = text.replace('mode = "all-or-nothing"', 'mode = "keep-it-all"')
    path = folder / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


def seed(url: str, campaign_path: Path, count: int) -> None:
    """`count` members (one share each, issued as the founding issue does) with a fee each."""
    campaign = load_campaign(campaign_path)
    ledger = open_ledger(url)
    price = campaign.shares.price.amount
    rows = [
        (
            person_key(f"m{n}@example.org"),
            f"Member {n}",
            f"m{n}@example.org",
            "1 Bench Street",
            price,
            price,
            "2026-12-01T10:00:00.000000Z",
            f"BENCH-{n}",
        )
        for n in range(1, count + 1)
    ]
    columns = (
        "person_key",
        "name",
        "email",
        "address",
        "amount",
        "paid_amount",
        "paid_at",
        "reference",
    )
    with ledger.write("2026-12-01T10:00:00.000000Z", bulk_work=True) as tx:
        fixed = {
            "created_at": tx.now,
            "updated_at": tx.now,
            "round": "crowd",
            "currency": "GBP",
            "status": "paid",
            "source": "offline",
        }
        tx.insert(schema.pledges, columns, rows, fixed)
        tx.record("pledges.import", "pledges", {"count": count})
    issuing.issue(ledger, campaign, today="2027-03-01", now="2027-03-01T09:00:00.000000Z")
    with ledger.write("2027-03-01T09:30:00.000000Z", bulk_work=True) as tx:
        subs = [(n, f"sub_bench{n}", f"cus_bench{n}") for n in range(1, count + 1)]
        tx.insert(
            schema.fee_subscriptions,
            ("member_number", "stripe_subscription", "stripe_customer"),
            subs,
            {
                "rate": "standard",
                "amount": 300,
                "currency": "GBP",
                "interval": "month",
                "started_on": MONTH[0],
                "created_at": tx.now,
                "updated_at": tx.now,
            },
        )
        tx.record("fees.start", "fees", {"count": count})
    ledger.dispose()


def stamp(day: str) -> int:
    return int(datetime.fromisoformat(f"{day}T00:00:00+00:00").timestamp())


def events(count: int) -> list[dict[str, Any]]:
    """One invoice event per member, in Stripe's shape: every 20th fails."""
    created = int(datetime(2027, 3, 1, 6, tzinfo=UTC).timestamp())
    found = []
    for n in range(1, count + 1):
        failed = n % 20 == 0
        kind = "invoice.payment_failed" if failed else "invoice.paid"
        found.append(
            {
                "id": f"evt_fee_{n}",
                "object": "event",
                "type": kind,
                "created": created,
                "livemode": False,
                "data": {
                    "object": {
                        "id": f"in_bench{n}",
                        "object": "invoice",
                        "customer": f"cus_bench{n}",
                        "currency": "gbp",
                        "amount_due": 300,
                        "amount_paid": 0 if failed else 300,
                        "status": "open" if failed else "paid",
                        "parent": {
                            "type": "subscription_details",
                            "subscription_details": {"subscription": f"sub_bench{n}"},
                        },
                        "lines": {
                            "object": "list",
                            "data": [
                                {
                                    "object": "line_item",
                                    "amount": 300,
                                    "period": {"start": stamp(MONTH[0]), "end": stamp(MONTH[1])},
                                }
                            ],
                        },
                    }
                },
            }
        )
    return found


def bench_events(url: str, campaign: Path, count: int, concurrency: int) -> bool:
    bodies = [json.dumps(e).encode() for e in events(count)]
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(campaign), url, str(port)],
        env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)},
    )
    try:
        wait_port(port, proc)
        endpoint = f"http://127.0.0.1:{port}/api/stripe/webhook"
        latencies, codes, elapsed = asyncio.run(blast(endpoint, bodies, concurrency))
        _, dup_codes, _ = asyncio.run(blast(endpoint, bodies[:1000], concurrency))
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    latencies.sort()
    rate = len(bodies) / elapsed
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    ledger = open_ledger(url)
    with ledger.read() as conn:

        def count_of(query: Any) -> int:
            return int(conn.execute(query).scalar() or 0)

        invoices = count_of(sa.select(sa.func.count()).select_from(schema.fee_invoices))
        paid = count_of(sa.select(sa.func.count()).where(schema.fee_invoices.c.status == "paid"))
        journalled = count_of(
            sa.select(sa.func.count()).where(
                schema.journal.c.action.in_(["fees.paid", "fees.failed"])
            )
        )
        unapplied = count_of(
            sa.select(sa.func.count()).where(schema.stripe_events.c.applied_at.is_(None))
        )
    ledger.dispose()
    print(f"fee events: {len(bodies)} deliveries to the webhook, {concurrency} at a time")
    print(
        f"  {rate:.0f} events/s (target >= 500); p50 {p50:.1f} ms, p99 {p99:.1f} ms (target <= 100)"
    )
    print(f"  answers: {dict(codes)}; 1,000 redelivered: {dict(dup_codes)}")
    print(
        f"  ledger: {invoices} invoices ({paid} paid), {journalled} journalled once, "
        f"{unapplied} unapplied"
    )
    ok = (
        codes.get(200) == len(bodies)
        and invoices == count
        and journalled == count
        and unapplied == 0
        and paid == count - count // 20
    )
    met = rate >= 500 and p99 <= 100
    print(f"  each applied once: {'yes' if ok else 'NO'}; target met: {'yes' if met else 'NO'}")
    return ok and met


def bench_report(url: str, campaign: Path, count: int) -> bool:
    ledger = open_ledger(url)
    times = []
    report = None
    for _ in range(3):
        started = time.perf_counter()
        with ledger.read() as conn:
            report = fees.report(conn, today=TODAY, grace_days=30, currency="GBP")
        times.append(time.perf_counter() - started)
    ledger.dispose()
    assert report is not None
    inside = statistics.median(times)
    started = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable, "-m", "fundraiser", "--campaign", str(campaign), "--db", url,
            "members", "fees", "--json",
        ],
        capture_output=True,
        env={**os.environ, "FUNDRAISER_NOW": f"{TODAY.isoformat()}T12:00:00+00:00"},
        check=True,
    )  # fmt: skip
    command = time.perf_counter() - started
    counts = json.loads(done.stdout)["counts"]
    print(f"fees report for {count} members: function {inside:.2f} s (median of 3), "
          f"command {command:.2f} s (target < 2 s)")  # fmt: skip
    print(f"  {counts}; {report.per_month.format()} a month")
    ok = counts["current"] == count - count // 20 and counts["late"] == count // 20
    met = inside < 2 and command < 2
    print(f"  counts right: {'yes' if ok else 'NO'}; target met: {'yes' if met else 'NO'}")
    return ok and met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50_000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--keep", type=Path, help="Make the ledger in this folder and keep it.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        folder = args.keep or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        campaign = campaign_copy(folder)
        url = f"sqlite:///{folder / 'ledger.sqlite'}"
        started = time.perf_counter()
        seed(url, campaign, args.members)
        took = time.perf_counter() - started
        print(f"seeded {args.members} members with a fee each in {took:.1f} s")
        ok = bench_events(url, campaign, args.members, args.concurrency)
        ok &= bench_report(url, campaign, args.members)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
