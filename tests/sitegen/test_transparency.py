"""The transparency page's money in and out (fundraiser/sitegen/transparency.py), built for
real from a treasurer's books and read back as a visitor would: its text, its tables, its
charts, in English and in French, without books, with broken books, and in Chromium."""

# French is written with its own apostrophe, as the catalogs have it.
# ruff: noqa: RUF001

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from babel.numbers import format_currency

from tests.bookfixtures import ATTACKS, BOOKS, SECRET, campaign_with_books, write_books
from tests.browser import axe_violations, browser_page, needs_chromium
from tests.sitehelpers import Element, build, parse_html, sqlite_url

FRENCH = (
    ('country = "GB-ENG"', 'country = "FR"'),
    ('language = "en-GB"', 'language = "fr"'),
    ('currency = "GBP"', 'currency = "EUR"'),
    ('timezone = "Europe/London"', 'timezone = "Europe/Paris"'),
)


def built(folder: Path, *, books: str | None = BOOKS, french: bool = False) -> Path:
    """A site built from the example campaign (no pledges) and, given, these books."""
    campaign = campaign_with_books(
        folder, "books/hearth.beancount" if books is not None else None, replace=FRENCH * french
    )
    if books is not None:
        write_books(folder, books)
    output = folder / "out"
    result = build(campaign, sqlite_url(folder), output)
    assert result.exit_code == 0, (result.output, result.exception)
    return output


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(tmp_path_factory.mktemp("books-site"))


def money_section(output: Path) -> Element:
    page = parse_html(output / "transparency.html")
    section = page.find("section", aria_labelledby="money-heading")
    assert section is not None
    return section


def flat(text: str) -> str:
    """Words with single spaces (French puts no-break spaces in numbers and before ":")."""
    return " ".join(text.split())


def table(section: Element, caption_id: str) -> list[list[str]]:
    """A table's body as rows of cell texts (a month heading its rows is put in each)."""
    caption = section.by_id(caption_id)
    assert caption is not None and caption.parent is not None
    found = caption.parent
    rows: list[list[str]] = []
    month = ""
    for body in found.find_all("tbody"):
        for tr in body.find_all("tr"):
            cells = [c for c in tr.children if c.tag in ("th", "td")]
            if cells[0].attrs.get("scope") == "rowgroup":
                month = cells[0].text  # the month, heading the rows below it
                continue
            rows.append([month, *(c.text for c in cells)] if month else [c.text for c in cells])
    return rows


# -- English --------------------------------------------------------------------------------


def test_the_page_gives_the_balance_the_last_entry_and_the_totals(site: Path) -> None:
    text = flat(money_section(site).text)
    assert "Money in and out" in text
    assert "up to their last entry on 30 April 2026." in text
    assert "Balance: the co-op held £12,300.00 in its bank and card-payment accounts" in text
    assert "Since January 2026, £15,500.00 came in and £3,200.00 went out." in text
    assert "fewer than 3 payments in or out is counted under “Other”" in text
    section = money_section(site)
    last = section.find("time", datetime="2026-04-30")
    assert last is not None and last.text == "30 April 2026"


def test_money_in_and_out_by_month_with_the_balance_at_each_months_end(site: Path) -> None:
    assert table(money_section(site), "months-caption") == [
        ["January 2026", "£10,500.00", "£6.00", "£10,494.00"],
        ["February 2026", "£0.00", "£3,094.00", "£7,400.00"],
        ["March 2026", "£0.00", "£0.00", "£7,400.00"],
        ["April 2026", "£5,000.00", "£100.00", "£12,300.00"],
    ]


def test_money_by_category_folds_the_small_ones_into_other(site: Path) -> None:
    section = money_section(site)
    assert table(section, "money-in-caption") == [
        ["Share capital", "£500.00"],
        ["Other", "£15,000.00"],
    ]
    assert table(section, "money-out-caption") == [
        ["Rent", "£1,200.00"],
        ["IT services", "£144.00"],
        ["Payment fees", "£6.00"],
        ["Other", "£1,850.00"],
    ]
    assert table(section, "month-categories-caption") == [
        ["January 2026", "Share capital", "£500.00", ""],
        ["January 2026", "Payment fees", "", "£6.00"],
        ["January 2026", "Other", "£10,000.00", ""],
        ["February 2026", "Rent", "", "£1,200.00"],
        ["February 2026", "IT services", "", "£144.00"],
        ["February 2026", "Other", "", "£1,750.00"],
        ["April 2026", "Other", "£5,000.00", "£100.00"],
    ]


def test_the_months_are_charted_on_one_scale_with_words_for_assistive_technology(
    site: Path,
) -> None:
    section = money_section(site)
    charts = {svg.attrs["id"]: svg for svg in section.find_all("svg")}
    assert set(charts) == {"chart-money-in", "chart-money-out"}
    for chart in charts.values():
        assert chart.attrs["role"] == "img"
        assert chart.attrs["aria-labelledby"].split() == [
            f"{chart.attrs['id']}-title",
            f"{chart.attrs['id']}-desc",
        ]
    money_in = charts["chart-money-in"]
    assert money_in.find("title").text == "Money in per month"  # type: ignore[union-attr]
    assert money_in.find("desc").text == (  # type: ignore[union-attr]
        "£15,500.00 came in over 4 months, from January 2026 to April 2026. "
        "The most in one month was £10,500.00, in January 2026."
    )
    bars = [r.find("title").text for r in money_in.find_all("rect")]  # type: ignore[union-attr]
    assert bars == [
        "Jan 2026: £10,500.00",
        "Feb 2026: £0.00",
        "Mar 2026: £0.00",
        "Apr 2026: £5,000.00",
    ]
    # One scale for both, so a month's in and out compare by eye: the same gridlines.
    grids = [
        [t.text for t in c.find("g", class_="chart-grid").find_all("text")]  # type: ignore[union-attr]
        for c in charts.values()
    ]
    assert grids[0] == grids[1] == ["£0", "£5k", "£10k", "£15k", "£20k"]


