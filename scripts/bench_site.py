"""Benchmark the site build: our theme and plugin against plain Pelican, same content.

Generates a site with many campaign updates (1,000 by default) in a temporary
folder, then builds it with our theme and plugin (reading a ledger of
generated pledges) and with plain Pelican's default theme and no plugin. Each
build runs in a fresh Python process; the time measured is the build itself
(after imports), best of --repeat runs. Then it records one more pledge and
times refreshing only campaign.json.

Targets: ours within 1.25 x plain Pelican; the figures refresh under 0.3 s.

    python scripts/bench_site.py [--updates 1000] [--pledges 5000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOW = "2026-11-27T12:00:00+00:00"
WORDS = [
    "members",
    "co-op",
    "network",
    "share",
    "vote",
    "board",
    "meeting",
    "privacy",
    "moderation",
    "budget",
    "roadmap",
    "commons",
    "server",
    "volunteer",
    "pledge",
    "goal",
    "deadline",
    "founders",
    "community",
    "rules",
    "open",
    "source",
    "feed",
    "group",
    "message",
    "photo",
    "friend",
    "neighbour",
    "library",
    "surplus",
    "fee",
    "report",
]


def _paragraph(rng: random.Random, words: int) -> str:
    text = " ".join(rng.choice(WORDS) for _ in range(words))
    return text[0].upper() + text[1:] + "."


def write_content(target: Path, updates: int) -> None:
    """Our pages, plus `updates` generated dated Markdown updates."""
    shutil.copytree(ROOT / "content" / "pages", target / "pages")
    folder = target / "updates"
    folder.mkdir(parents=True)
    rng = random.Random(7)
    start = datetime(2024, 1, 1, 9, tzinfo=UTC)
    for n in range(updates):
        day = start + timedelta(hours=13 * n)
        body = "\n\n".join(
            [
                _paragraph(rng, 60),
                "## What happened",
                _paragraph(rng, 80),
                "\n".join(f"- **{rng.choice(WORDS)}**: {_paragraph(rng, 12)}" for _ in range(4)),
                "## What comes next",
                _paragraph(rng, 70),
                f"Read the [manifesto]({{filename}}../pages/manifesto.md) or *reply* to "
                f"update {n}.",
            ]
        )
        (folder / f"{day:%Y-%m-%d}-update-{n:04d}.md").write_text(
            f"Title: Campaign update number {n}\nDate: {day:%Y-%m-%d %H:%M}+00:00\n"
            f"Slug: update-{n:04d}\nSummary: {_paragraph(rng, 20)}\n\n{body}\n",
            encoding="utf-8",
        )


def plain_copy(source: Path, target: Path) -> None:
    """The same content for plain Pelican, without our theme's template choices."""
    shutil.copytree(source, target)
    for page in (target / "pages").glob("*.md"):
        lines = page.read_text(encoding="utf-8").splitlines(keepends=True)
        keep = [ln for ln in lines if not ln.lower().startswith(("template:", "save_as:", "url:"))]
        page.write_text("".join(keep), encoding="utf-8")


def fill_ledger(campaign: Path, url: str, pledges: int) -> None:
    sys.path.insert(0, str(ROOT))
    from fundraiser.config import load_campaign
    from fundraiser.ledger import open_ledger
    from fundraiser.pledges import NewPledge, Status, create_many

    terms = load_campaign(campaign).shares
    rng = random.Random(11)
    ledger = open_ledger(url)
    opens = datetime(2026, 9, 1, 9, tzinfo=UTC)
    items = []
    for n in range(pledges):
        shares = rng.choice([1, 1, 1, 2, 4, 4, 10, 20, 50, 200])
        items.append(
            NewPledge(
                name=f"Backer {n}",
                email=f"backer{n}@example.org",
                address=f"{n} Example Street",
                amount=terms.price * shares,
                round="seed",
                status=rng.choice([Status.AUTHORIZED, Status.AUTHORIZED, Status.PENDING]),
                display_name=f"Supporter {n}" if n % 5 == 0 else None,
                shares=shares,
            )
        )
    # Spread the pledges over the seed round, a day's worth per transaction.
    per_day = max(1, pledges // 80)
    for day, first in enumerate(range(0, pledges, per_day)):
        at = opens + timedelta(days=day, minutes=rng.randint(0, 600))
        with ledger.write(now=at.isoformat()) as tx:
            create_many(tx, items[first : first + per_day])
    ledger.dispose()


def worker(kind: str, content: Path, output: Path, campaign: Path, db_url: str) -> None:
    """One build in this (fresh) process; prints its time as JSON."""
    sys.path.insert(0, str(ROOT))
    if kind == "ours":
        import pelican
        import pelican.settings  # noqa: F401

        from fundraiser.sitegen.build import build_site
        from fundraiser.sitegen.data import parse_now

        started = time.perf_counter()
        build_site(
            ROOT / "site" / "pelicanconf.py",
            campaign_path=campaign,
            database_url=db_url,
            now=parse_now(NOW),
            output=output,
            extra={"PATH": str(content)},
        )
        seconds = time.perf_counter() - started
    else:
        from pelican import Pelican
        from pelican.log import console
        from pelican.settings import read_settings

        console.quiet = True
        started = time.perf_counter()
        settings = read_settings(
            None,
            override={
                "PATH": str(content),
                "OUTPUT_PATH": str(output),
                "TIMEZONE": "UTC",
                "SITEURL": "https://plain.example",
                "PLUGINS": [],
            },
        )
        Pelican(settings).run()
        seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds}))


