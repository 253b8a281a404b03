"""Benchmark launch day: the pledge front door under a burst, live figures during it,
and how fast the `fundraiser` command starts.

1. Front door: P pledges (default 2,000) sent by C concurrent backers (default
   500) to `POST /api/pledges`, each making a Stripe customer and a card form
   through a small proxy that adds L ms (default 300) in front of localstripe
   (the indexed emulator of bench_service.py). On SQLite, and on PostgreSQL
   (a throwaway server with its default durability) with one and two service
   processes. A limited tier takes 90 % of the pledges, so the last ones are
   refused; a few requests are sent twice at once with one Idempotency-Key.
   Printed: pledges/s (targets >= 75/s, two PostgreSQL processes no slower
   than one), p50/p99 latency (target p99 <= 8 s), the service's own CPU per
   pledge (target <= 10 ms) beside the emulator's, the proxy's and the
   client's, and the bound the machine's two cores set; then the ledger is
   checked: the tier never oversold, one pledge per key, every accepted
   pledge holding its card form, the journal's chain intact.
2. Live figures: `GET /api/campaign` asked every 50 ms during the burst, by a
   visitor in its own process (target p99 <= 100 ms) and, as before, from the
   backers' own event loop (whose lag then counts too). Where the time goes: the
   first service's event loop lag (how late a 5 ms sleep wakes), the collector's
   pauses, and the request's time inside the service, all during the burst.
3. Start-up: `fundraiser --version` (target <= 0.2 s) and `fundraiser status
   --json` (target <= 0.4 s), each run 7 times, median.

Every part runs --repeat times (default 3), each run after the calibration
loops of bench_ledger.py; each figure is judged on the median of the runs.

    python scripts/bench_launch.py [--pledges P] [--concurrency C] [--latency MS]
        [--repeat 3] [--only {front,startup}] [--db {sqlite,postgres,both}]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

import aiohttp  # noqa: E402
from bench_ledger import calibrate, warm_bytecode  # noqa: E402
from bench_service import (  # noqa: E402
    ENV,
    LOCALSTRIPE,
    LOCALSTRIPE_INDEX,
    LOCALSTRIPE_RUN,
    cpu_seconds,
    free_port,
    own_cpu,
    wait_port,
)

PG_BIN = Path("/usr/lib/postgresql/15/bin")
NOW = "2026-12-10T12:00:00+00:00"
TIER = "founder"

# `fundraiser serve`'s app and server settings, with the rate limit per address
# opened up (a launch's burst is the point here, not a flood from one address).
SERVE = """
import asyncio, dataclasses, gc, json, os, sys, time
from datetime import datetime
import uvicorn
from fundraiser.config import load_campaign
from fundraiser.service import server
from fundraiser.service.app import create_app
from fundraiser.service.settings import Settings
campaign = load_campaign(sys.argv[1])
now = datetime.fromisoformat(sys.argv[4])
port = int(sys.argv[3])
settings = Settings.from_env(
    os.environ, campaign=campaign, database_url=sys.argv[2], now=lambda: now,
    default_base=server.default_address("127.0.0.1", port),
)
settings = dataclasses.replace(settings, pledges_per_minute=1e9, pledge_burst=10**9)
inner = create_app(settings)
# Where a figures request's time goes: the event loop's lag (a 5 ms sleep's
# overshoot), the collector's pauses, and the time each GET /api/campaign spends
# inside the service (from the app's first call to its last send), each with
# its wall-clock moment; written to argv[5] when the server stops (uvicorn then
# ends the process by the signal it was sent, so nothing after run() runs).
lags, pauses, inside = [], [], []
async def watch():
    while True:
        started = time.perf_counter()
        await asyncio.sleep(0.005)
        lags.append((time.time(), time.perf_counter() - started - 0.005))
collecting = [0.0]
def collector(phase, info):
    if phase == "start":
        collecting[0] = time.perf_counter()
    else:
        pauses.append((time.time(), time.perf_counter() - collecting[0]))
