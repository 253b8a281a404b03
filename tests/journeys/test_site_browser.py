"""The built site in a real browser (Debian's Chromium): figures refresh from campaign.json."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from fundraiser.money import Money
from tests.browser import axe_violations, launch, needs_chromium
from tests.sitehelpers import Backer, add_pledges, build, copy_campaign, run_cli, sqlite_url

pytestmark = needs_chromium

VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
#: Every kind of static page: home, pledge, a Markdown page with its own template, the
#: transparency page, the list of updates and one update.
PAGES = [
    "index.html",
    "pledge.html",
    "share-offer.html",
    "transparency.html",
    "updates/index.html",
    "updates/the-offer-is-open.html",
    "faq.html",
]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def built_and_served(folder: Path) -> Iterator[tuple[Path, str, str, Path]]:
    """A built site served over HTTP on loopback: (campaign, db url, base address, output)."""
    output = folder / "out"
    output.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(output))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        campaign = copy_campaign(folder)
        url = sqlite_url(folder)
        add_pledges(
            url,
            [Backer("A", "a@example.org", "1 Road", 4, "2026-10-01T10:00:00+00:00")],
            Money(5000, "GBP"),
        )
        # Stripe.js is the page's one outside script: a local stand-in, as in the emulator.
        result = build(campaign, url, output, env={"STRIPE_JS_URL": base + "stand-in-stripe.js"})
        assert result.exit_code == 0, result.output
        (output / "stand-in-stripe.js").write_text("window.Stripe = function () {};\n")
        yield campaign, url, base, output
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, str, Path]]:
    with built_and_served(tmp_path) as site:
        yield site


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a built site that these tests only read."""
    with built_and_served(tmp_path_factory.mktemp("site")) as (_, _, address, _):
        yield address


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch(playwright)
        try:
            yield chromium
        finally:
            chromium.close()


@contextmanager
def opened(browser: Any, size: str) -> Iterator[tuple[Any, list[str]]]:
    """A page at a desktop's or a phone's size, and the script errors it meets."""
    width, height = VIEWPORTS[size]
    context = browser.new_context(viewport={"width": width, "height": height})
    try:
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        yield page, problems
    finally:
        context.close()


def test_pages_refresh_their_figures_from_campaign_json(
    served: tuple[Path, str, str, Path],
) -> None:
    from playwright import sync_api

    campaign, url, base, output = served
    add_pledges(
        url,
        [
            Backer(
                "B", "b@example.org", "2 Road", 200, "2026-11-27T11:00:00+00:00", tier="cornerstone"
            )
        ],
        Money(5000, "GBP"),
    )
    refreshed = run_cli(campaign, url, "site", "figures", "--output", str(output))
    assert refreshed.exit_code == 0, refreshed.output

    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        try:
            page = browser.new_page()
            problems: list[str] = []
            page.on("pageerror", lambda exc: problems.append(str(exc)))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(base + "index.html")
            pledged = page.locator('[data-figure="pledged"]')
            sync_api.expect(pledged).to_have_text("£10,200")  # £200 built, then £10,000 more
            assert page.inner_text('[data-figure="backers"]') == "2"
            assert page.inner_text('[data-tier-left="cornerstone"]') == "49 of 50 left"

            page.goto(base + "transparency.html")
            sync_api.expect(page.locator('[data-round="seed"]')).to_have_text("£10,200.00")

            page.goto(base + "pledge.html")
            sync_api.expect(page.locator('span[data-tier-left="cornerstone"]')).to_have_text(
                "(49 of 50 left)"
            )
            # The keyboard reaches the skip link first, and it leads to the content.
            page.keyboard.press("Tab")
            assert page.evaluate("document.activeElement.className") == "skip-link"
            assert problems == [], problems
        finally:
            browser.close()


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_the_home_page_shows_the_figures_and_the_pledge_button_without_scrolling(
    base: str, browser: Any, size: str
) -> None:
    width, height = VIEWPORTS[size]
    with opened(browser, size) as (page, problems):
        page.goto(base + "index.html")
        card = page.locator(".hero .campaign-card")
        for what in (
            '[data-figure="pledged"]',
            '[data-figure="goal"]',
            "progress",
            '[data-figure="percent"]',
            '[data-figure="backers"]',
            '[data-figure="days_left"]',
            "a.button",
        ):
            box = card.locator(what).bounding_box()
            assert box is not None, what
            assert box["y"] >= 0 and box["y"] + box["height"] <= height, (what, box)
            assert box["x"] >= 0 and box["x"] + box["width"] <= width, (what, box)
        assert card.locator("a.button").inner_text() == "Pledge for shares"
        assert card.locator('[data-figure="pledged"]').inner_text() == "£200"
        assert "you could lose what you put in" in card.inner_text()
        assert problems == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_no_page_scrolls_sideways_and_the_nav_is_one_row(
    base: str, browser: Any, size: str
) -> None:
    width, _ = VIEWPORTS[size]
    with opened(browser, size) as (page, problems):
        for name in PAGES:
            page.goto(base + name)
            assert page.evaluate("document.documentElement.scrollWidth") <= width, name
            nav = page.locator(".site-nav")
            shown = [
                box
                for box in (
                    el.bounding_box() for el in nav.locator("a, summary").all() if el.is_visible()
                )
                if box is not None
            ]
            # Desktop: six links and the pledge button; phone: "Menu" and the pledge button.
            assert len(shown) == (7 if size == "desktop" else 2), name
            middles = [box["y"] + box["height"] / 2 for box in shown]
            assert max(middles) - min(middles) < 4, (name, middles)
            assert all(box["x"] + box["width"] <= width for box in shown), name
        assert problems == []