def run_worker(kind: str, content: Path, output: Path, campaign: Path, db_url: str) -> float:
    shutil.rmtree(output, ignore_errors=True)
    done = subprocess.run(
        [
            sys.executable,
            __file__,
            "--worker",
            kind,
            "--content",
            str(content),
            "--output",
            str(output),
            "--campaign",
            str(campaign),
            "--db",
            db_url,
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={**os.environ, "FUNDRAISER_NOW": NOW},
    )
    if done.returncode != 0:
        sys.exit(f"the {kind} build failed:\n{done.stdout}\n{done.stderr}")
    return float(json.loads(done.stdout.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1000, help="updates to generate")
    parser.add_argument("--pledges", type=int, default=5000, help="pledges in the ledger")
    parser.add_argument("--repeat", type=int, default=3, help="builds of each kind; best counts")
    parser.add_argument("--keep", type=Path, help="build here and keep it (default: a temp dir)")
    parser.add_argument("--worker", choices=["ours", "plain"], help=argparse.SUPPRESS)
    parser.add_argument("--content", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--campaign", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--db", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args.worker, args.content, args.output, args.campaign, args.db)
        return

    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-site-"))
    base.mkdir(parents=True, exist_ok=True)
    try:
        content, plain_content = base / "content", base / "plain-content"
        shutil.rmtree(content, ignore_errors=True)
        shutil.rmtree(plain_content, ignore_errors=True)
        write_content(content, args.updates)
        plain_copy(content, plain_content)
        campaign = base / "campaign.toml"
        shutil.copy(ROOT / "campaign.toml", campaign)
        db_path = base / "var" / "ledger.sqlite"
        db_path.unlink(missing_ok=True)
        db_url = f"sqlite:///{db_path}"
        fill_ledger(campaign, db_url, args.pledges)
        print(f"{args.updates} updates, {args.pledges} pledges, best of {args.repeat} builds each")

        ours, plain = [], []
        for _ in range(args.repeat):  # alternate, so neither gets a warmer machine
            ours.append(run_worker("ours", content, base / "out-ours", campaign, db_url))
            plain.append(run_worker("plain", plain_content, base / "out-plain", campaign, db_url))
        pages = sum(1 for _ in (base / "out-ours").rglob("*.html"))
        plain_pages = sum(1 for _ in (base / "out-plain").rglob("*.html"))
        best_ours, best_plain = min(ours), min(plain)
        ratio = best_ours / best_plain
        print(
            f"ours  (theme + plugin): {best_ours:6.2f} s  ({pages} HTML files)   "
            f"runs: {', '.join(f'{s:.2f}' for s in ours)}"
        )
        print(
            f"plain (default theme):  {best_plain:6.2f} s  ({plain_pages} HTML files)   "
            f"runs: {', '.join(f'{s:.2f}' for s in plain)}"
        )
        print(
            f"ratio ours / plain:     {ratio:6.2f} x  (target <= 1.25 x: "
            f"{'met' if ratio <= 1.25 else 'NOT met'})"
        )

        sys.path.insert(0, str(ROOT))
        from fundraiser.ledger import open_ledger
        from fundraiser.money import Money
        from fundraiser.pledges import NewPledge, create
        from fundraiser.sitegen.data import parse_now, refresh_figures
        from fundraiser.sitegen.updates import new_update  # noqa: F401 - warm the import

        ledger = open_ledger(db_url)
        with ledger.write() as tx:
            create(
                tx,
                NewPledge(
                    "New Backer",
                    "new@example.org",
                    "1 New Street",
                    Money(20000, "GBP"),
                    "seed",
                    shares=4,
                    tier="neighbour",
                ),
            )
        ledger.dispose()
        timings = []
        for _ in range(5):
            started = time.perf_counter()
            refresh_figures(base / "out-ours", campaign, db_url, parse_now(NOW))
            timings.append(time.perf_counter() - started)
        data = json.loads((base / "out-ours" / "campaign.json").read_text())
        print(
            f"refresh campaign.json:  {min(timings) * 1000:6.1f} ms best, "
            f"{timings[0] * 1000:.1f} ms first (target < 300 ms: "
            f"{'met' if timings[0] < 0.3 else 'NOT met'}); backers now {data['backers']}"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "from fundraiser.cli import main; main()",
                "--campaign",
                str(campaign),
                "--db",
                db_url,
                "site",
                "figures",
                "--output",
                str(base / "out-ours"),
            ],
            capture_output=True,
            text=True,
            check=False,
            cwd=ROOT,
        )
        cli = time.perf_counter() - started
        if done.returncode != 0:
            sys.exit(f"`fundraiser site figures` failed:\n{done.stdout}\n{done.stderr}")
        print(f"`fundraiser site figures` as a new process (with imports): {cli * 1000:.0f} ms")
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
