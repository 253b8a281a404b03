"""A member asking to withdraw shares from their page."""

from __future__ import annotations

from tests.service import memberpage
from tests.service.memberpage import (
    Coop,
    sign_in,
)
from tests.service.test_private_page import Page
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture

coop = memberpage.coop
localstripe = memberpage.localstripe
stripe_env = memberpage.stripe_env


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