def test_the_phone_menu_opens_without_a_script_and_leads_to_the_pages(
    base: str, browser: Any
) -> None:
    with opened(browser, "phone") as (page, _):
        page.goto(base + "index.html")
        menu = page.locator(".nav-menu")
        assert not menu.get_by_role("link", name="Share offer").is_visible()
        menu.locator("summary").click()
        menu.get_by_role("link", name="Share offer").click()
        page.wait_for_url("**/share-offer.html")
        assert page.locator("h1").inner_text() == "Share offer"
        # The keyboard opens it too: Tab past the skip link and the home link to "Menu".
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        page.keyboard.press("Tab")
        assert page.evaluate("document.activeElement.textContent") == "Menu"
        page.keyboard.press("Enter")
        assert page.locator(".nav-menu").get_by_role("link", name="Transparency").is_visible()


def test_the_pledge_form_adds_up_the_shares_and_says_when_the_card_is_charged(
    base: str, browser: Any
) -> None:
    from playwright.sync_api import expect

    with opened(browser, "phone") as (page, problems):
        page.goto(base + "pledge.html")
        total = page.locator("#pledge-total")
        summary = page.locator(".pledge-summary")
        button = page.locator("#pledge-form button[type=submit]")
        expect(total).to_have_text("Choose a tier or a number of shares to see your total.")
        page.check("#tier-neighbour")
        expect(total).to_have_text("Good neighbour: 4 shares \u00d7 £50.00 = £200.00")
        expect(summary.locator("[data-pledge-total]")).to_have_text(
            "Good neighbour: 4 shares \u00d7 £50.00 = £200.00"
        )
        expect(button).to_have_text("Save my card and pledge £200.00")
        page.fill("#shares", "13")  # typing a number chooses "another number"
        assert page.is_checked("#tier-custom")
        expect(total).to_have_text("13 shares \u00d7 £50.00 = £650.00")
        expect(button).to_have_text("Save my card and pledge £650.00")
        page.fill("#shares", "201")
        expect(total).to_have_text("Enter a whole number of shares from 1 to 200.")
        expect(button).to_have_text("Save my card and pledge")
        when = " ".join(summary.inner_text().split())
        assert "saved now and charged on 28 February 2027" in when
        assert "only if the goal of £250,000 is met" in when
        main = page.inner_text("main")
        assert "writing to us" not in main and "write to us to cancel" not in main
        assert "private link to see or cancel your pledge" in main
        assert problems == []


@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_axe_finds_nothing_serious_on_the_static_pages(base: str, browser: Any, size: str) -> None:
    found = {}
    with opened(browser, size) as (page, _):
        for name in PAGES:
            page.goto(base + name)
            page.wait_for_load_state("networkidle")
            found[name] = axe_violations(page)
        if size == "phone":
            page.goto(base + "index.html")
            page.locator(".nav-menu summary").click()
            found["index.html, menu open"] = axe_violations(page)
    assert {name: v for name, v in found.items() if v} == {}