gc.callbacks.append(collector)
async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        watching = asyncio.get_running_loop().create_task(watch())
        await inner(scope, receive, send)  # returns when the server stops
        watching.cancel()
        with open(sys.argv[5], "w") as out:
            json.dump({"lags": lags, "pauses": pauses, "inside": inside}, out)
        return
    if scope.get("path") != "/api/campaign":
        return await inner(scope, receive, send)
    started = time.perf_counter()
    await inner(scope, receive, send)
    inside.append((time.time(), time.perf_counter() - started))
uvicorn.run(app, host="127.0.0.1", port=port, workers=1, http=server.HTTP,
            log_level="error", access_log=False, lifespan="on")
"""

# Stripe's latency, added in front of the emulator: each request waits, then
# goes through unchanged (method, path, query, headers, body).
PROXY = """
import asyncio, sys
import aiohttp
from aiohttp import web
target, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) / 1000
SKIP = {"host", "content-length", "transfer-encoding", "connection"}
async def forward(request):
    body = await request.read()
    await asyncio.sleep(delay)
    session = request.app["session"]
    headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIP}
    async with session.request(request.method, target + request.rel_url.path_qs,
                               data=body, headers=headers) as answer:
        payload = await answer.read()
        kind = answer.headers.get("content-type", "application/json")
        return web.Response(body=payload, status=answer.status,
                            headers={"content-type": kind})
async def start(app):
    app["session"] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
async def stop(app):
    await app["session"].close()
app = web.Application(client_max_size=2**24)
app.on_startup.append(start)
app.on_cleanup.append(stop)
app.router.add_route("*", "/{tail:.*}", forward)
web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)
"""


# A visitor reading the figures: its own process (not one of the backers' event
# loop, whose own lag would count in the figure), one kept-alive connection,
# every 50 ms until it is sent SIGTERM; writes (moment, seconds, status) to argv[2].
VISITOR = """
import http.client, json, signal, sys, time
from urllib.parse import urlsplit
base = urlsplit(sys.argv[1])
seen, stop = [], []
signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
conn = http.client.HTTPConnection(base.hostname, base.port, timeout=30)
while not stop:
    started = time.perf_counter()
    try:
        conn.request("GET", "/api/campaign")
        answer = conn.getresponse()
        answer.read()
        status = answer.status
    except OSError:
        conn.close()
        status = 0
    seen.append((time.time(), time.perf_counter() - started, status))
    time.sleep(0.05)
with open(sys.argv[2], "w") as out:
    json.dump(seen, out)
"""


def children_cpu() -> float:
    """User + system CPU of the finished children so far."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(len(ordered) * share) - 1))]


class Postgres:
    """A throwaway PostgreSQL 15 on loopback, durable as a real one is (fsync on)."""

    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="bench-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        data = str(self.dir / "data")
        self._run(str(PG_BIN / "initdb"), "-D", data, "-A", "trust", "-U", "postgres")
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", data, "-l", str(self.dir / "log"), "-w", "-o",
            options + " -c max_connections=200", "start",
        )  # fmt: skip

    def new_database(self, name: str) -> str:
        import psycopg

        dsn = f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        try:
            self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "fast", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


