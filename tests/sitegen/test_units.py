"""The site's building blocks: filters, charts, aggregates, updates, sitemap addresses."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundraiser.config import load_campaign
from fundraiser.errors import UserInputError
from fundraiser.ledger import open_ledger
from fundraiser.money import Money
from fundraiser.pledges import Status
from fundraiser.sitegen import SiteBuildError
from fundraiser.sitegen.aggregates import display_names, pledge_sizes, raised_per_day, round_totals
from fundraiser.sitegen.charts import Point, bar_chart, nice_ceiling
from fundraiser.sitegen.data import parse_now
from fundraiser.sitegen.filters import local_date, local_datetime, money, money_short, to_money
from fundraiser.sitegen.sitemap import public_url
from fundraiser.sitegen.updates import new_update, slugify
from tests.sitehelpers import Backer, add_pledges, copy_campaign, run_cli, sqlite_url

PRICE = Money(5000, "GBP")


# -- Filters ----------------------------------------------------------------------------


def test_money_filter_takes_money_pairs_and_minor_units() -> None:
    assert money(Money(123456, "GBP")) == "£1,234.56"
    assert money((5000, "EUR"), locale="de_DE") == "50,00\xa0€"
    assert money(500, "JPY") == "JP¥500"
    assert money(Money(25_000_000, "GBP"), whole=True) == "£250,000"
    assert money(Money(25_000_050, "GBP"), whole=True) == "£250,000.50"
    assert money_short(Money(25_000_000, "GBP")) == "£250k"
    with pytest.raises(TypeError):
        to_money(12.5)
    with pytest.raises(TypeError):
        to_money(1250)  # minor units need a currency


def test_dates_are_shown_in_the_campaign_time_zone() -> None:
    moment = datetime(2026, 9, 1, 23, 30, tzinfo=UTC)
    assert local_date(moment, zone="Europe/London") == "2 September 2026"
    assert local_datetime(moment, zone="Europe/London") == "2 September 2026, 00:30 BST"


def test_parse_now_needs_an_offset() -> None:
    assert parse_now("2027-01-01T00:00:00+00:00") == datetime(2027, 1, 1, tzinfo=UTC)
    with pytest.raises(SiteBuildError, match="UTC offset"):
        parse_now("2027-01-01T00:00:00")
    with pytest.raises(SiteBuildError, match="not a date"):
        parse_now("next tuesday")


# -- Charts -----------------------------------------------------------------------------


@given(st.integers(min_value=0, max_value=10**15))
def test_nice_ceiling_is_a_round_number_at_or_above(value: int) -> None:
    top = nice_ceiling(value)
    assert top >= max(value, 1)
    assert top < max(value, 1) * 10
    assert str(top).rstrip("0") in ("1", "2", "5")


def test_bar_chart_escapes_text_and_is_an_accessible_image() -> None:
    svg = bar_chart(
        [Point("<b>Mon</b>", 300, "£3 & up"), Point("Tue", 0, "£0")],
        chart_id="c1",
        title="Per <day>",
        description="A & B",
        axis_label=str,
    )
    assert 'role="img"' in svg and 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Per &lt;day&gt;</title>' in svg
    assert "&lt;b&gt;Mon&lt;/b&gt;: £3 &amp; up" in svg
    assert "<b>" not in svg
    assert svg.count("<rect") == 2


# -- Aggregates --------------------------------------------------------------------------


def test_aggregates_count_live_pledges_only_and_never_people(tmp_path: Path) -> None:
    campaign = load_campaign(copy_campaign(tmp_path))
    url = sqlite_url(tmp_path)
    add_pledges(
        url,
        [
            Backer(
                "A", "a@example.org", "1 Road", 1, "2026-09-01T22:59:00+00:00", display_name="zoe"
            ),
            Backer(
                "B", "b@example.org", "2 Road", 3, "2026-09-01T23:00:00+00:00", display_name="Adam"
            ),
            Backer(
                "C",
                "c@example.org",
                "3 Road",
                200,
                "2026-09-05T12:00:00+00:00",
                round="crowd",
                display_name="Adam",
            ),
            Backer(
                "D",
                "d@example.org",
                "4 Road",
                50,
                "2026-09-05T12:00:00+00:00",
                status=Status.CANCELLED,
                display_name="Hidden",
            ),
        ],
        PRICE,
    )
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            days = raised_per_day(conn, campaign)
            bands = pledge_sizes(conn, campaign)
            rounds = round_totals(conn, campaign)
            names = display_names(conn)
    finally:
        ledger.dispose()
    # 22:59 UTC is 23:59 on the 1st in London; 23:00 UTC is midnight, the 2nd.
    assert [(d.day, d.amount.amount, d.pledges) for d in days] == [
        (date(2026, 9, 1), 5000, 1),
        (date(2026, 9, 2), 15000, 1),
        (date(2026, 9, 3), 0, 0),
        (date(2026, 9, 4), 0, 0),
        (date(2026, 9, 5), 1_000_000, 1),
    ]
    assert [(b.label, b.pledges) for b in bands if b.pledges] == [
        ("1", 1),
        ("2\u20134", 1),
        ("200", 1),
    ]
    assert sum(b.amount.amount for b in bands) == 5000 + 15000 + 1_000_000
    assert [(r.id, r.amount.amount, r.backers) for r in rounds] == [
        ("seed", 20000, 2),
        ("crowd", 1_000_000, 1),
    ]
    assert names == ["Adam", "zoe"]


# -- Updates ------------------------------------------------------------------------------


def test_slugify() -> None:
    assert slugify("Week one: £12,000 & counting!") == "week-one-12000-counting"
    assert slugify("Café   société") == "cafe-societe"
    assert slugify("北京") == ""


def test_update_new_writes_a_dated_draft_and_never_overwrites(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    (tmp_path / "content").mkdir()
    # 23:30 UTC on 10 September is 00:30 on the 11th in London.
    env = {"FUNDRAISER_NOW": "2026-09-10T23:30:00+00:00"}
    result = run_cli(
        campaign, sqlite_url(tmp_path), "update", "new", "Week two: the figures!", env=env
    )
    assert result.exit_code == 0, result.output
    path = Path(result.output.strip())
    assert path == tmp_path / "content" / "updates" / "2026-09-11-week-two-the-figures.md"
    text = path.read_text()
    assert text.startswith("Title: Week two: the figures!\n")
    assert "Date: 2026-09-11 00:30+01:00\n" in text
    assert "Slug: week-two-the-figures\n" in text
    assert "Status: draft\n" in text

    path.write_text(text + "\nMy words.\n")
    again = run_cli(
        campaign, sqlite_url(tmp_path), "update", "new", "Week two: the figures!", env=env
    )
    assert again.exit_code == 2
    assert "already exists" in again.output
    assert path.read_text().endswith("My words.\n")

    # The same title on another day gets its own address.
    later = run_cli(
        campaign,
        sqlite_url(tmp_path),
        "update",
        "new",
        "Week two: the figures!",
        env={"FUNDRAISER_NOW": "2026-09-20T10:00:00+00:00"},
    )
    assert later.exit_code == 0, later.output
    assert Path(later.output.strip()).name == "2026-09-20-week-two-the-figures-2.md"


def test_update_new_refuses_an_empty_title_and_a_missing_folder(tmp_path: Path) -> None:
    now = datetime(2026, 9, 10, tzinfo=UTC)
    with pytest.raises(UserInputError, match="title is empty"):
        new_update(tmp_path, "   ", now, "UTC")
    with pytest.raises(UserInputError, match="no content folder"):
        new_update(tmp_path / "missing", "Hello", now, "UTC")
    assert new_update(tmp_path, "北京", now, "UTC").name == "2026-09-10-update.md"


# -- Sitemap -------------------------------------------------------------------------------


def test_public_url_drops_index_html() -> None:
    assert public_url("https://x.example/", "index.html") == "https://x.example/"
    assert public_url("https://x.example", "updates/index.html") == "https://x.example/updates/"
    assert public_url("https://x.example", "faq.html") == "https://x.example/faq.html"