def test_no_payee_narration_tag_link_or_sub_account_reaches_any_file_of_the_site(
    site: Path,
) -> None:
    markers = [SECRET.encode(), SECRET.lower().encode(), b"HYPERLINK", b"onerror", b"Landlord"]
    markers += [a.encode() for a in ATTACKS]
    leaks = [
        f"{path.relative_to(site)}: {m!r}"
        for path in site.rglob("*")
        if path.is_file()
        for m in markers
        if m in path.read_bytes()
    ]
    assert leaks == []
    page = (site / "transparency.html").read_text(encoding="utf-8")
    # Categories of one transaction a month are folded away; a sub-account is never shown.
    section = money_section(site).text
    for word in ("Salaries", "Equipment", "Legal", "Grants", "Donations", "Office", "Stripe"):
        assert word not in section, word
    # The euro account's money is left out of a pound campaign's page.
    assert "€" not in page and "777" not in page and "1,110" not in page


def test_without_books_the_page_says_they_are_not_published_yet(tmp_path: Path) -> None:
    section = money_section(built(tmp_path, books=None))
    assert flat(section.text) == (
        "Money in and out The co-op’s books are not published here yet. Once they are, this "
        "section will show the money that came in and went out each month, by category, "
        "and the balance."
    )
    assert section.find("svg") is None and section.find("table") is None


def test_books_with_no_transaction_say_so(tmp_path: Path) -> None:
    section = money_section(built(tmp_path, books="2026-01-01 open Assets:Bank:Current GBP\n"))
    assert flat(section.text) == "Money in and out The co-op’s books have no entries yet."


def test_books_with_money_only_in_another_currency_say_so(tmp_path: Path) -> None:
    books = (
        "2026-01-01 open Assets:Bank:Current\n2026-01-01 open Income:Gifts\n"
        '2026-02-01 * "A gift"\n  Assets:Bank:Current  10.00 EUR\n  Income:Gifts\n'
    )
    text = flat(money_section(built(tmp_path, books=books)).text)
    assert "up to their last entry on 1 February 2026." in text
    assert "Balance: the co-op held £0.00" in text
    assert "No money has come in or gone out in GBP yet." in text


def test_the_build_refuses_books_that_do_not_load_naming_the_line(tmp_path: Path) -> None:
    campaign = campaign_with_books(tmp_path)
    write_books(tmp_path, BOOKS.replace("  Expenses:Legal\n", "  Expenses:Lawyers\n"))
    line = BOOKS.splitlines().index("  Expenses:Legal") + 1 - 2  # its transaction's first line
    result = build(campaign, sqlite_url(tmp_path), tmp_path / "out")
    assert result.exit_code != 0
    assert f"books/hearth.beancount:{line}: Invalid reference to unknown account" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "transparency.html").exists()


# -- French ---------------------------------------------------------------------------------


def euros(amount: str) -> str:
    return flat(str(format_currency(Decimal(amount), "EUR", locale="fr")))


def test_the_french_page_in_french_words_money_and_months(tmp_path: Path) -> None:
    # The same books kept in euros (and the other account in pounds, left out).
    books = BOOKS.replace("GBP", "§").replace("EUR", "GBP").replace("§", "EUR")
    section = money_section(built(tmp_path, books=books, french=True))
    text = flat(section.text)
    for words in (
        "Entrées et sorties d’argent",
        "jusqu’à leur dernière écriture, le 30 avril 2026.",
        f"la coopérative détenait {euros('12300')} sur ses comptes",
        f"Depuis janvier 2026, {euros('15500')} sont entrés et {euros('3200')} sont sortis.",
        "moins de 3 paiements en entrée ou en sortie est regroupée sous « Autres »",
    ):
        assert flat(words) in text, words
    months = [[flat(c) for c in row] for row in table(section, "months-caption")]
    assert months[0] == ["janvier 2026", euros("10500"), euros("6"), euros("10494")]
    went_out = [[flat(c) for c in row] for row in table(section, "money-out-caption")]
    assert went_out[-1] == ["Autres", euros("1850")]
    chart = section.find("svg", id="chart-money-out")
    assert chart is not None and chart.find("title").text == "Sorties d’argent par mois"  # type: ignore[union-attr]
    assert "£" not in section.text and "Other" not in section.text


# -- in Chromium ----------------------------------------------------------------------------


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(site: Path) -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(site))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/transparency.html"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@needs_chromium
@pytest.mark.parametrize("width", [1280, 390])
def test_the_money_section_reads_on_a_desktop_and_a_phone_with_nothing_axe_blocks(
    served: str, tmp_path: Path, width: int
) -> None:
    with browser_page() as (page, errors):
        page.set_viewport_size({"width": width, "height": 844 if width < 800 else 800})
        page.goto(served)
        page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
        section = page.locator("section[aria-labelledby=money-heading]")
        section.scroll_into_view_if_needed()
        shot = tmp_path / f"transparency-money-{width}.png"
        section.screenshot(path=str(shot))
        assert shot.stat().st_size > 10_000
        # The page itself never scrolls sideways; a wide table scrolls inside its own region.
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        box = page.locator("#chart-money-in").bounding_box()
        assert box is not None and 0 < box["width"] <= width
        assert page.get_by_role("img", name="Money out per month").count() == 1
        assert axe_violations(page) == []
        assert errors == []
