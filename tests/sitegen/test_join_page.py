"""The join page, built from the theme while [membership] is open: its terms and rules in
words, Join in the navigation after the campaign (Pledge while it is on), nothing when
membership is closed; the transparency page's members and free places."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.sitehelpers import build, copy_campaign, sqlite_url

AFTER = {"FUNDRAISER_NOW": "2027-03-01T09:00:00+00:00"}


def text(path: Path) -> str:
    raw = re.sub(r"<[^>]+>", " ", path.read_text(encoding="utf-8"))
    return " ".join(raw.replace("&#39;", "'").replace("&amp;", "&").split())


def nav_button(path: Path) -> str:
    found = re.search(r'class="nav-pledge" href="([^"]+)"[^>]*>([^<]+)<', path.read_text("utf-8"))
    assert found, path
    return f"{found.group(2)} -> {found.group(1)}"


@pytest.fixture
def after_close(tmp_path: Path) -> Path:
    campaign = copy_campaign(
        tmp_path / "coop", replace=[('admission = "board"', 'admission = "automatic"')]
    )
    output = tmp_path / "out"
    result = build(campaign, sqlite_url(campaign.parent), output, env=AFTER)
    assert result.exit_code == 0, result.output
    return output


def test_the_join_page_says_the_terms_and_the_rules(after_close: Path) -> None:
    page = text(after_close / "join.html")
    for needle in (
        "Join Hearth Social Co-operative",
        "Share price £50.00",
        "A new member buys at least 1 share (£50.00)",
        "No one holds more than 200 shares (£10,000.00)",
        "Standard : £3.00 a month",
        "Reduced : £1.00 a month, for people on a low income",
        "Supporter : £6.00 a month, which pays for free places for people who cannot pay",
        "Free place : paid for by supporters, for people who cannot pay (none free just now)",
        "Automatic: you are a member as soon as your payment is through",
        "If your fee goes unpaid for 30 days after it falls due, your membership is suspended",
        "You may withdraw shares with 90 days\u2019 notice",
        "Read our rules and the share offer",
    ):
        assert needle in page, needle
    html = (after_close / "join.html").read_text("utf-8")
    assert 'id="rate-free" value="free" required disabled' in html  # no place funded yet
    assert '<meta name="referrer" content="no-referrer">' in html
    assert 'href="./bylaws.html"' in html


def test_join_replaces_pledge_in_the_navigation_after_the_campaign(
    after_close: Path, tmp_path: Path
) -> None:
    for name in ("index.html", "join.html", "transparency.html", "faq.html"):
        assert nav_button(after_close / name) == "Join -> ./join.html", name
    campaign = copy_campaign(tmp_path / "during")
    output = tmp_path / "during-out"
    assert build(campaign, sqlite_url(campaign.parent), output).exit_code == 0
    assert nav_button(output / "index.html") == "Pledge -> ./pledge.html"


def test_no_join_page_while_membership_is_closed(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path / "closed", replace=[("open = true", "open = false")])
    output = tmp_path / "out"
    result = build(campaign, sqlite_url(campaign.parent), output, env=AFTER)
    assert result.exit_code == 0, result.output
    assert not (output / "join.html").exists()
    assert nav_button(output / "index.html") == "Pledge -> ./pledge.html"


def test_the_transparency_page_counts_members_and_free_places(after_close: Path) -> None:
    page = text(after_close / "transparency.html")
    assert "Members and fees Members now 0 Joined this month 0" in page
    assert "Free places funded by supporters 0 Free places taken 0" in page
    assert "who holds a free place is never shown" in page
