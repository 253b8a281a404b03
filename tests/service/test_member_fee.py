"""A member's fee from their page: its rate and card at the emulator, ending it, and
the mails when it fails and lapses."""

from __future__ import annotations

import json
import re

from tests.conftest import Cli
from tests.documents.test_mail_truth import text_of
from tests.service import memberpage
from tests.service.memberpage import (
    Coop,
    csrf_of,
    link_in,
    post_event,
    sign_in,
    wait_for_mail,
)
from tests.service.test_private_page import Page
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture

coop = memberpage.coop
localstripe = memberpage.localstripe
stripe_env = memberpage.stripe_env


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
