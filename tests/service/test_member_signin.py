"""Signing in to a member's page: the same answer for strangers, rate limits, a link
that works once and expires, and former members kept out."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from fundraiser.ledger import schema
from fundraiser.links import TOP_UP, Signer
from tests.service import memberpage
from tests.service.memberpage import (
    TODAY,
    Coop,
    link_in,
    wait_for_mail,
)
from tests.service.test_private_page import Page
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import (
    LINK_SECRET,
)

coop = memberpage.coop
localstripe = memberpage.localstripe
stripe_env = memberpage.stripe_env


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
