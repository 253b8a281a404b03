"""A member's own page under test: three founding members paying a fee by card at the
emulator, the service on a test client with real SMTP on loopback, and signing in as
a member does (from the mail). Shared by tests/service/test_member*.py."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fundraiser.config import Rate, load_campaign
from fundraiser.ledger import open_ledger
from fundraiser.membership import fees
from fundraiser.payments.client import make_client
from fundraiser.payments.plans import ensure_plan
from fundraiser.payments.webhooks import signature_header
from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.documents.test_mail_truth import text_of
from tests.membership.memberhelp import make_members
from tests.service.test_private_page import Page
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import (
    WEBHOOK_SECRET,
    LocalStripe,
    TestClient,
    make_settings,
)

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env

#: The service's day: after the founding issue (2027-03-01), within a paid month.
TODAY = datetime(2027, 3, 10, 12, tzinfo=UTC)
#: "paypal@example.org" with Cyrillic letters that look like Latin ones.
LOOK_ALIKE = "\u0440\u0430\u0443\u0440\u0430l@example.org"
ATTACKS = (
    '=HYPERLINK("http://evil.example","x")',
    "<script>alert(1)</script><img src=x onerror=alert(2)>",
    "[Verify](http://evil.example) **bold**",
)


@dataclass
class Coop:
    client: TestClient
    smtp: SmtpServer
    url: str
    campaign_dir: Path
    stripe: LocalStripe
    subscriptions: dict[int, str]  # member number -> Stripe subscription
    customers: dict[int, str]

    def ledger(self) -> Any:
        return open_ledger(self.url)


def subscribe(ls: LocalStripe, campaign: Any, number: int) -> tuple[str, str]:
    """A Stripe customer with a saved card, on the standard rate's plan."""
    client = make_client("sk_test_member", ls.url)
    customer = client.v1.customers.create({"email": f"member{number}@example.org"})
    card = client.v1.payment_methods.create(
        {
            "type": "card",
            "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2031, "cvc": "123"},
        }
    )
    client.v1.payment_methods.attach(card.id, params={"customer": customer.id})
    client.v1.customers.update(
        customer.id, {"invoice_settings": {"default_payment_method": card.id}}
    )
    fee = campaign.membership.fee
    plan = ensure_plan(client, campaign.coop.name, fee, Rate.STANDARD)
    sub = client.v1.subscriptions.create({"customer": customer.id, "items": [{"plan": plan}]})
    return str(sub.id), str(customer.id)


def found_members(
    campaign_dir: Path, sqlite_url: str, localstripe: LocalStripe
) -> tuple[dict[int, str], dict[int, str]]:
    """Three members issued at the founding (2 shares each), each paying the standard
    fee by card at the emulator, paid to 1 April 2027: (subscriptions, customers)."""
    campaign = load_campaign(campaign_dir / "campaign.toml")
    ledger = open_ledger(sqlite_url)
    make_members(ledger, campaign, 3, shares=2)
    subs, customers = {}, {}
    fee = campaign.membership.fee
    for number in (1, 2, 3):
        sub, customer = subscribe(localstripe, campaign, number)
        subs[number], customers[number] = sub, customer
        with ledger.write("2027-03-01T10:00:00.000000+00:00") as tx:
            fees.start(
                tx,
                member_number=number,
                rate=Rate.STANDARD,
                amount=fee.amount,
                interval=fee.interval,
                started_on="2027-03-01",
                stripe_subscription=sub,
                stripe_customer=customer,
            )
            fees.apply(
                tx,
                fees.FeeEvent(
                    fees.EventKind.INVOICE_PAID,
                    sub,
                    f"in_first_{number}",
                    fee.amount.amount,
                    fee.amount.currency,
                    "2027-03-01",
                    "2027-04-01",
                    "2027-03-01T10:00:00Z",
                ),
            )
    ledger.dispose()
    return subs, customers


@pytest.fixture
def coop(
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    localstripe: LocalStripe,
    smtp_server: SmtpServer,
) -> Iterator[Coop]:
    subs, customers = found_members(campaign_dir, sqlite_url, localstripe)
    started = time.monotonic()
    settings = replace(
        make_settings(campaign_dir, sqlite_url, stripe_env, TODAY),
        smtp_url=smtp_server.url,
        # TODAY, ticking: each sign-in link is made at its own moment.
        now=lambda: TODAY + timedelta(seconds=time.monotonic() - started),
    )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield Coop(client, smtp_server, sqlite_url, campaign_dir, localstripe, subs, customers)


def wait_for_mail(smtp: SmtpServer, address: str, count: int = 1) -> list[Any]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = smtp.to(address)
        if len(found) >= count:
            return [m.message for m in found]
        time.sleep(0.05)
    raise AssertionError(f"no mail to {address}: {[m.rcpt_tos for m in smtp.inbox]}")


def link_in(message: Any, path: str) -> str:
    found = re.search(rf"http://testserver({path}[^\s)\]]+)", text_of(message))
    assert found is not None, text_of(message)
    return found.group(1)


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([0-9a-f]+)"', html)
    assert found is not None, html[:2000]
    return found.group(1)


def sign_in(coop: Coop, number: int, email: str | None = None) -> str:
    """Ask for a link, open it from the mail, press the button: the page's csrf token."""
    address = email or f"member{number}@example.org"
    before = len(coop.smtp.to(address.lower()))
    answer = coop.client.post("/member/sign-in", data={"email": address.upper()})
    assert answer.status_code == 200, answer.text
    mail = wait_for_mail(coop.smtp, address.lower(), before + 1)[-1]
    link = link_in(mail, "/member/sign-in/")
    shown = coop.client.get(link)
    assert shown.status_code == 200 and "Sign in" in Page(shown.text).main
    done = coop.client.post(link, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == "/member"
    cookie = done.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/member" in cookie
    page = coop.client.get("/member")
    assert page.status_code == 200
    return csrf_of(page.text)


def register_csv(cli: Cli, tmp_path: Path) -> Path:
    out = tmp_path / "register.csv"
    cli.ok("members", "export", "--out", str(out))
    return out


def post_event(coop: Coop, kind: str, obj: dict[str, Any]) -> None:
    event = {
        "id": f"evt_{kind.replace('.', '_')}_{obj['id']}",
        "object": "event",
        "type": kind,
        "created": int(TODAY.timestamp()),
        "livemode": False,
        "data": {"object": obj},
    }
    body = json.dumps(event).encode()
    answer = coop.client.post(
        "/api/stripe/webhook",
        content=body,
        headers={
            "stripe-signature": signature_header(body, WEBHOOK_SECRET),
            "content-type": "application/json",
        },
    )
    assert answer.status_code == 200, answer.text
