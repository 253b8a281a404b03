"""Paying by bank (issue 17, item 2): the pledge mail and the backer's private page give
the account, the amount and the reference, as the bank's own fields; in euros to an
IBAN, also an EPC payment QR code that a banking app scans (read back here from the
mail's PNG and from the page as Chromium draws it)."""

from __future__ import annotations

import io
from email.message import EmailMessage
from pathlib import Path

import zxingcpp
from PIL import Image

from fundraiser.config import load_campaign
from fundraiser.pledges import Status
from fundraiser.service.pages import Pages, pledge_view
from tests.browser import axe_violations, browser_page, needs_chromium
from tests.conftest import Cli
from tests.documents.test_mail_truth import only, send, text_of
from tests.service.test_private_page import SITE, Page, row
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import NOW, copy_campaign

FREE_TEXT = 'details = "Sort code 08-92-99, account 65432100"'
IBAN = "IE29 AIBK 9311 5212 3456 78"
EURO_BANK = f'{FREE_TEXT}\niban = "{IBAN}"\nbic = "AIBKIE2D"'
EPC = [
    "BCD", "002", "1", "SCT", "AIBKIE2D", "Hearth Social Co-operative Ltd",
    "IE29AIBK93115212345678", "EUR2500.00", "", "", "PLEDGE-1",
]  # fmt: skip


def in_euros(campaign_dir: Path) -> None:
    copy_campaign(campaign_dir, 'currency = "GBP"', 'currency = "EUR"')
    copy_campaign(campaign_dir, FREE_TEXT, EURO_BANK)


def owed(cli: Cli) -> None:
    cli.ok(
        "pledges", "add", "--name", "Seed Backer", "--email", "seed@example.org",
        "--address", "1 Seed Lane", "--amount", "2500.00", "--notify",
    )  # fmt: skip


def scanned(png: bytes) -> list[str]:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert [f.format for f in found] == [zxingcpp.BarcodeFormat.QRCode]
    return str(found[0].text).split("\n")


def pictures(msg: EmailMessage) -> dict[str, bytes]:
    return {
        str(part.get_filename()): part.get_content()
        for part in msg.iter_attachments()
        if part.get_content_type() == "image/png"
    }


def test_a_euro_pledge_mail_gives_the_iban_and_a_code_the_bank_app_reads(
    cli: Cli, campaign_dir: Path, smtp_server: SmtpServer
) -> None:
    in_euros(campaign_dir)
    owed(cli)
    send(cli, smtp_server)
    msg = only(smtp_server, "seed@example.org")
    text = text_of(msg)
    for line in (
        "Please send **€2,500.00** by bank transfer to:",
        "Account name: Hearth Social Co-operative Ltd",
        f"IBAN: {IBAN}",
        "BIC: AIBKIE2D",
        "Reference: **PLEDGE-1**",
        "scan the QR code attached to this email",
    ):
        assert line in text, (line, text)
    assert "Sort code" not in text  # the structured account, not the free text
    html = msg.get_body(("html",)).get_content()
    assert "IE29 AIBK 9311 5212 3456 78" in html and "QR code attached" in html
    files = pictures(msg)
    assert list(files) == ["pay-by-bank-qr.png"]
    assert scanned(files["pay-by-bank-qr.png"]) == EPC


def test_a_uk_pledge_mail_gives_sort_code_and_account_and_no_code(
    cli: Cli, campaign_dir: Path, smtp_server: SmtpServer
) -> None:
    copy_campaign(
        campaign_dir, FREE_TEXT, f'{FREE_TEXT}\nsort_code = "089299"\naccount_number = "65432100"'
    )
    owed(cli)
    send(cli, smtp_server)
    msg = only(smtp_server, "seed@example.org")
    text = text_of(msg)
    for line in ("Sort code: 08-92-99", "Account number: 65432100", "Reference: **PLEDGE-1**"):
        assert line in text, (line, text)
    assert "QR" not in text and pictures(msg) == {}


def test_free_text_details_are_given_as_written(cli: Cli, smtp_server: SmtpServer) -> None:
    owed(cli)
    send(cli, smtp_server)
    msg = only(smtp_server, "seed@example.org")
    assert "- Sort code 08-92-99, account 65432100" in msg.get_body(("plain",)).get_content()
    text = text_of(msg)
    assert "Reference: **PLEDGE-1**" in text and "QR" not in text and pictures(msg) == {}


def test_a_paid_pledge_gets_no_bank_details_and_no_code(
    cli: Cli, campaign_dir: Path, smtp_server: SmtpServer
) -> None:
    in_euros(campaign_dir)
    cli.ok(
        "pledges", "add", "--name", "Paid Backer", "--email", "paid@example.org",
        "--address", "2 Road", "--amount", "100.00", "--status", "paid",
        "--reference", "BT-9", "--notify",
    )  # fmt: skip
    send(cli, smtp_server)
    msg = only(smtp_server, "paid@example.org")
    assert "IBAN" not in text_of(msg) and pictures(msg) == {}


def private_page(campaign_dir: Path, **changes: object) -> str:
    campaign = load_campaign(campaign_dir / "campaign.toml")
    view = pledge_view(
        row(Status.PENDING, id=1, source="offline", currency="EUR", amount=250000, **changes),
        campaign,
        now=NOW,
        can_cancel=True,
        transfer_reference="PLEDGE-1",
    )
    return Pages(campaign, SITE).render(
        "manage.html", title="Your pledge", p=view, token="t", closed=False
    )


def test_the_private_page_lists_the_bank_fields_and_what_is_still_due(campaign_dir: Path) -> None:
    in_euros(campaign_dir)
    # Part of it came in already: the page asks for the rest.
    page = Page(private_page(campaign_dir, paid_amount=50000))
    words = " ".join(page.text.split())
    assert "€500.00 of it has arrived so far." in words, words
    assert "Please send €2,000.00 by bank transfer with the reference below" in words, words
    for pair in (
        "Account name Hearth Social Co-operative Ltd",
        f"IBAN {IBAN}",
        "BIC AIBKIE2D",
        "Amount €2,000.00",
        "Reference PLEDGE-1",
    ):
        assert pair in words, pair
    assert "Scan this code in your banking app" in words


@needs_chromium
def test_the_private_pages_code_scans_from_the_screen(campaign_dir: Path) -> None:
    in_euros(campaign_dir)
    html = private_page(campaign_dir)
    assert html.count("<svg") == 1 and "<title>QR code with these details" in html
    with browser_page() as (page, errors):
        page.set_viewport_size({"width": 390, "height": 844})
        page.set_content(html)
        code = page.locator("figure.paycode svg")
        assert code.is_visible()
        assert scanned(code.screenshot()) == EPC
        assert axe_violations(page) == []
        assert errors == []