@contextmanager
def process(
    args: list[str], port: int, env: dict[str, str] | None = None, profile: str | None = None
) -> Iterator[int]:
    """A Python child on `port`; `profile` names a py-spy flame graph to record
    (a developer's aid: BENCH_PYSPY=folder; the CPU figures are then py-spy's too)."""
    prefix = ["py-spy", "record", "--nonblocking", "-r", "50", "-f", "raw", "-o", profile, "--"]
    proc = subprocess.Popen(
        [*(prefix if profile else []), sys.executable, "-c", *args],
        env={**os.environ, **(env or {}), "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_port(port, proc)
        yield proc.pid
    finally:
        if profile:  # py-spy writes its file when interrupted, then stops the child
            proc.send_signal(signal.SIGINT)
        else:
            proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def profile_path(tag: str, port: int) -> str | None:
    folder = os.environ.get("BENCH_PYSPY")
    return f"{folder}/service-{tag}-{port}.txt" if folder else None


def campaign_for(folder: Path, limit: int) -> Path:
    text = (ROOT / "campaign.toml").read_text(encoding="utf-8")
    text = text.replace("limit = 1000", f"limit = {limit}")
    path = folder / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


@dataclass
class Burst:
    elapsed: float = 0.0
    latencies: list[float] = field(default_factory=list)
    codes: Counter[int] = field(default_factory=Counter)
    figures: list[float] = field(default_factory=list)
    figure_codes: Counter[int] = field(default_factory=Counter)
    keys: dict[str, set[int]] = field(default_factory=dict)
    window: tuple[float, float] = (0.0, 0.0)  # wall-clock start and end


async def burst(bases: list[str], total: int, concurrency: int, tag: str) -> Burst:
    """`total` pledges, `concurrency` at a time, spread over the services; the
    figures asked every 50 ms meanwhile. Every 50th pledge is sent twice at once."""
    out = Burst()
    queue: asyncio.Queue[int] = asyncio.Queue()
    for n in range(total):
        queue.put_nowait(n)
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=300)
    done = asyncio.Event()
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

        async def send(n: int) -> None:
            body = {
                "tier": TIER,
                "name": f"Backer {n}",
                "email": f"backer-{tag}-{n}@example.org",
                "address": f"{n} Launch Street, Leeds",
                "consent": True,
            }
            key = f"{tag}-{n}"
            # Each backer from an address of their own, as the service sees them
            # behind a proxy (uvicorn trusts X-Forwarded-For from loopback).
            address = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            headers = {
                "content-type": "application/json",
                "idempotency-key": key,
                "x-forwarded-for": address,
            }
            base = bases[n % len(bases)]
            started = time.perf_counter()
            try:
                async with client.post(f"{base}/api/pledges", json=body, headers=headers) as r:
                    answer = await r.json(content_type=None)
                    status = r.status
            except (TimeoutError, aiohttp.ClientError):
                out.codes[0] += 1
                return
            out.latencies.append(time.perf_counter() - started)
            out.codes[status] += 1
            if status in (200, 201):
                out.keys.setdefault(key, set()).add(int(answer["pledge_id"]))

        async def backer() -> None:
            while True:
                try:
                    n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                if n % 50 == 7:  # the same submit twice at once (a double click)
                    await asyncio.gather(send(n), send(n))
                else:
                    await send(n)

        async def watcher() -> None:
            while not done.is_set():
                started = time.perf_counter()
                try:
                    async with client.get(f"{bases[0]}/api/campaign") as r:
                        await r.read()
                        out.figure_codes[r.status] += 1
                except (TimeoutError, aiohttp.ClientError):
                    out.figure_codes[0] += 1
                out.figures.append(time.perf_counter() - started)
                await asyncio.sleep(0.05)

        watching = asyncio.create_task(watcher())
        started, wall = time.perf_counter(), time.time()
        await asyncio.gather(*(backer() for _ in range(concurrency)))
        out.elapsed = time.perf_counter() - started
        out.window = (wall, wall + out.elapsed)
        done.set()
        await watching
    return out


def check_ledger(url: str, limit: int, keys: dict[str, set[int]]) -> tuple[bool, str]:
    import sqlalchemy as sa

    from fundraiser.ledger import open_ledger, schema
    from fundraiser.pledges import LIVE

    ledger = open_ledger(url, create=False)
    try:
        with ledger.read() as conn:
            p = schema.pledges.c
            live = conn.execute(
                sa.select(sa.func.count()).where(
                    p.tier == TIER, p.status.in_([s.value for s in LIVE])
                )
            ).scalar()
            rows = conn.execute(sa.select(p.id, p.stripe_intent)).all()
        chain = ledger.verify()
    finally:
        ledger.dispose()
    accepted = {pid for ids in keys.values() for pid in ids}
    one_per_key = all(len(ids) == 1 for ids in keys.values())
    with_form = {pid for pid, intent in rows if intent}
    ok = (
        live == limit
        and len(rows) == limit
        and one_per_key
        and accepted == with_form == {pid for pid, _ in rows}
        and chain.ok
    )
    words = (
        f"tier {live}/{limit} live (never more), {len(rows)} pledges, "
        f"one per key: {one_per_key}, every accepted pledge has its card form: "
        f"{accepted == with_form}, chain intact: {chain.ok}"
    )
    return ok, words


@dataclass
class FrontRun:
    rate: float
    p50: float
    p99: float
    service_ms: float
    others_ms: float
    figures_p99: float  # asked from the backers' event loop
    visitor_p99: float  # asked by a visitor in its own process
    ok: bool


def front_once(
    args: argparse.Namespace, folder: Path, db: str, processes: int, run: int, pg: Postgres | None
) -> FrontRun:
    tag = f"{db}{processes}r{run}"
    limit = args.pledges * 9 // 10
    campaign = campaign_for(folder, limit)
    if pg is not None:
        url = pg.new_database(f"bench_{tag}")
    else:
        url = f"sqlite:///{folder / f'{tag}.sqlite'}"
    from fundraiser.ledger import open_ledger

    open_ledger(url).dispose()  # made and migrated before the services start
    emulator_port, proxy_port = free_port(), free_port()
    emulator = LOCALSTRIPE + LOCALSTRIPE_INDEX + LOCALSTRIPE_RUN
    ports = [free_port() for _ in range(processes)]
    with (
        process([emulator, str(emulator_port)], emulator_port) as emulator_pid,
        process(
            [PROXY, f"http://127.0.0.1:{emulator_port}", str(proxy_port), str(args.latency)],
            proxy_port,
        ) as proxy_pid,
        contextmanager_all(
            [
                process(
                    [SERVE, str(campaign), url, str(port), NOW, str(folder / f"loop-{port}.json")],
                    port,
                    {**ENV, "STRIPE_API_BASE": f"http://127.0.0.1:{proxy_port}"},
                    profile_path(tag, port),
                )
                for port in ports
            ]
        ) as service_pids,
    ):
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        # Warm up: a few pledges through every process (imports, pools, compiled SQL).
        warm = asyncio.run(burst(bases, 4 * processes, 4, f"warm{tag}"))
        before = [cpu_seconds(pid) for pid in (*service_pids, emulator_pid, proxy_pid)]
        seen_path = folder / f"visitor-{tag}.json"
        visitor = subprocess.Popen([sys.executable, "-c", VISITOR, bases[0], str(seen_path)])
        client_before = own_cpu()
        result = asyncio.run(burst(bases, args.pledges, args.concurrency, tag))
        client_cpu = own_cpu() - client_before
        visitor.terminate()
        visitor.wait(timeout=60)
        after = [cpu_seconds(pid) for pid in (*service_pids, emulator_pid, proxy_pid)]
    used = [b - a for a, b in zip(before, after, strict=True)]
    service_cpu = sum(used[:processes])
    emulator_cpu, proxy_cpu = used[processes], used[processes + 1]
    sent = sum(result.codes.values())
    accepted = result.codes[201]
    ok, words = check_ledger(url, limit, {**warm.keys, **result.keys})
    rate = accepted / result.elapsed
    p50 = statistics.median(result.latencies)
    p99 = percentile(result.latencies, 0.99)
    service_ms = service_cpu / sent * 1000
    others_ms = (emulator_cpu + proxy_cpu + client_cpu) / sent * 1000
    fig_p50 = statistics.median(result.figures) * 1000
    fig_p99 = percentile(result.figures, 0.99) * 1000
    start, end = result.window
    seen = [(s, code) for t, s, code in json.loads(seen_path.read_text()) if start <= t <= end]
    own = [s * 1000 for s, _ in seen]
    own_codes = Counter(code for _, code in seen)
    own_p50, own_p99 = statistics.median(own), percentile(own, 0.99)
    bound = 2000 / (service_ms + others_ms)
    print(
        f"    {accepted} accepted of {sent} sent in {result.elapsed:.1f} s: {rate:.1f} pledges/s; "
        f"p50 {p50:.2f} s, p99 {p99:.2f} s; answers {dict(sorted(result.codes.items()))}"
    )
    print(
        f"    CPU per request: service {service_ms:.1f} ms; emulator "
        f"{emulator_cpu / sent * 1000:.1f}, proxy {proxy_cpu / sent * 1000:.1f}, client "
        f"{client_cpu / sent * 1000:.1f} ms; two cores allow ~{bound:.0f}/s"
    )
    print(
        f"    GET /api/campaign during the burst: {len(result.figures)} asked, "
        f"p50 {fig_p50:.0f} ms, p99 {fig_p99:.0f} ms from the backers' own event loop; "
        f"{len(own)} asked by a visitor of its own, p50 {own_p50:.0f} ms, p99 {own_p99:.0f} ms; "
        f"answers {dict(result.figure_codes + own_codes)}"
    )
    print(f"    ledger: {words}: {'ok' if ok else 'WRONG'}")
    print(f"    {loop_report(folder / f'loop-{ports[0]}.json', result.window)}")
    return FrontRun(rate, p50, p99, service_ms, others_ms, fig_p99, own_p99, ok)


def loop_report(path: Path, window: tuple[float, float]) -> str:
    """The first service's event loop during the burst: how late a 5 ms sleep woke,
    the collector's pauses, and the figures' time inside the service."""
    import json

    try:
        seen = json.loads(path.read_text())
    except (OSError, ValueError):
        return "event loop: no record (the service did not stop cleanly)"

    def during(name: str) -> list[float]:
        return [v * 1000 for t, v in seen[name] if window[0] <= t <= window[1]]

    lags, pauses, inside = during("lags"), during("pauses"), during("inside")
    if not lags:
        return "event loop: no record during the burst"
    late = sum(1 for v in lags if v > 50)
    text = (
        f"event loop during the burst: a 5 ms sleep woke late by p50 "
        f"{statistics.median(lags):.1f} ms, p99 {percentile(lags, 0.99):.0f} ms, max "
        f"{max(lags):.0f} ms ({late} of {len(lags)} over 50 ms); collector: {len(pauses)} "
        f"runs, {sum(pauses):.0f} ms in all, longest {max(pauses, default=0):.0f} ms"
    )
    if inside:
        text += (
            f"; /api/campaign inside the service p50 {statistics.median(inside):.1f} ms, "
            f"p99 {percentile(inside, 0.99):.1f} ms"
        )
    return text


@contextmanager
def contextmanager_all(managers: list[Any]) -> Iterator[list[int]]:
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield [stack.enter_context(m) for m in managers]


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def front(args: argparse.Namespace) -> bool:
    setups = []
    if args.db in ("sqlite", "both"):
        setups.append(("sqlite", 1))
    if args.db in ("postgres", "both"):
        setups += [("postgres", 1), ("postgres", 2)]
    pg = None
    if any(db == "postgres" for db, _ in setups):
        pg = Postgres()
        pg.start()
    all_ok = True
    medians: dict[tuple[str, int], FrontRun] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-launch-") as tmp:
            runs: dict[tuple[str, int], list[FrontRun]] = {s: [] for s in setups}
            for run in range(1, args.repeat + 1):
                arithmetic, objects = calibrate()
                print(
                    f"run {run}: calibration: arithmetic {arithmetic:.2f} s, "
                    f"objects {objects:.2f} s",
                    flush=True,
                )
                for db, processes in setups:
                    print(f"  {db}, {processes} service process(es):", flush=True)
                    server = pg if db == "postgres" else None
                    runs[(db, processes)].append(
                        front_once(args, Path(tmp), db, processes, run, server)
                    )
    finally:
        if pg is not None:
            pg.stop()
    print(
        f"front door: {args.pledges} pledges, {args.concurrency} concurrent backers, "
        f"{args.latency} ms before every Stripe call; median of {args.repeat} runs"
    )
    bound = args.concurrency / (2 * args.latency / 1000)
    for setup, results in runs.items():
        rate = statistics.median(r.rate for r in results)
        p99 = statistics.median(r.p99 for r in results)
        cpu = statistics.median(r.service_ms for r in results)
        figs = statistics.median(r.figures_p99 for r in results)
        own = statistics.median(r.visitor_p99 for r in results)
        ok = all(r.ok for r in results)
        medians[setup] = FrontRun(rate, 0, p99, cpu, 0, figs, own, ok)
        db, processes = setup
        print(
            f"  {db} x{processes}: {rate:.1f} pledges/s (target >= 75; concurrency / latency "
            f"allows ~{bound:.0f}) {verdict(rate >= 75)}; p99 {p99:.2f} s (target <= 8) "
            f"{verdict(p99 <= 8)}; service CPU {cpu:.1f} ms/pledge (target <= 10) "
            f"{verdict(cpu <= 10)}; /api/campaign p99 (target <= 100 ms) {own:.0f} ms for a "
            f"visitor {verdict(own <= 100)}, {figs:.0f} ms from the backers' loop "
            f"{verdict(figs <= 100)}; ledger {verdict(ok)}"
        )
        all_ok &= ok
    if ("postgres", 1) in medians and ("postgres", 2) in medians:
        one, two = medians[("postgres", 1)].rate, medians[("postgres", 2)].rate
        print(
            f"  postgres: two processes {two:.1f}/s vs one {one:.1f}/s = {two / one:.2f} x "
            f"(target >= 1.0) {verdict(two >= one * 0.95)}"
        )
    return all_ok


def startup(args: argparse.Namespace) -> bool:
    command = shutil.which("fundraiser")
    if command is None:
        raise SystemExit("fundraiser is not installed in this environment")
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        campaign = Path(tmp) / "campaign.toml"
        shutil.copy(ROOT / "campaign.toml", campaign)
        env = {
            **{k: v for k, v in os.environ.items() if k != "DATABASE_URL"},
            "FUNDRAISER_CAMPAIGN": str(campaign),
            "FUNDRAISER_NOW": NOW,
            "PYTHONPATH": str(ROOT),
        }
        subprocess.run([command, "status", "--json"], env=env, check=True, capture_output=True)
        steps = {
            "fundraiser --version": ([command, "--version"], 0.2),
            "fundraiser status --json": ([command, "status", "--json"], 0.4),
            "python -c pass": ([sys.executable, "-c", "pass"], None),
            "import sqlalchemy": ([sys.executable, "-c", "import sqlalchemy"], None),
        }
        runs: dict[str, list[float]] = {name: [] for name in steps}
        for run in range(1, args.repeat + 1):
            arithmetic, objects = calibrate()
            print(f"run {run}: calibration: arithmetic {arithmetic:.2f} s, objects {objects:.2f} s")
            for name, (argv, _) in steps.items():
                times, cpu = [], []
                for _ in range(7):
                    started, used = time.perf_counter(), children_cpu()
                    subprocess.run(argv, env=env, check=True, capture_output=True)
                    times.append(time.perf_counter() - started)
                    cpu.append(children_cpu() - used)
                runs[name].append(statistics.median(times))
                # CPU time moves less than wall time when others share the cores.
                print(
                    f"  {name:<26} {statistics.median(times):.3f} s (median of 7; CPU "
                    f"{statistics.median(cpu):.3f} s)"
                )
    print(f"start-up: median of {args.repeat} runs")
    ok = True
    for name, (_, target) in steps.items():
        middle = statistics.median(runs[name])
        if target is None:
            # status reads through the driver: SQLAlchemy's import is what it no longer pays.
            what = "the interpreter alone" if name.startswith("python") else "status skips it"
            print(f"  {name:<26} {middle:.3f} s ({what}: a bound)")
        else:
            print(f"  {name:<26} {middle:.3f} s (target <= {target} s) {verdict(middle <= target)}")
            ok &= middle <= target
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pledges", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--latency", type=float, default=300.0, help="ms added per Stripe call")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=("front", "startup"))
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    warm_bytecode()
    ok = True
    if args.only in (None, "front"):
        ok &= front(args)
    if args.only in (None, "startup"):
        startup(args)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
