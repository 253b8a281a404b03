"""A member's own page in real headless Chromium on a phone (390 x 844): signing in from
the mail, changing the address, the fee's rate, asking to withdraw, ending the fee.
axe-core checks each page; each is screenshot at both widths (into the test's folder)."""

from __future__ import annotations

import functools
import http.server
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest

from tests import stripe_fixtures
from tests.browser import browser_page, needs_chromium
from tests.conftest import ROOT, free_port
from tests.journeys.test_pledge_browser import Quiet, serving
from tests.journeys.test_private_page_browser import PHONE, look
from tests.service.memberpage import TODAY, found_members
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import LocalStripe, make_settings

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env

pytestmark = needs_chromium


@dataclass
class Served:
    api: str
    subscriptions: dict[int, str]
    smtp: SmtpServer
    stripe: LocalStripe


@pytest.fixture
def served(
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
    smtp_server: SmtpServer,
    tmp_path: Path,
) -> Iterator[Served]:
    """The built site (its stylesheet) and the pledge service, each on a loopback port."""
    from fundraiser.sitegen.build import build_site

    subs, _ = found_members(campaign_dir, sqlite_url, localstripe)
    site_port, api_port = free_port(), free_port()
    site_origin, api = f"http://127.0.0.1:{site_port}", f"http://127.0.0.1:{api_port}"
    output = tmp_path / "output"
    build_site(
        ROOT / "site" / "pelicanconf.py",
        campaign_path=campaign_dir / "campaign.toml",
        database_url=sqlite_url,
        now=TODAY,
        output=output,
        extra={"PLEDGE_API": api},
    )
    env = {**stripe_env, "SITE_ORIGIN": site_origin, "PLEDGE_API": api}
    settings = replace(
        make_settings(campaign_dir, sqlite_url, env, TODAY), smtp_url=smtp_server.url
    )
    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", site_port), functools.partial(Quiet, directory=str(output))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        with serving(settings, api_port) as url:
            yield Served(url, subs, smtp_server, localstripe)
    finally:
        httpd.shutdown()
        httpd.server_close()


def mailed_link(smtp: SmtpServer, address: str) -> str:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for mail in smtp.to(address):
            body = mail.message.get_body(("plain",)).get_content()
            found = re.search(r"http://127\.0\.0\.1:\d+/member/sign-in/[^\s)\]]+", body)
            if found:
                return found.group(0)
        time.sleep(0.05)
    raise AssertionError(f"no sign-in mail to {address}")


def main_text(page: Any) -> str:
    return " ".join(page.locator("main").inner_text().split())


def test_a_member_manages_their_membership_on_a_phone(served: Served, tmp_path: Path) -> None:
    shots = tmp_path / "shots"
    shots.mkdir()
    with browser_page() as (page, errors):
        page.set_viewport_size(PHONE)
        page.goto(f"{served.api}/member")
        look(page, shots, "sign-in")
        page.fill("#signin-email", "member1@example.org")
        page.click("main button[type=submit]")
        assert "If member1@example.org is the email address of a member" in main_text(page)
        look(page, shots, "check-your-email")

        page.goto(mailed_link(served.smtp, "member1@example.org"))
        look(page, shots, "sign-in-link")
        page.click("main button[type=submit]")
        page.wait_for_load_state()
        assert page.url == f"{served.api}/member", (page.url, main_text(page))
        text = main_text(page)
        assert "Member 1, member number 1." in text and "Paid up" in text
        look(page, shots, "member")

        page.fill("#address", "2 Mill Lane\nHebden Bridge")
        page.click("form[action='/member/address'] button")
        assert "Your postal address is changed in the register." in main_text(page)

        page.check("#rate-supporter")
        page.click("form[action='/member/rate'] button")
        assert "Your fee rate is changed." in main_text(page)
        sub = served.stripe.request("GET", f"/v1/subscriptions/{served.subscriptions[1]}")
        assert sub["items"]["data"][0]["plan"]["amount"] == 600

        page.click("a[href='/member/withdraw']")
        assert "paid from 8 June 2027" in main_text(page)
        look(page, shots, "withdraw")
        page.fill("#shares", "5")
        page.evaluate("document.querySelector('#shares').removeAttribute('max')")
        page.click("form[action='/member/withdraw'] button")
        assert "You can ask to withdraw at most 2 shares" in main_text(page)
        look(page, shots, "withdraw-refused")
        page.fill("#shares", "2")
        page.click("form[action='/member/withdraw'] button")
        assert "Your request to withdraw shares is recorded." in main_text(page)

        page.click("a[href='/member/end-fee']")
        assert "you lose your vote" in main_text(page)
        look(page, shots, "end-fee")
        page.check("#confirm")
        page.click("form[action='/member/end-fee'] button")
        assert "Your membership fee has ended." in main_text(page)
        look(page, shots, "after")
        sub = served.stripe.request("GET", f"/v1/subscriptions/{served.subscriptions[1]}")
        assert sub["status"] == "canceled"
        assert errors == []
