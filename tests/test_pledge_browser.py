"""The pledge page in headless Chromium: the built site, the service, the emulator's Stripe.js."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import uvicorn

from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.browser import fill_test_card, launch, needs_chromium
from tests.conftest import Cli
from tests.stripe_fixtures import (
    NOW,
    ROOT,
    LocalStripe,
    free_port,
    make_settings,
)
from tests.test_collect import after, listed

# pytest finds fixtures by name in the module: bind the shared ones here.
localstripe = stripe_fixtures.localstripe
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def site_and_service(
    small_goal: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
    tmp_path: Path,
) -> Iterator[str]:
    """The built site on one loopback port, the pledge service on another."""
    from fundraiser.sitegen.build import build_site

    site_port, api_port = free_port(), free_port()
    site_origin, api = f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{api_port}"
    output = tmp_path / "output"
    build_site(
        ROOT / "site" / "pelicanconf.py",
        campaign_path=campaign_dir / "campaign.toml",
        database_url=sqlite_url,
        now=NOW,
        output=output,
        extra={
            "STRIPE_JS_URL": f"{localstripe.url}/js.stripe.com/v3/",
            "PLEDGE_API": api,
            "STRIPE_PUBLISHABLE_KEY": stripe_env["STRIPE_PUBLISHABLE_KEY"],
        },
    )
    env = {**stripe_env, "SITE_ORIGIN": site_origin, "PLEDGE_API": api}
    settings = replace(make_settings(campaign_dir, sqlite_url, env), pledge_burst=50)
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=api_port, log_level="error")
    )
    service_thread = threading.Thread(target=server.run, daemon=True)
    service_thread.start()
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", site_port), functools.partial(Quiet, directory=str(output))
    )
    site_thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    site_thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield site_origin
    httpd.shutdown()
    server.should_exit = True
    service_thread.join(timeout=10)


@needs_chromium
def test_pledge_in_the_browser_then_collect(
    site_and_service: str, sqlite_cli: Cli, stripe_env: dict[str, str]
) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = launch(pw)
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            page.goto(f"{site_and_service}/pledge.html")
            page.check("#tier-neighbour")
            page.fill("#name", "Grace Hopper")
            page.fill("#email", "grace@example.org")
            page.fill("#address", "2 Harbour Row, Leith")
            fill_test_card(page, "4242424242424242", "EH6 6")
            page.check("#consent")
            page.click("#pledge-form button[type=submit]")
            page.wait_for_selector("#pledge-thanks:not([hidden])", timeout=15000)
            link = page.get_attribute("#pledge-manage-link", "href")
            assert link and "/manage/" in link
            assert errors == []
        finally:
            browser.close()
    [pledge] = listed(sqlite_cli).values()
    assert pledge["status"] == "authorized" and pledge["amount"] == 20000
    sqlite_cli.ok("collect", env=after(stripe_env))
    result = sqlite_cli.ok("pledges", "list", "--json", env=after(stripe_env))
    [row] = json.loads(result.output)
    assert row["status"] == "paid" and row["paid"] == 20000
