"""`fundraiser check`'s warnings say where a missing value shows: each place, checked.

The warnings name the site's footer, the share offer and pledge pages, the
certificates and the mail. These tests build those things with the value
missing and then present, so a warning cannot drift from what people see.
"""

from __future__ import annotations

from pathlib import Path

import pypdf
import pytest

from fundraiser.config import review_campaign
from tests.conftest import Cli
from tests.sitehelpers import build, parse_html, sqlite_url
from tests.smtp_fixtures import found

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all

CONTACT = 'contact_email = "members@hearth.example"\n'
UNREGISTERED = 'registration_number = ""'
REGISTERED = 'registration_number = "RS008765"'


def warned(campaign: Path) -> dict[str, str]:
    return {w.where.split(": ")[1]: w.message for w in review_campaign(campaign).warnings}


def site_texts(campaign: Path, output: Path) -> dict[str, str]:
    result = build(campaign, sqlite_url(campaign.parent), output)
    assert result.exit_code == 0, result.output
    pages = {}
    for name in ("index", "share-offer", "pledge"):
        root = parse_html(output / f"{name}.html")
        footer = root.find("footer")
        assert footer is not None
        pages[name] = root.text
        pages[f"{name} footer"] = footer.text
        pages[f"{name} mailto"] = " ".join(
            a.attrs.get("href", "")
            for a in root.find_all("a")
            if "mailto:" in a.attrs.get("href", "")
        )
    return pages


def test_the_site_says_what_the_warnings_say(campaign_dir: Path) -> None:
    campaign = campaign_dir / "campaign.toml"
    example = campaign.read_text(encoding="utf-8")
    campaign.write_text(example.replace(CONTACT, ""), encoding="utf-8")
    messages = warned(campaign)
    assert "footer of every page" in messages["coop.registration_number"]
    assert "share offer page" in messages["coop.registration_number"]
    assert "site's footer gives no address" in messages["coop.contact_email"]
    assert "pledge page" in messages["coop.contact_email"]

    missing = site_texts(campaign, campaign_dir / "missing")
    for page in ("index", "share-offer", "pledge"):
        assert "(registration pending)" in missing[f"{page} footer"], page
        assert "Write to us" not in missing[f"{page} footer"] and not missing[f"{page} mailto"]
    assert (
        "Its registration is pending: shares are issued only once it is registered"
        in (missing["share-offer"])
    )
    assert (
        "To pledge by bank transfer instead, write to the co-op with your name"
        in (missing["pledge"])
    )

    campaign.write_text(example.replace(UNREGISTERED, REGISTERED), encoding="utf-8")
    assert warned(campaign) == {}
    present = site_texts(campaign, campaign_dir / "present")
    for page in ("index", "share-offer", "pledge"):
        assert "registered number RS008765" in present[f"{page} footer"], page
        assert "Write to us at members@hearth.example" in present[f"{page} footer"], page
    assert "registration is pending" not in present["share-offer"]
    assert "write to members@hearth.example with your name" in present["pledge"]
    assert (
        "mailto:members@hearth.example?subject=Bank%20transfer%20pledge"
        in (present["pledge mailto"])
    )


def test_certificates_and_mail_say_what_the_warnings_say(
    sqlite_cli: Cli, campaign_dir: Path
) -> None:
    campaign = campaign_dir / "campaign.toml"
    example = campaign.read_text(encoding="utf-8")
    campaign.write_text(example.replace(CONTACT, ""), encoding="utf-8")
    messages = warned(campaign)
    assert (
        "each share certificate say the registration is pending"
        in (messages["coop.registration_number"])
    )
    assert "mails give no address for questions" in messages["coop.contact_email"]
    assert "`fundraiser mail send` needs MAIL_FROM" in messages["coop.contact_email"]

    found(sqlite_cli)
    # No contact address: mail cannot be sent without MAIL_FROM.
    refused = sqlite_cli("mail", "send", "--dry-run")
    assert refused.exit_code == 2 and "MAIL_FROM" in refused.output
    footer = sqlite_cli.ok("mail", "preview", "1", "--html", "--from", "x@hearth.example").output
    assert "registered in England and Wales" in footer
    assert "Questions:" not in footer and "(no. " not in footer
    sqlite_cli.ok("certificates", "make")
    pdf = campaign_dir / "var" / "certificates" / "certificate-000001.pdf"
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    assert "(registration number pending)" in " ".join(text.split())

    campaign.write_text(example.replace(UNREGISTERED, REGISTERED), encoding="utf-8")
    assert warned(campaign) == {}
    assert sqlite_cli("mail", "send", "--dry-run").exit_code == 0
    footer = sqlite_cli.ok("mail", "preview", "1", "--html").output
    assert "(no. RS008765)" in footer and "Questions: members@hearth.example" in footer
    sqlite_cli.ok("certificates", "make")
    text = " ".join(page.extract_text() for page in pypdf.PdfReader(pdf).pages)
    assert "registration number RS008765" in " ".join(text.split())
