"""Benchmark from paid pledges to welcomed members: issue, certificates, welcome mail.

Makes N paid pledges (one per person), issues shares, makes every certificate
as PDF, and sends every welcome mail (with its certificate attached) to an SMTP
server on loopback (aiosmtpd, in its own process so it does not share our GIL).
Targets on a 2-core machine: certificates >= 20/s, mail >= 100/s, peak memory
< 500 MB (this process and, separately, each certificate worker).

    python scripts/bench_members.py [--members N] [--workers N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import resource
import shutil
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fundraiser import issuing, pledges  # noqa: E402
from fundraiser.config import load_campaign  # noqa: E402
from fundraiser.documents.mail import Sender  # noqa: E402
from fundraiser.documents.postman import Postman  # noqa: E402
from fundraiser.documents.printing import Documents  # noqa: E402
from fundraiser.documents.smtp import SmtpSettings  # noqa: E402
from fundraiser.ledger import open_ledger  # noqa: E402
from fundraiser.money import Money  # noqa: E402


def peak_mb(who: int = resource.RUSAGE_SELF) -> float:
    return resource.getrusage(who).ru_maxrss / 1024


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def serve_smtp(port: int, count: Synchronized, stop: Any) -> None:  # type: ignore[type-arg]
    """A loopback SMTP server that counts what it accepts (runs in a child process)."""
    from aiosmtpd.controller import Controller

    class Counter:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            with count.get_lock():
                count.value += 1
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    stop.wait()
    controller.stop()


def make_campaign(folder: Path) -> Path:
    text = (ROOT / "campaign.toml").read_text()
    # Keep-it-all: shares are issued at once (all-or-nothing waits for the close).
    text = text.replace('mode = "all-or-nothing"', 'mode = "keep-it-all"')
    # Room for everyone: no offer maximum, so nothing is scaled back.
    text = text.replace('offer_maximum = "400000.00"\n', "")
    path = folder / "campaign.toml"
    path.write_text(text)
    return path


def step(name: str, results: dict[str, float], func: Any) -> Any:
    start = time.perf_counter()
    value = func()
    elapsed = time.perf_counter() - start
    results[name] = elapsed
    print(f"{name:<14} {elapsed:7.2f} s   peak RSS so far {peak_mb():6.0f} MB", flush=True)
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None, help="certificate processes")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--keep", type=Path, help="keep the campaign folder here")
    args = parser.parse_args()
    n = args.members

    tmp = Path(tempfile.mkdtemp(prefix="bench-members-"))
    ctx = multiprocessing.get_context("spawn")
    count = ctx.Value("i", 0)
    stop = ctx.Event()
    port = free_port()
    server = ctx.Process(target=serve_smtp, args=(port, count, stop), daemon=True)
    server.start()
    try:
        campaign = load_campaign(make_campaign(tmp))
        ledger = open_ledger(campaign.default_database_url())
        rng = random.Random(args.seed)
        results: dict[str, float] = {}
        print(f"{n:,} members, SQLite at {ledger.url}, SMTP on 127.0.0.1:{port}", flush=True)

        def make_pledges() -> None:
            items = [
                pledges.NewPledge(
                    name=f"Backer {i}",
                    email=f"backer.{i}@example.org",
                    address=f"{i} Commons Road, Leeds LS{i % 30} {i % 9}AB",
                    amount=Money(5000 * rng.choice([1, 1, 2, 4, 20]), "GBP"),
                    round="crowd",
                    status=pledges.Status.PAID,
                )
                for i in range(n)
            ]
            with ledger.write() as tx:
                pledges.create_many(tx, items)

        step("pledges", results, make_pledges)
        issued = step(
            "issue",
            results,
            lambda: issuing.issue(ledger, campaign, today="2027-03-01"),
        )
        docs = Documents(campaign)
        with ledger.read() as conn:
            made = step("certificates", results, lambda: docs.make(conn, workers=args.workers))
        with ledger.read() as conn:
            again = step("certs rerun", results, lambda: docs.make(conn, workers=args.workers))
        postman = Postman(
            ledger,
            campaign,
            Sender("members@hearth.example", campaign.coop.name),
            clock=lambda: datetime.now(UTC),
            documents=docs,
        )
        report = step(
            "welcome mail",
            results,
            lambda: postman.send(SmtpSettings.from_url(f"smtp://127.0.0.1:{port}")),
        )
        ledger.dispose()
        time.sleep(0.2)
        cert_rate = len(made.written) / results["certificates"]
        mail_rate = report.sent / results["welcome mail"]
        print(
            f"issued {issued.members_admitted:,} members; {len(made.written):,} certificates "
            f"written, {again.unchanged:,} unchanged on rerun; {report.sent:,} mails sent, "
            f"{count.value:,} received by the server"
        )
        peak = peak_mb()
        children = peak_mb(resource.RUSAGE_CHILDREN)
        ok = cert_rate >= 20 and mail_rate >= 100 and peak < 500 and children < 500
        print(
            f"certificates {cert_rate:6.1f}/s (target >= 20): "
            f"{'PASS' if cert_rate >= 20 else 'FAIL'}\n"
            f"mail         {mail_rate:6.1f}/s (target >= 100): "
            f"{'PASS' if mail_rate >= 100 else 'FAIL'}\n"
            f"memory       {peak:6.0f} MB this process, {children:.0f} MB largest child "
            f"(target < 500 MB): {'PASS' if peak < 500 and children < 500 else 'FAIL'}"
        )
        if args.keep:
            shutil.copytree(tmp, args.keep, dirs_exist_ok=True)
        return 0 if ok and count.value == report.sent == n else 1
    finally:
        stop.set()
        server.join(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
