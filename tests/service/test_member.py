"""A member's own page, as the service sends it: signing in from the mail (real SMTP on
loopback), the page's words, and forms from elsewhere refused."""

from __future__ import annotations

from fundraiser.links import TOP_UP, Signer
from tests.documents.test_mail_truth import text_of
from tests.service import memberpage
from tests.service.memberpage import (
    TODAY,
    Coop,
    sign_in,
)
from tests.service.test_private_page import Page
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import (
    LINK_SECRET,
)

coop = memberpage.coop
localstripe = memberpage.localstripe
stripe_env = memberpage.stripe_env


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
