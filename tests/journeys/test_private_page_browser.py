"""A backer's private pages in headless Chromium, in the demo's own configuration.

`fundraiser demo` runs as a newcomer runs it (the emulator, the service, the built
site, each as the demo starts them); the backer pledges, keeps the link, looks at
their page on a laptop and a phone, cancels a second pledge without JavaScript,
and fixes a 3-D Secure card that failed at collection. axe-core checks each page.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests import stripe_fixtures
from tests.browser import axe_violations, browser_page, fill_test_card, launch, needs_chromium
from tests.conftest import Cli, free_port
from tests.journeys import test_pledge_browser
from tests.journeys.test_demo import start_demo
from tests.journeys.test_pledge_browser import Site, fix_link, pledge_in_browser, serving
from tests.payments.test_collect import after
from tests.stripe_fixtures import AFTER_DEADLINE, LocalStripe, make_settings

# Fixtures by name (see tests/stripe_fixtures.py): the pledge page's browser tests' site.
localstripe = stripe_fixtures.localstripe
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env
site_and_service = test_pledge_browser.site_and_service

THREE_D_SECURE = "4000002500003155"  # the emulator's fake Stripe.js asks to authenticate
DECLINE_CARD = "4000000000000341"  # saved, then declined at collection
#: The site's accent (site.css's --accent): the header has it only if site.css loaded.
ACCENT = "rgb(31, 92, 61)"
RAW_NAMES = re.compile(r"\b(authorized|payment_failed|pending|processing)\b")
PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}


def sideways_scroll(page: Any) -> int:
    """How far the page scrolls sideways (0: it fits the screen's width)."""
    return int(page.evaluate("document.documentElement.scrollWidth - window.innerWidth"))


def look(page: Any, folder: Path, name: str) -> None:
    """Screenshots at both widths (into the test's own folder), and the phone fits."""
    page.set_viewport_size(LAPTOP)
    page.screenshot(path=str(folder / f"{name}-1280.png"), full_page=True)
    page.set_viewport_size(PHONE)
    assert sideways_scroll(page) == 0, f"{name} scrolls sideways on a phone"
    page.screenshot(path=str(folder / f"{name}-390.png"), full_page=True)
    assert axe_violations(page) == [], name
    page.set_viewport_size(LAPTOP)
    assert axe_violations(page) == [], name


@dataclass
class Demo:
    folder: Path
    site: str
    env: dict[str, str]  # an organizer's environment, from the demo's banner

    @property
    def campaign(self) -> Path:
        return self.folder / "campaign.toml"

    def run(self, *args: str, now: str | None = None) -> str:
        env = {**self.env, **({"FUNDRAISER_NOW": now} if now else {})}
        result = subprocess.run(
            [sys.executable, "-m", "fundraiser", "--campaign", str(self.campaign), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def statuses(self) -> dict[str, str]:
        return {p["email"]: p["status"] for p in json.loads(self.run("pledges", "list", "--json"))}

    def after_deadline(self) -> str:
        text = (self.folder / "campaign.toml").read_text(encoding="utf-8")
        found = re.search(r"^deadline = (\S+)$", text, re.M)
        assert found is not None
        return (datetime.fromisoformat(found.group(1)) + timedelta(hours=1)).isoformat()


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    folder, port = tmp_path / "demo", free_port()
    process, banner = start_demo(folder, port)
    keys = re.search(r"export STRIPE_SECRET_KEY=(\S+) STRIPE_API_BASE=(\S+)", banner)
    links = re.search(r"export FUNDRAISER_SECRET=(\S+) PLEDGE_API=(\S+)", banner)
    assert keys and links, banner
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FUNDRAISER_NOW")}
    env.update(
        STRIPE_SECRET_KEY=keys.group(1),
        STRIPE_API_BASE=keys.group(2),
        FUNDRAISER_SECRET=links.group(1),
        PLEDGE_API=links.group(2),
    )
    try:
        yield Demo(folder, f"http://127.0.0.1:{port}", env)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise


def pledge(page: Any, demo: Demo, email: str, card: str) -> str:
    """A backer pledges on the demo's site (Good neighbour, £200); their private link."""
    page.goto(f"{demo.site}/pledge.html")
    page.check("#tier-neighbour")
    page.fill("#name", "Ada Lovelace")
    page.fill("#email", email)
    page.fill("#address", "12 St James's Square\nLondon SW1Y 4JH")
    fill_test_card(page, card, "SW1Y 4")
    page.check("#consent")
    page.click("#pledge-form button[type=submit]")
    if card == THREE_D_SECURE:
        page.get_by_role("button", name="Complete authentication").click()
    page.wait_for_selector("#pledge-thanks:not([hidden])", timeout=20000)
    link = page.get_attribute("#pledge-manage-link", "href")
    assert link
    return str(link)


@needs_chromium
def test_a_backer_keeps_the_link_sees_the_page_cancels_and_fixes_a_card_in_the_demo(
    demo: Demo, tmp_path: Path
) -> None:
    from playwright.sync_api import sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()
    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page(viewport=LAPTOP)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))

            # 1. The thank-you view gives the link to keep, whole.
            link = pledge(page, demo, "ada@example.org", THREE_D_SECURE)
            thanks = page.inner_text("#pledge-thanks")
            assert "Keep this link" in thanks and link in thanks
            assert "cancel it until the deadline" in thanks
            look(page, shots, "thank-you")

            # 2. The private page: the site's stylesheet, header and words.
            page.goto(link)
            header = page.locator("header.site-header")
            assert header.evaluate("e => getComputedStyle(e).backgroundColor") == ACCENT
            edge = page.locator(".pledge-state").evaluate(
                "e => getComputedStyle(e).borderLeftWidth"
            )
            assert edge == "6px"  # private.css, from the site, too
            assert page.inner_text("#pledge-status") == "Your card is saved"
            main = page.inner_text("main")
            assert re.search(
                r"Your card is saved\. It will be charged £200\.00 on \d{1,2} \w+ \d{4} "
                r"if the goal is met\.",
                main,
            ), main
            assert not RAW_NAMES.search(main)
            home = page.locator("header a.site-name")
            assert home.inner_text() == "Hearth Social Co-operative"
            assert home.get_attribute("href") == f"{demo.site}/index.html"
            look(page, shots, "manage")

            # 3. The cancel confirmation (looked at here; cancelled below without a script).
            second = pledge(page, demo, "bob@example.org", "4242424242424242")
            page.goto(second)
            page.get_by_role("link", name="Cancel this pledge").click()
            page.wait_for_url(re.compile(r".*/cancel$"))
            assert page.get_by_role("heading", level=1).inner_text() == "Cancel this pledge?"
            look(page, shots, "cancel")
            assert demo.statuses()["bob@example.org"] == "authorized"  # asking changed nothing

            # 4. The page shown after cancelling, reached without JavaScript.
            plain = browser.new_context(java_script_enabled=False, viewport=LAPTOP)
            nojs = plain.new_page()
            nojs.goto(second)
            nojs.get_by_role("link", name="Cancel this pledge").click()
            nojs.get_by_role("button", name="Yes, cancel my pledge").click()
            nojs.wait_for_url(re.compile(r".*/cancelled$"))
            assert "Nothing has been charged for it, and nothing will be." in nojs.inner_text(
                "main"
            )
            plain.close()
            assert demo.statuses()["bob@example.org"] == "cancelled"
            page.goto(second.rstrip("/") + "/cancelled")
            assert page.get_by_role("heading", level=1).inner_text() == "Your pledge is cancelled"
            look(page, shots, "cancelled")

            # 5. The goal is met, collection runs, and the 3-D Secure card fails off-session.
            demo.run(
                "pledges", "add", "--name", "Grace Hopper", "--email", "grace@example.org",
                "--address", "9 Navy Yard", "--amount", "1000.00", "--round", "crowd",
                "--status", "paid", "--reference", "BT-1",
            )  # fmt: skip
            demo.run("collect", now=demo.after_deadline())
            assert demo.statuses()["ada@example.org"] == "payment_failed"
            [fix_url] = fix_links(demo.folder)

            # 6. The fix-card page loads the demo's Stripe.js and takes a 3-D Secure card.
            page.goto(fix_url)
            card = page.locator("#fix-form #card-element input[placeholder=number]")
            card.wait_for()
            button = page.locator("#fix-form button[type=submit]")
            assert button.is_enabled()
            assert page.inner_text("#pledge-status") == (
                "Action needed: your payment did not go through"
            )
            look(page, shots, "fix-card")
            fill_test_card(page, THREE_D_SECURE, "SW1Y 4")
            button.click()
            page.get_by_role("button", name="Complete authentication").click()
            page.wait_for_selector("#pledge-status-line:not(:empty)", timeout=15000)
            line = page.inner_text("#pledge-status-line")
            assert line == "Thank you: your card is saved and will be charged shortly."
            assert button.is_disabled()
            page.reload()
            assert page.inner_text("#pledge-status") == "Your card is saved"
            assert "will be charged £200.00 shortly" in page.inner_text("main")
            assert errors == []
        finally:
            browser.close()
    assert demo.statuses()["ada@example.org"] == "authorized"
    assert sorted(p.name for p in shots.iterdir()) == sorted(
        f"{name}-{width}.png"
        for name in ("thank-you", "manage", "cancel", "cancelled", "fix-card")
        for width in (1280, 390)
    )


def fix_links(folder: Path) -> list[str]:
    """The fix-your-card links in the demo's outbox (the payment_failed mails)."""
    import sqlite3

    db = sqlite3.connect(folder / "var" / "ledger.sqlite")
    try:
        rows = db.execute("SELECT data FROM outbox WHERE kind = 'payment_failed'").fetchall()
    finally:
        db.close()
    return [json.loads(data)["fix_url"] for (data,) in rows]


@needs_chromium
def test_when_the_card_form_cannot_load_its_button_stays_disabled_and_the_page_says_what_to_do(
    site_and_service: Site,
    campaign_dir: Path,
    sqlite_url: str,
    sqlite_cli: Cli,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
) -> None:
    port = free_port()
    api = f"http://127.0.0.1:{port}"
    # A Stripe.js address that answers 404: the card form never arrives.
    broken = {**site_and_service.env, "PLEDGE_API": api}
    broken["STRIPE_JS_URL"] = f"{site_and_service.origin}/no-such-stripe.js"
    late = make_settings(
        campaign_dir, sqlite_url, broken, now=datetime.fromisoformat(AFTER_DEADLINE)
    )
    with browser_page() as (page, errors):
        pledge_in_browser(page, site_and_service, DECLINE_CARD)
        page.wait_for_selector("#pledge-thanks:not([hidden])", timeout=15000)
        sqlite_cli.ok("collect", env=after(stripe_env, PLEDGE_API=api))
        listed = json.loads(sqlite_cli.ok("pledges", "list", "--json").output)
        [pledge_id] = [p["id"] for p in listed]
        with serving(late, port):
            page.goto(fix_link(sqlite_url, pledge_id))
            line = page.locator("#pledge-status-line")
            line.filter(has_text="could not load").wait_for(timeout=15000)
            assert line.inner_text() == (
                "The card form could not load. Reload this page to try again. If it still does "
                "not work, write to us at members@hearth.example and we will help you complete "
                "your payment."
            )
            assert page.is_disabled("#fix-form button[type=submit]")
            assert axe_violations(page) == []
        assert errors == []
