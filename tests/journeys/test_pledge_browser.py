"""The pledge page in headless Chromium: the built site, the service, the emulator's Stripe.js."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import uvicorn

from fundraiser.ledger import open_ledger, schema
from fundraiser.service.app import create_app
from fundraiser.service.settings import Settings
from tests import stripe_fixtures
from tests.browser import axe_violations, browser_page, fill_test_card, needs_chromium
from tests.conftest import Cli
from tests.payments.test_collect import after, listed
from tests.stripe_fixtures import (
    AFTER_DEADLINE,
    NOW,
    ROOT,
    LocalStripe,
    free_port,
    make_settings,
)

# pytest finds fixtures by name in the module: bind the shared ones here.
localstripe = stripe_fixtures.localstripe
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

DECLINE_CARD = "4000000000000341"  # the emulator saves it, then declines every charge


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serving(settings: Settings, port: int) -> Iterator[str]:
    """The pledge service on a loopback port, stopped on the way out."""
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="error")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, "the pledge service did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@dataclass
class Site:
    origin: str  # the built site
    api: str  # the pledge service, on the campaign's clock (NOW: pledges open)
    env: dict[str, str]  # what the service was started with


@pytest.fixture
def site_and_service(
    small_goal: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
    tmp_path: Path,
) -> Iterator[Site]:
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
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", site_port), functools.partial(Quiet, directory=str(output))
    )
    site_thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    site_thread.start()
    try:
        with serving(settings, api_port):
            yield Site(site_origin, api, env)
    finally:
        httpd.shutdown()
        httpd.server_close()
        site_thread.join(timeout=10)


def pledge_in_browser(page: Any, site: Site, card: str) -> None:
    """A backer fills the pledge form (the Neighbour tier, GBP 200) and submits it."""
    page.goto(f"{site.origin}/pledge.html")
    page.check("#tier-neighbour")
    page.fill("#name", "Grace Hopper")
    page.fill("#email", "grace@example.org")
    page.fill("#address", "2 Harbour Row, Leith")
    fill_test_card(page, card, "EH6 6")
    page.check("#consent")
    page.click("#pledge-form button[type=submit]")


@needs_chromium
def test_pledge_in_the_browser_then_collect(
    site_and_service: Site, sqlite_cli: Cli, stripe_env: dict[str, str]
) -> None:
    with browser_page() as (page, errors):
        pledge_in_browser(page, site_and_service, "4242424242424242")
        page.wait_for_selector("#pledge-thanks:not([hidden])", timeout=15000)
        link = page.get_attribute("#pledge-manage-link", "href")
        assert link and "/manage/" in link
        assert errors == []
    [pledge] = listed(sqlite_cli).values()
    assert pledge["status"] == "authorized" and pledge["amount"] == 20000
    sqlite_cli.ok("collect", env=after(stripe_env))
    result = sqlite_cli.ok("pledges", "list", "--json", env=after(stripe_env))
    [row] = json.loads(result.output)
    assert row["status"] == "paid" and row["paid"] == 20000


@needs_chromium
def test_axe_finds_nothing_serious_on_the_pledge_form_with_the_card_form_and_with_errors(
    site_and_service: Site,
) -> None:
    found = {}
    with browser_page() as (page, errors):
        for width, height in ((1280, 800), (390, 844)):
            page.set_viewport_size({"width": width, "height": height})
            page.goto(f"{site_and_service.origin}/pledge.html")
            page.wait_for_selector("#card-element input[placeholder=number]")
            found[f"{width}: card form shown"] = axe_violations(page)
            # A name of spaces passes the browser's checks; the service refuses it, and
            # the page marks the field and says why.
            page.check("#tier-neighbour")
            page.fill("#name", "   ")
            page.fill("#email", "grace@example.org")
            page.fill("#address", "2 Harbour Row\nLeith")
            fill_test_card(page, "4242424242424242", "EH6 6")
            page.check("#consent")
            page.click("#pledge-form button[type=submit]")
            page.wait_for_selector("#name[aria-invalid=true]", timeout=15000)
            status = page.inner_text("#pledge-status")
            assert "name" in status and "empty" in status, status
            found[f"{width}: with errors"] = axe_violations(page)
        assert errors == []
    assert {state: v for state, v in found.items() if v} == {}


@needs_chromium
def test_failed_card_fixed_through_the_private_link(
    site_and_service: Site,
    campaign_dir: Path,
    sqlite_url: str,
    sqlite_cli: Cli,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
) -> None:
    """Saved card declines at collect; the backer follows the mailed link and saves another."""
    # The service after the deadline, inside the fix window, is where the mailed link points.
    late_port = free_port()
    late_api = f"http://127.0.0.1:{late_port}"
    collected_at = datetime.fromisoformat(AFTER_DEADLINE)
    # The private-link page loads the Stripe.js the site was built with (STRIPE_JS_URL).
    late_env = {
        **site_and_service.env,
        "PLEDGE_API": late_api,
        "STRIPE_JS_URL": f"{localstripe.url}/js.stripe.com/v3/",
    }
    late = make_settings(campaign_dir, sqlite_url, late_env, now=collected_at + timedelta(days=1))

    with browser_page() as (page, errors):
        pledge_in_browser(page, site_and_service, DECLINE_CARD)
        page.wait_for_selector("#pledge-thanks:not([hidden])", timeout=15000)
        [pledge] = listed(sqlite_cli).values()
        assert pledge["status"] == "authorized"

        done = sqlite_cli.ok("collect", "--json", env=after(stripe_env, PLEDGE_API=late_api))
        assert json.loads(done.output)["result"]["failures"] == {"card_declined": 1}
        assert listed(sqlite_cli)[pledge["id"]]["status"] == "payment_failed"
        fix_url = fix_link(sqlite_url, pledge["id"])
        assert fix_url.startswith(f"{late_api}/manage/")

        with serving(late, late_port):
            page.goto(fix_url)
            assert "We could not charge your card for £200.00." in page.inner_text("main")
            assert page.inner_text("#pledge-status") == (
                "Action needed: your payment did not go through"
            )
            # The card form mounts once the service has opened a card form at Stripe.
            page.wait_for_selector("#fix-form #card-element input[placeholder=number]")
            fill_test_card(page, "4242424242424242", "EH6 6")
            page.click("#fix-form button[type=submit]")
            page.wait_for_selector("#pledge-status-line:not(:empty)", timeout=15000)
            line = page.inner_text("#pledge-status-line")
            assert line == "Thank you: your card is saved and will be charged shortly."
            assert page.is_disabled("#fix-form button[type=submit]")  # nothing to resend
            page.reload()
            assert page.inner_text("#pledge-status") == "Your card is saved"
            assert "will be charged £200.00 shortly" in page.inner_text("main")
            assert page.query_selector("#fix-form") is None
        assert errors == []

    assert listed(sqlite_cli)[pledge["id"]]["status"] == "authorized"
    retry_at = (collected_at + timedelta(days=2)).isoformat()
    sqlite_cli.ok("collect", "--retry", env=after(stripe_env, FUNDRAISER_NOW=retry_at))
    row = listed(sqlite_cli)[pledge["id"]]
    assert row["status"] == "paid" and row["paid"] == 20000
    assert [c["amount"] for c in localstripe.succeeded_charges()] == [20000]


def fix_link(db_url: str, pledge_id: int) -> str:
    """The fix-your-card link in the payment_failed mail waiting in the outbox."""
    ledger = open_ledger(db_url)
    try:
        with ledger.read() as conn:
            [data] = (
                conn.execute(
                    sa.select(schema.outbox.c.data).where(
                        schema.outbox.c.kind == "payment_failed",
                        schema.outbox.c.pledge_id == pledge_id,
                    )
                )
                .scalars()
                .all()
            )
    finally:
        ledger.dispose()
    return str(json.loads(data)["fix_url"])
