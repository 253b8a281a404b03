"""Refresh the README's screenshots in docs/, on purpose (the tests never write there).

Runs the demo (`fundraiser demo`: the Stripe emulator, the pledge service and the
built site, all on 127.0.0.1) in a temporary folder with a few example pledges,
and photographs it in headless Chromium (Debian's /usr/bin/chromium, driven by
Playwright), as a backer would see it:

  docs/home.png         the home page at desktop size (1280 x 800)
  docs/pledge.png       the pledge page on a phone (390 x 844), filled in
  docs/private.png      a backer's private page on a phone, after pledging
  docs/certificate.png  share certificate No. 1, after the campaign closes and the
                        shares are issued (the PDF's page drawn at 110 dpi)

Each picture is made by one function in SHOTS, which takes the running demo and the
folder to write into: another page (the backer's private page, say) is one more
function there (`private` is). `--only NAME` makes just the ones named; `--out DIR` writes
somewhere other than docs/.

Needs the test extras (`pip install -e ".[test]"`: localstripe, playwright,
pdfplumber) and Chromium. Run from anywhere: python scripts/screenshots.py
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a file, from any folder
    sys.path.insert(0, str(ROOT))

from fundraiser.demo import Demo  # noqa: E402
from fundraiser.emulator import SECRET_KEY, free_port  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
# Without these Chromium keeps trying to reach the internet.
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}

#: Example backers, paid by bank transfer, so the figures are not all zero
#: (the demo's goal is 1,000.00): name, address, amount, public name.
BACKERS = [
    ("Grace Hopper", "1 Test Street\nLondon\nN1 1AA", "200.00", "Grace H."),
    ("Alan Turing", "2 Test Road, Manchester, M1 1AA", "150.00", None),
    ("Ada Lovelace", "12 St James's Square\nLondon\nSW1Y 4LB", "250.00", "Ada"),
    ("Mary Somerville", "3 Test Place\nEdinburgh\nEH1 1AA", "50.00", None),
]


@dataclass
class Running:
    """The demo while the shots are taken."""

    demo: Demo
    site: str  # the site's address, ending in /
    browser: Any  # a Playwright browser

    def fundraiser(self, *args: str, now: datetime | None = None, stripe: bool = False) -> str:
        """Run the `fundraiser` command on the demo's campaign, as an organizer would."""
        env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FUNDRAISER_NOW")}
        if stripe and self.demo.emulator is not None:  # the demo's own emulator keys
            env |= {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_API_BASE": self.demo.emulator.url}
            env["FUNDRAISER_SECRET"] = self.demo.link_secret
        if now is not None:
            env["FUNDRAISER_NOW"] = now.isoformat()
        done = subprocess.run(
            [sys.executable, "-m", "fundraiser", "--campaign", str(self.demo.campaign_path), *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        if done.returncode != 0:
            raise SystemExit(f"fundraiser {' '.join(args)} failed:\n{done.stdout}{done.stderr}")
        return done.stdout


def home(run: Running, out: Path) -> list[Path]:
    """The home page as a visitor first sees it on a desktop: the hero, above the fold."""
    page = run.browser.new_page(viewport=DESKTOP)
    page.goto(run.site)
    page.wait_for_load_state("networkidle")
    target = out / "home.png"
    page.screenshot(path=str(target))
    page.close()
    return [target]


def fill_pledge(page: Any, run: Running, name: str, email: str, address: str) -> None:
    """The pledge form filled in as a backer would, up to the button (a test card)."""
    page.goto(run.site + "pledge.html")
    page.wait_for_selector("#card-element input[placeholder=number]")
    page.check("#tier-neighbour")
    page.fill("#name", name)
    page.fill("#email", email)
    page.fill("#address", address)
    card = page.locator("#card-element")
    postcode = address.rsplit("\n", 1)[-1][:5].strip()
    for placeholder, value in (
        ("number", "4242424242424242"),
        ("exp_month", "12"),
        ("exp_year", "30"),
        ("cvc", "123"),
        ("postal_code", postcode),
    ):
        card.locator(f"input[placeholder={placeholder}]").fill(value)
    page.check("#consent")


def pledge(run: Running, out: Path) -> list[Path]:
    """The pledge page on a phone, filled in up to the button, the whole length of it."""
    page = run.browser.new_page(viewport=PHONE)
    fill_pledge(
        page, run, "Katherine Johnson", "katherine@example.org", "4 Test Lane\nBristol\nBS1 1AA"
    )
    page.locator("body").click(position={"x": 1, "y": 1})  # no focus ring in the picture
    target = out / "pledge.png"
    page.screenshot(path=str(target), full_page=True)
    page.close()
    return [target]


def private(run: Running, out: Path) -> list[Path]:
    """A backer's private page on a phone, opened from the thank-you view's link."""
    page = run.browser.new_page(viewport=DESKTOP)
    fill_pledge(page, run, "Dorothy Vaughan", "dorothy@example.org", "5 Test Row\nLeeds\nLS1 1AA")
    page.click("#pledge-form button[type=submit]")
    page.wait_for_selector("#pledge-thanks:not([hidden])", timeout=20000)
    link = page.get_attribute("#pledge-manage-link", "href")
    page.set_viewport_size(PHONE)
    page.goto(str(link))
    page.wait_for_load_state("networkidle")
    target = out / "private.png"
    page.screenshot(path=str(target), full_page=True)
    page.close()
    return [target]


def certificate(run: Running, out: Path) -> list[Path]:
    """Certificate No. 1, made as organizers make them after a successful campaign."""
    import pdfplumber

    from fundraiser.config import load_campaign

    deadline = load_campaign(run.demo.campaign_path).campaign.deadline
    after = deadline + timedelta(hours=1)
    # An all-or-nothing campaign issues shares only once its close is recorded with the
    # goal met: one more backer takes the example's £650 past the demo's £1,000.
    run.fundraiser(
        "pledges", "add", "--name", "Katherine Johnson", "--email", "backer9@example.org",
        "--address", "9 Test Lane\nBristol\nBS1 1AA", "--amount", "400.00", "--round", "crowd",
        "--status", "paid", "--reference", "DEMO-9",
    )  # fmt: skip
    run.fundraiser("collect", now=after, stripe=True)
    run.fundraiser("shares", "issue", now=after)
    run.fundraiser("certificates", "make", now=after)
    pdf = run.demo.directory / "var" / "certificates" / "certificate-000001.pdf"
    target = out / "certificate.png"
    with pdfplumber.open(pdf) as document:
        document.pages[0].to_image(resolution=110).save(target)
    return [target]


#: What each name makes, in this order.
SHOTS: dict[str, Callable[[Running, Path], list[Path]]] = {
    "home": home,
    "pledge": pledge,
    "private": private,  # before the certificate: that one closes the campaign
    "certificate": certificate,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Refresh the README's screenshots (docs/*.png) from a running demo.",
    )
    parser.add_argument(
        "--only",
        action="append",
        choices=list(SHOTS),
        help="make only this picture (repeat for more) [default: all of them]",
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "docs", help="folder to write into [default: docs/]"
    )
    args = parser.parse_args(argv)
    if not CHROMIUM.exists():
        parser.error(f"{CHROMIUM} is missing: install Debian's chromium package")
    wanted = args.only or list(SHOTS)
    args.out.mkdir(parents=True, exist_ok=True)

    from playwright.sync_api import sync_playwright

    now = datetime.now(UTC)
    with tempfile.TemporaryDirectory(prefix="fundraiser-screenshots-") as folder:
        demo = Demo(Path(folder), free_port(), say=lambda text: None)
        try:
            demo.prepare(now)
            for n, (name, address, amount, public) in enumerate(BACKERS, start=1):
                shown = ["--display-name", public] if public else []
                Running(demo, "", None).fundraiser(
                    "pledges", "add", "--name", name, "--email", f"backer{n}@example.org",
                    "--address", address, "--amount", amount, "--round", "crowd",
                    "--status", "paid", "--reference", f"DEMO-{n}", *shown,
                )  # fmt: skip
            demo.start(now)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=str(CHROMIUM), args=LAUNCH_ARGS
                )
                try:
                    run = Running(demo, f"http://127.0.0.1:{demo.port}/", browser)
                    for name in SHOTS:
                        if name in wanted:
                            for path in SHOTS[name](run, args.out):
                                print(f"wrote {path}")
                finally:
                    browser.close()
        finally:
            demo.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
