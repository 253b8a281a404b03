"""The join page in headless Chromium on a phone: the built site after the campaign, the
service and the emulator's Stripe.js. A person joins with the test card and is welcomed;
a card the bank declines leaves no member; a member tops up from their link."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.links import TOP_UP, Signer
from tests import stripe_fixtures
from tests.browser import axe_violations, browser_page, fill_test_card, needs_chromium
from tests.joinfixtures import JOIN_NOW, automatic
from tests.journeys.test_pledge_browser import Quiet, Site, serving
from tests.stripe_fixtures import LINK_SECRET, ROOT, LocalStripe, free_port, make_settings

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env

PHONE = {"width": 390, "height": 844}
THREE_D_SECURE = "4000002500003155"
DECLINED_ON_CHARGE = "4000000000000341"  # saved, then every charge declined


@pytest.fixture
def join_site(
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
    tmp_path: Path,
) -> Iterator[Site]:
    """The site built after the deadline (the join page), and the service on that clock."""
    from fundraiser.sitegen.build import build_site

    automatic(campaign_dir)
    site_port, api_port = free_port(), free_port()
    site_origin, api = f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{api_port}"
    output = tmp_path / "output"
    build_site(
        ROOT / "site" / "pelicanconf.py",
        campaign_path=campaign_dir / "campaign.toml",
        database_url=sqlite_url,
        now=JOIN_NOW,
        output=output,
        extra={
            "STRIPE_JS_URL": f"{localstripe.url}/js.stripe.com/v3/",
            "PLEDGE_API": api,
            "STRIPE_PUBLISHABLE_KEY": stripe_env["STRIPE_PUBLISHABLE_KEY"],
        },
    )
    env = {**stripe_env, "SITE_ORIGIN": site_origin, "PLEDGE_API": api}
    settings = replace(make_settings(campaign_dir, sqlite_url, env, now=JOIN_NOW), pledge_burst=50)
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", site_port), functools.partial(Quiet, directory=str(output))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with serving(settings, api_port):
            yield Site(site_origin, api, env)
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


def rows(url: str, table: sa.Table) -> list[Any]:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return list(conn.execute(sa.select(table)).all())
    finally:
        ledger.dispose()


def fill_join(page: Any, site: Site, card: str, *, shares: str = "2") -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"{site.origin}/join.html")
    page.fill("#shares", shares)
    page.check("#rate-supporter")
    page.fill("#name", "Grace Hopper")
    page.fill("#email", "grace@example.org")
    page.fill("#address", "2 Harbour Row, Leith")
    fill_test_card(page, card, "EH6 6")
    page.check("#consent")


@needs_chromium
def test_join_on_a_phone_with_the_test_card_and_be_welcomed(
    join_site: Site, sqlite_url: str, tmp_path: Path
) -> None:
    with browser_page() as (page, errors):
        fill_join(page, join_site, "4242424242424242")
        assert page.inner_text("[data-join-total]") == "2 \u00d7 £50.00 = £100.00"
        assert "Join" in page.inner_text("header .nav-pledge")
        assert axe_violations(page) == []
        page.screenshot(path=str(tmp_path / "join-phone.png"), full_page=True)
        page.click("#join-form button[type=submit]")
        page.wait_for_selector("#join-thanks:not([hidden])", timeout=15000)
        welcome = page.inner_text("#join-thanks")
        assert "You are member No. 1" in welcome
        assert axe_violations(page) == []
        assert errors == []
    (member,) = rows(sqlite_url, schema.members)
    assert member.name == "Grace Hopper"
    (fee,) = rows(sqlite_url, schema.fee_subscriptions)
    assert (fee.rate, fee.amount, fee.member_number) == ("supporter", 600, 1)


@needs_chromium
def test_three_d_secure_for_the_card_and_the_charge(join_site: Site, sqlite_url: str) -> None:
    with browser_page() as (page, errors):
        fill_join(page, join_site, THREE_D_SECURE)
        page.click("#join-form button[type=submit]")
        # Once to save the card, once more when the bank wants the person for the charge.
        page.get_by_role("button", name="Complete authentication").click(timeout=15000)
        page.get_by_role("button", name="Complete authentication").click(timeout=15000)
        page.wait_for_selector("#join-thanks:not([hidden])", timeout=15000)
        assert "member No. 1" in page.inner_text("#join-thanks")
        assert errors == []
    assert len(rows(sqlite_url, schema.members)) == 1


@needs_chromium
def test_a_declined_card_says_so_and_makes_no_member(join_site: Site, sqlite_url: str) -> None:
    with browser_page() as (page, errors):
        fill_join(page, join_site, DECLINED_ON_CHARGE)
        page.click("#join-form button[type=submit]")
        page.wait_for_selector("#join-status.error", timeout=15000)
        said = page.inner_text("#join-status")
        assert "declined" in said.lower() and "Nothing was taken" in said
        assert page.is_hidden("#join-thanks")
        assert errors == []
    assert rows(sqlite_url, schema.members) == []
    assert rows(sqlite_url, schema.register_entries) == []
    assert rows(sqlite_url, schema.remainders) == []


@needs_chromium
def test_a_member_tops_up_from_their_link(join_site: Site, sqlite_url: str) -> None:
    with browser_page() as (page, errors):
        fill_join(page, join_site, "4242424242424242")
        page.click("#join-form button[type=submit]")
        page.wait_for_selector("#join-thanks:not([hidden])", timeout=15000)
        token = Signer(LINK_SECRET).sign(1, TOP_UP, JOIN_NOW + timedelta(days=2))
        page.goto(f"{join_site.origin}/join.html?top_up={token}")
        page.wait_for_selector("#top-up-note:not([hidden])", timeout=10000)
        assert "Member No. 1: you hold 2 shares, and may buy up to 198 more" in page.inner_text(
            "#top-up-note"
        )
        assert page.is_hidden("#name")
        page.fill("#shares", "3")
        fill_test_card(page, "4242424242424242", "EH6 6")
        page.check("#consent")
        assert axe_violations(page) == []
        page.click("#join-form button[type=submit]")
        page.wait_for_selector("#join-thanks:not([hidden])", timeout=15000)
        assert "added to your holding" in page.inner_text("#join-thanks")
        # A link that has run out says so, in words.
        old = Signer(LINK_SECRET).sign(1, TOP_UP, JOIN_NOW - timedelta(days=1))
        page.goto(f"{join_site.origin}/join.html?top_up={old}")
        page.wait_for_selector("#top-up-note:not([hidden])", timeout=10000)
        assert "This link has expired" in page.inner_text("#top-up-note")
        assert page.is_disabled("#join-form button[type=submit]")
        assert errors == []
    entries = rows(sqlite_url, schema.register_entries)
    assert [(e.member_number, e.shares) for e in entries] == [(1, 2), (1, 3)]
