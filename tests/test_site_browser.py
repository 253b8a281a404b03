"""The built site in a real browser (Debian's Chromium): figures refresh from campaign.json."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from fundraiser.money import Money
from tests.browser import launch, needs_chromium
from tests.sitehelpers import Backer, add_pledges, build, copy_campaign, run_cli, sqlite_url

pytestmark = needs_chromium


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str, str, Path]]:
    """A built site served over HTTP on loopback: (campaign, db url, base address, output)."""
    output = tmp_path / "out"
    output.mkdir()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(output))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    try:
        campaign = copy_campaign(tmp_path)
        url = sqlite_url(tmp_path)
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
