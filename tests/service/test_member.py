"""A member's own page, as the service sends it: signing in from the mail (real SMTP on
loopback), the page's words, each change in the register, and the fee at the emulator."""

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
import sqlalchemy as sa
from markupsafe import escape

from fundraiser.config import Rate, load_campaign
from fundraiser.ledger import open_ledger, schema
from fundraiser.links import TOP_UP, Signer
from fundraiser.membership import fees
from fundraiser.payments.client import make_client
from fundraiser.payments.plans import ensure_plan
from fundraiser.payments.webhooks import signature_header
from fundraiser.service.app import create_app
from fundraiser.sitegen.aggregates import display_names
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.documents.test_mail_truth import text_of
from tests.membership.memberhelp import make_members
from tests.service.test_private_page import Page
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.spreadsheet import as_typed, live_formulas, open_csv
from tests.stripe_fixtures import (
    LINK_SECRET,
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


def test_a_member_signs_in_from_the_mail_and_sees_what_they_hold(coop: Coop) -> None:
    csrf = sign_in(coop, 1)
    mail = coop.smtp.to("member1@example.org")[0].message
    words = text_of(mail)
    assert mail["Subject"].startswith("Your sign-in link for")
    assert "The link works once, for 30 minutes." in words
    page = Page(coop.client.get("/member").text)
    assert "Member 1, member number 1." in page.main
    assert "Member since 1 March 2027" in page.main
    assert "Shares held 2" in page.main
    assert "Paid up" in page.main and "Next payment 1 April 2027" in page.main
    assert "£3.00 for 1 March 2027 to 1 April 2027: paid" in page.main
    assert "A new rate applies from your next payment, on 1 April 2027" in page.main
    # The top-up link is for this member, signed for buying more shares.
    top_up = next(a["href"] for a in page.find("a") if "top_up=" in a.get("href", ""))
    token = top_up.split("top_up=", 1)[1]
    assert Signer(LINK_SECRET).check(token, (TOP_UP,), TODAY) == 1
    # Their certificate, and only theirs.
    cert = next(a["href"] for a in page.find("a") if "/certificates/" in a.get("href", ""))
    pdf = coop.client.get(cert)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    other = coop.client.get("/member/certificates/certificate-000002.pdf")
    assert other.status_code == 404 and "No such document" in Page(other.text).main
    assert coop.client.get("/member/certificates/..%2F..%2Fcampaign.toml").status_code == 404
    assert csrf


def test_the_answer_is_the_same_for_a_stranger_and_no_mail_goes(coop: Coop) -> None:
    member = coop.client.post("/member/sign-in", data={"email": "member2@example.org"})
    stranger = coop.client.post("/member/sign-in", data={"email": "nobody@example.org"})
    assert member.status_code == stranger.status_code == 200
    said = Page(member.text).main.replace("member2@example.org", "X")
    assert said == Page(stranger.text).main.replace("nobody@example.org", "X")
    wait_for_mail(coop.smtp, "member2@example.org")
    time.sleep(0.5)
    assert coop.smtp.to("nobody@example.org") == []


def test_sign_in_requests_are_rate_limited(coop: Coop) -> None:
    # One address gets at most three links at once, however often it is typed.
    for _ in range(5):
        answer = coop.client.post("/member/sign-in", data={"email": "member3@example.org"})
        assert answer.status_code == 200
        time.sleep(1.1)  # a link a second apart: the same second's link is sent once
    wait_for_mail(coop.smtp, "member3@example.org", 3)
    time.sleep(1)
    assert len(coop.smtp.to("member3@example.org")) == 3
    # One machine asks for ten at once, then ten a minute, whatever the addresses
    # (five asked above; the seconds slept since gave back about one).
    answers = [
        coop.client.post("/member/sign-in", data={"email": f"x{n}@example.org"}).status_code
        for n in range(8)
    ]
    assert answers[:5] == [200] * 5 and answers[-1] == 429 and answers.count(200) <= 7


def test_a_link_works_once_for_its_member_and_not_after_it_expires(coop: Coop) -> None:
    coop.client.post("/member/sign-in", data={"email": "member1@example.org"})
    link = link_in(wait_for_mail(coop.smtp, "member1@example.org")[0], "/member/sign-in/")
    assert coop.client.post(link, follow_redirects=False).status_code == 303
    again = coop.client.post(link, follow_redirects=False)
    assert again.status_code == 403
    assert "This sign-in link has been used already" in Page(again.text).main
    assert "used already" in Page(coop.client.get(link).text).main

    # Signed in as member 1, a link for member 2: a page that says what to do.
    coop.client.post("/member/sign-in", data={"email": "member2@example.org"})
    other = link_in(wait_for_mail(coop.smtp, "member2@example.org")[0], "/member/sign-in/")
    shown = coop.client.get(other)
    assert shown.status_code == 409
    assert "You are signed in as member number 1, and this link is for another member." in (
        Page(shown.text).main
    )
    assert coop.client.post(other, follow_redirects=False).status_code == 409

    # A top-up link is not a sign-in link; a forged one is not one either.
    top_up = Signer(LINK_SECRET).sign(1, TOP_UP, TODAY + timedelta(hours=1))
    assert "not a sign-in link" in Page(coop.client.get(f"/member/sign-in/{top_up}").text).main
    forged = Signer("another-secret-0123456789").sign(1, "member", TODAY + timedelta(hours=1))
    assert "does not work" in Page(coop.client.get(f"/member/sign-in/{forged}").text).main

    # Expired: the same link, 31 minutes on.
    late = Signer(LINK_SECRET).sign(2, "member", TODAY - timedelta(minutes=1))
    page = coop.client.get(f"/member/sign-in/{late}")
    assert page.status_code == 403 and "This sign-in link has expired" in Page(page.text).main


def test_a_former_member_cannot_sign_in(coop: Coop, campaign_dir: Path) -> None:
    ledger = coop.ledger()
    with ledger.write() as tx:
        tx.update(schema.members, {"number": 3}, ceased_on="2027-03-05")
        tx.record("test.cease", "member:3", {})
    ledger.dispose()
    link = Signer(LINK_SECRET).sign(3, "member", TODAY + timedelta(minutes=30))
    page = coop.client.post(f"/member/sign-in/{link}", follow_redirects=False)
    assert page.status_code == 403 and "Your membership has ended" in Page(page.text).main
    coop.client.post("/member/sign-in", data={"email": "member3@example.org"})
    time.sleep(1)
    assert coop.smtp.to("member3@example.org") == []


def register_csv(cli: Cli, tmp_path: Path) -> Path:
    out = tmp_path / "register.csv"
    cli.ok("members", "export", "--out", str(out))
    return out


def test_changes_are_in_the_register_with_their_date_and_attacks_stay_text(
    coop: Coop, sqlite_cli: Cli, tmp_path: Path
) -> None:
    csrf = sign_in(coop, 1)
    for attack in ATTACKS:
        done = coop.client.post(
            "/member/address", data={"csrf": csrf, "address": attack}, follow_redirects=False
        )
        assert done.status_code == 303, done.text
        page = coop.client.get("/member?done=address").text
        assert "<script>alert" not in page and "<img" not in page
        assert str(escape(attack)) in page
        assert "Your postal address is changed in the register." in Page(page).main
        # The register's CSV, as a spreadsheet opens it: the address is text, never run.
        rows = open_csv(register_csv(sqlite_cli, tmp_path))
        assert live_formulas(rows) == []
        assert as_typed(next(r for r in rows if r["number"] == "1")["address"]) == attack
    # Too long, or control characters: refused by name, nothing changed.
    long = coop.client.post("/member/address", data={"csrf": csrf, "address": "x" * 501})
    assert long.status_code == 400 and "at most 500 characters" in Page(long.text).main
    # Public name: shown, then withdrawn; the site's list follows.
    coop.client.post(
        "/member/public-name", data={"csrf": csrf, "show": "yes", "public_name": "\u0410da"}
    )
    ledger = coop.ledger()
    with ledger.read() as conn:
        assert "\u0410da" in display_names(conn)
        changes = conn.execute(sa.select(schema.member_changes)).all()
    coop.client.post("/member/public-name", data={"csrf": csrf, "public_name": "Ada"})
    with ledger.read() as conn:
        assert "Ada" not in display_names(conn) and "\u0410da" not in display_names(conn)
    # Markup as a public name is text on the page (and on the site, as any name).
    coop.client.post(
        "/member/public-name", data={"csrf": csrf, "show": "yes", "public_name": ATTACKS[1][:80]}
    )
    page = coop.client.get("/member").text
    assert "<script>alert" not in page and str(escape(ATTACKS[1][:80])) in page
    ledger.dispose()
    assert {(c.field, c.changed_on) for c in changes} >= {
        ("address", "2027-03-10"),
        ("public_name", "2027-03-10"),
    }


def test_a_new_email_counts_only_once_the_new_address_confirms_it(coop: Coop) -> None:
    csrf = sign_in(coop, 2)
    bad = coop.client.post("/member/email", data={"csrf": csrf, "email": LOOK_ALIKE})
    assert bad.status_code == 400 and "not an email address we can write to" in Page(bad.text).main
    taken = coop.client.post("/member/email", data={"csrf": csrf, "email": "member1@example.org"})
    assert taken.status_code == 400 and "cannot be used here" in Page(taken.text).main
    for new in ("first@example.org", "second@example.org"):
        sent = coop.client.post(
            "/member/email", data={"csrf": csrf, "email": new}, follow_redirects=False
        )
        assert sent.status_code == 303
    first = link_in(wait_for_mail(coop.smtp, "first@example.org")[0], "/member/email/")
    second_mail = wait_for_mail(coop.smtp, "second@example.org")[0]
    assert "It counts only once you confirm it here" in text_of(second_mail)
    second = link_in(second_mail, "/member/email/")
    page = Page(coop.client.get("/member").text).main
    assert "Waiting for you to confirm second@example.org" in page
    old = coop.client.post(first)
    assert old.status_code == 409 and "use the link sent to that one" in Page(old.text).main
    assert coop.client.post(second).status_code == 200
    assert "This email address is confirmed already" in Page(coop.client.post(second).text).main
    ledger = coop.ledger()
    with ledger.read() as conn:
        email = conn.execute(
            sa.select(schema.members.c.email).where(schema.members.c.number == 2)
        ).scalar()
    ledger.dispose()
    assert email == "second@example.org"


def test_moving_rate_moves_the_subscription_to_the_new_plan(coop: Coop) -> None:
    csrf = sign_in(coop, 1)
    unknown = coop.client.post("/member/rate", data={"csrf": csrf, "rate": "free"})
    assert (
        unknown.status_code == 400 and "Choose one of the rates listed" in Page(unknown.text).main
    )
    done = coop.client.post(
        "/member/rate", data={"csrf": csrf, "rate": "reduced"}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    sub = coop.stripe.request("GET", f"/v1/subscriptions/{coop.subscriptions[1]}")
    assert sub["items"]["data"][0]["plan"]["amount"] == 100
    page = Page(coop.client.get("/member?done=rate").text).main
    assert "Your fee rate is changed." in page and "Reduced: £1.00 a month" in page


def test_asking_to_withdraw_more_than_held_is_refused_and_a_request_shows_its_day(
    coop: Coop,
) -> None:
    csrf = sign_in(coop, 1)
    form = Page(coop.client.get("/member/withdraw").text).main
    assert "90 days' notice" in form and "paid from 8 June 2027" in form
    for shares, words in (
        ("3", "You can ask to withdraw at most 2 shares"),
        ("0", "at least 1"),
        ("=1+1", "Give a whole number of shares."),
        ("9" * 50, "Give a whole number of shares."),
    ):
        refused = coop.client.post("/member/withdraw", data={"csrf": csrf, "shares": shares})
        assert refused.status_code == 400 and words in Page(refused.text).main, shares
    done = coop.client.post(
        "/member/withdraw", data={"csrf": csrf, "shares": "2"}, follow_redirects=False
    )
    assert done.status_code == 303
    page = Page(coop.client.get("/member").text).main
    assert "2 shares (£100.00), asked on 10 March 2027, to be paid from 8 June 2027" in page
    again = coop.client.post("/member/withdraw", data={"csrf": csrf, "shares": "1"})
    assert again.status_code == 400 and "at most 0 shares" in Page(again.text).main


def test_ending_the_fee_says_what_follows_then_cancels_it_at_stripe(coop: Coop) -> None:
    csrf = sign_in(coop, 2)
    ask = Page(coop.client.get("/member/end-fee").text).main
    assert "you lose your vote and are left off the voter roll" in ask
    assert "You keep your 2 shares (£100.00)" in ask
    unconfirmed = coop.client.post("/member/end-fee", data={"csrf": csrf})
    assert unconfirmed.status_code == 400
    assert (
        coop.stripe.request("GET", f"/v1/subscriptions/{coop.subscriptions[2]}")["status"]
        == "active"
    )
    done = coop.client.post(
        "/member/end-fee", data={"csrf": csrf, "confirm": "yes"}, follow_redirects=False
    )
    assert done.status_code == 303
    sub = coop.stripe.request("GET", f"/v1/subscriptions/{coop.subscriptions[2]}")
    assert sub["status"] == "canceled"
    page = Page(coop.client.get("/member").text).main
    assert "Standing Ended" in page and "End your fee" not in page


def test_changing_the_card_makes_it_the_fee_card(coop: Coop) -> None:
    sign_in(coop, 3)
    form = coop.client.get("/member/card")
    assert form.status_code == 200
    secret = re.search(r'data-secret="(seti_[^"]+)"', form.text)
    assert secret is not None
    intent = secret.group(1).split("_secret_")[0]
    card = coop.stripe.request(
        "POST",
        "/v1/payment_methods",
        {
            "type": "card",
            "card": {"number": "5555555555554444", "exp_month": 1, "exp_year": 2032, "cvc": "123"},
        },
    )
    coop.stripe.request(
        "POST", f"/v1/setup_intents/{intent}/confirm", {"payment_method": card["id"]}
    )
    csrf = csrf_of(form.text)
    done = coop.client.post(
        "/member/card", data={"csrf": csrf, "setup_intent": intent}, follow_redirects=False
    )
    assert done.status_code == 303, done.text
    customer = coop.stripe.request("GET", f"/v1/customers/{coop.customers[3]}")
    assert customer["invoice_settings"]["default_payment_method"] == card["id"]
    # Someone else's card form is not theirs to use.
    foreign = coop.client.post("/member/card", data={"csrf": csrf, "setup_intent": "seti_nope"})
    assert foreign.status_code in (400, 502)


def test_a_form_from_elsewhere_changes_nothing(coop: Coop) -> None:
    csrf = sign_in(coop, 1)
    for data, headers in (
        ({"address": "Elsewhere"}, {}),
        ({"address": "Elsewhere", "csrf": "0" * 64}, {}),
        ({"address": "Elsewhere", "csrf": csrf}, {"origin": "http://evil.example"}),
        ({"address": "Elsewhere", "csrf": csrf}, {"sec-fetch-site": "cross-site"}),
        ({"address": "Elsewhere", "csrf": csrf}, {"sec-fetch-site": "same-site"}),
    ):
        answer = coop.client.post("/member/address", data=data, headers=headers)
        assert answer.status_code == 403, data
        assert "This form cannot be sent from here" in Page(answer.text).main
    assert "Elsewhere" not in coop.client.get("/member").text
    # Signed out, the page asks for an email; the session no longer works.
    coop.client.post("/member/sign-out", data={"csrf": csrf})
    assert "Type the email address you joined with" in Page(coop.client.get("/member").text).main


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


def test_a_failed_fee_mails_a_sign_in_link_and_a_lapse_mails_again(
    coop: Coop, sqlite_cli: Cli, stripe_env: dict[str, str]
) -> None:
    invoice = {
        "id": "in_renewal_1",
        "object": "invoice",
        "subscription": coop.subscriptions[1],
        "amount_due": 300,
        "currency": "gbp",
        "lines": {"data": [{"period": {"start": 1806537600, "end": 1809129600}}]},
    }  # 2027-04-01 to 2027-05-01
    post_event(coop, "invoice.payment_failed", invoice)
    post_event(coop, "invoice.payment_failed", {**invoice})  # the same failure, again
    env = {"SMTP_URL": coop.smtp.url, "FUNDRAISER_NOW": "2027-04-02T09:00:00+00:00"}
    sqlite_cli.ok("mail", "send", env=env)
    [mail] = [m for m in wait_for_mail(coop.smtp, "member1@example.org") if "fee" in m["Subject"]]
    words = text_of(mail)
    assert mail["Subject"].startswith("Your membership fee to Hearth Social Co-operative is unpaid")
    assert "We tried to take your membership fee of **£3.00**" in words
    assert "If the fee is still unpaid after 1 May 2027, your membership lapses" in words
    link = link_in(mail, "/member/sign-in/")
    assert coop.client.post(link, follow_redirects=False).status_code == 303

    lapse_env = {**stripe_env, "FUNDRAISER_NOW": "2027-05-03T09:00:00+00:00"}
    first = json.loads(sqlite_cli.ok("members", "lapse", "--json", env=lapse_env).output)
    again = json.loads(sqlite_cli.ok("members", "lapse", "--json", env=lapse_env).output)
    # Members 2 and 3 saw no renewal either: due since 1 April, lapsed too.
    assert first == {"queued": 3, "links": True} and again["queued"] == 0
    sqlite_cli.ok("mail", "send", env={**env, "FUNDRAISER_NOW": "2027-05-03T09:00:00+00:00"})
    lapsed = [m for m in coop.smtp.to("member1@example.org") if "lapsed" in m.message["Subject"]]
    assert len(lapsed) == 1
    words = text_of(lapsed[0].message)
    assert "due since 1 April 2027, was still unpaid after 1 May 2027" in words
    assert "/member/sign-in/" in words
