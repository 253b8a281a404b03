"""The treasurer's books summed up (fundraiser/books/spending.py): what the page will count,
what it folds away, and every problem named by file, line and fix."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from fundraiser.books import spending
from fundraiser.books.spending import MIN_TRANSACTIONS, Line, Move, category_label, summarise
from fundraiser.cli import main
from fundraiser.config import load_campaign
from tests.bookfixtures import BOOKS, campaign_with_books, write_books
from tests.sitehelpers import ROOT


def read(folder: Path) -> spending.Spending:
    found = spending.read(load_campaign(folder / "campaign.toml"))
    assert found is not None
    return found


def check(campaign: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["--campaign", str(campaign), "check", *args])
    return result.exit_code, result.output


# -- the figures ------------------------------------------------------------------------------


def test_the_books_give_money_in_and_out_by_month_and_category_and_the_balance(
    tmp_path: Path,
) -> None:
    campaign_with_books(tmp_path)
    write_books(tmp_path)
    books = read(tmp_path)

    assert books.currency == "GBP"
    # The books' own balance assertions say the same (beancount checked them on loading).
    assert books.balance == 1230000
    # The last entry is a transaction in euros: the books' date, whatever its currency.
    assert books.last_entry == date(2026, 4, 30)
    months = {m.first_day: m for m in books.months}
    assert list(months) == [date(2026, m, 1) for m in (1, 2, 3, 4)]

    january = months[date(2026, 1, 1)]
    # Four card payments for shares, fees kept back; the opening balance is one transaction.
    # The payout from Stripe to the bank is neither in nor out.
    assert (january.money_in, january.money_out, january.balance) == (1050000, 600, 1049400)
    assert january.came_in == (Line("Share capital", 50000), Line(None, 1000000))
    assert january.went_out == (Line("Payment fees", 600),)

    february = months[date(2026, 2, 1)]
    # Rent three times (its sub-account counted as Rent), IT bills in dollars counted at the
    # pounds paid; the lawyer, one person's pay and a laptop are one transaction each: Other.
    # The euro gift is left out.
    assert february.came_in == ()
    assert february.went_out == (
        Line("Rent", 120000),
        Line("IT services", 14400),
        Line(None, 25000 + 120000 + 30000),
    )
    assert february.balance == 1049400 - 309400

    march = months[date(2026, 3, 1)]
    assert (march.money_in, march.money_out, march.balance) == (0, 0, 740000)

    april = months[date(2026, 4, 1)]
    # A grant (one transaction) and a disputed card payment (money the network holds back).
    assert april.came_in == (Line(None, 500000),)
    assert april.went_out == (Line(None, 10000),)

    assert books.came_in == (Line("Share capital", 50000), Line(None, 1500000))
    assert books.went_out == (
        Line("Rent", 120000),
        Line("IT services", 14400),
        Line("Payment fees", 600),
        Line(None, 175000 + 10000),
    )
    assert books.money_in - books.money_out == books.balance


def test_no_books_configured_reads_nothing(tmp_path: Path) -> None:
    campaign = load_campaign(campaign_with_books(tmp_path, books=None))
    assert campaign.books.path is None
    assert spending.read(campaign) is None
    assert spending.check(campaign) == []


def test_books_with_no_transaction_yet_have_no_months_and_no_last_entry(tmp_path: Path) -> None:
    campaign_with_books(tmp_path)
    write_books(tmp_path, "2026-01-01 open Assets:Bank:Current GBP\n")
    books = read(tmp_path)
    assert (books.months, books.balance, books.last_entry) == ((), 0, None)


def test_the_path_is_read_from_campaign_tomls_folder_wherever_the_command_runs(
    tmp_path: Path,
) -> None:
    campaign_with_books(tmp_path / "coop")
    write_books(tmp_path / "coop")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code, output = check_in(elsewhere, tmp_path / "coop" / "campaign.toml")
    assert code == 0, output


def check_in(folder: Path, campaign: Path) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "fundraiser", "--campaign", str(campaign), "check"],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stdout + done.stderr


def test_category_names_read_as_words() -> None:
    assert category_label("Equity:Share-Capital") == "Share capital"
    assert category_label("Expenses:Rent:Office") == "Rent"
    assert category_label("Expenses:IT-Services") == "IT services"
    assert category_label("Income:Café-Sales") == "Café sales"
    assert category_label("Expenses") is None


# -- the sums, for any books ------------------------------------------------------------------

CATEGORIES = ["Rent", "Pay", "Share capital", "Grants", "Fees"]


@st.composite
def moves(draw: st.DrawFn) -> list[Move]:
    found = []
    for _ in range(draw(st.integers(0, 40))):
        day = date(2026, 1, 1) + timedelta(days=draw(st.integers(0, 400)))
        parts = draw(
            st.dictionaries(
                st.sampled_from(CATEGORIES),
                st.integers(-50000, 50000).filter(bool),
                max_size=3,
            )
        )
        found.append(Move(day, sum(parts.values()), parts))
    return found


@settings(max_examples=200, deadline=None)
@given(moves())
def test_every_figure_adds_up_and_no_named_line_stands_for_fewer_transactions(
    found: list[Move],
) -> None:
    last = max((m.day for m in found), default=None)
    books = summarise(found, "GBP", last)
    assert books.balance == sum(m.cash for m in found)
    assert books.money_in - books.money_out == books.balance
    if books.months:
        assert books.months[-1].balance == books.balance
    for month in books.months:
        assert month.money_in == sum(line.amount for line in month.came_in)
        assert month.money_out == sum(line.amount for line in month.went_out)
        here = [m for m in found if m.day.replace(day=1) == month.first_day]
        for line in month.came_in + month.went_out:
            assert line.amount > 0
            if line.category is None:
                continue
            sign = 1 if line in month.came_in else -1
            count = sum(1 for m in here if m.categories.get(line.category, 0) * sign > 0)
            assert count >= MIN_TRANSACTIONS, (line, count)
    # The period's lines are the months' lines added up: no figure differs from another by
    # one folded payment.
    for lines, pick in ((books.came_in, "came_in"), (books.went_out, "went_out")):
        total: dict[str | None, int] = {}
        for month in books.months:
            for line in getattr(month, pick):
                total[line.category] = total.get(line.category, 0) + line.amount
        assert {line.category: line.amount for line in lines} == total


# -- problems, named by file, line and fix ----------------------------------------------------


def test_check_names_a_books_file_that_is_not_there(tmp_path: Path) -> None:
    campaign = campaign_with_books(tmp_path, "books/missing.beancount")
    code, output = check(campaign)
    assert code == 1
    assert "campaign.toml: books.path: books/missing.beancount does not exist" in output
    assert "Give the path of the treasurer's beancount file" in output


def test_check_names_each_line_beancounts_loader_refuses_with_the_fix(tmp_path: Path) -> None:
    campaign = campaign_with_books(tmp_path)
    broken = BOOKS.replace("  Expenses:Legal\n", "  Expenses:Lawyers\n").replace(
        "2026-05-01 balance Assets:Bank:Current    12300.00 GBP",
        "2026-05-01 balance Assets:Bank:Current    99999.00 GBP",
    )
    write_books(tmp_path, broken)
    lines = broken.splitlines()
    unknown = next(i for i, t in enumerate(lines, 1) if "Expenses:Lawyers" in t)
    balance = next(i for i, t in enumerate(lines, 1) if "99999.00" in t)

    code, output = check(campaign)
    assert code == 1
    flat = " ".join(output.split())
    assert f"books/hearth.beancount:{balance}: Balance failed for 'Assets:Bank:Current'" in flat
    assert "Correct the transactions before it, or the amount that line asserts" in flat
    assert "unknown account 'Expenses:Lawyers'" in flat
    assert "Open the account with an `open` line dated on or before its first use" in flat
    # The unknown account is reported at its transaction's first line.
    assert f"books/hearth.beancount:{unknown - 2}:" in flat

    data = json.loads(check(campaign, "--json")[1])
    assert data["ok"] is False
    wheres = {p["where"] for p in data["problems"]}
    assert f"books/hearth.beancount:{balance}" in wheres


def test_an_account_name_with_markup_is_a_syntax_error_on_its_line(tmp_path: Path) -> None:
    campaign = campaign_with_books(tmp_path)
    write_books(tmp_path, BOOKS + '\n2026-04-30 open Expenses:<script>alert("x")</script>\n')
    line = len(BOOKS.splitlines()) + 2
    code, output = check(campaign)
    assert code == 1
    assert f"books/hearth.beancount:{line}:" in output
    assert "Fix the syntax on that line" in output


def test_check_names_books_where_no_cash_account_is_open(tmp_path: Path) -> None:
    campaign = campaign_with_books(tmp_path)
    write_books(tmp_path, "2026-01-01 open Assets:Bank:Barclays GBP\n")
    code, output = check(campaign)
    assert code == 1
    assert "campaign.toml: books.bank: books/hearth.beancount opens no account under" in output
    assert "Set [books] bank and stripe to the accounts the books keep the money in" in output


def test_a_large_broken_file_lists_twenty_problems_and_how_to_see_the_rest(
    tmp_path: Path,
) -> None:
    campaign = campaign_with_books(tmp_path)
    bad = "".join(f"2026-01-{d:02d} open Expenses:Thing{d} GBP\n" for d in range(1, 29))
    write_books(tmp_path, "2026-01-01 open Assets:Bank:Current GBP\n" + bad + bad)
    problems = spending.check(load_campaign(campaign))
    assert len(problems) == spending.MAX_PROBLEMS + 1
    assert problems[-1].message == "8 more problems"
    assert "bean-check books/hearth.beancount" in problems[-1].fix


def test_reading_broken_books_raises_with_every_problem_named(tmp_path: Path) -> None:
    campaign = campaign_with_books(tmp_path)
    write_books(tmp_path, "2026-01-01 open Assets:Bank:Current GBP\n2026-13-01 oops\n")
    try:
        spending.read(load_campaign(campaign))
    except spending.BooksUnreadable as exc:
        assert "the books (books/hearth.beancount) have 2 problems:" in str(exc)
        assert [p.where for p in exc.problems] == ["books/hearth.beancount:2"] * 2
        assert "month must be in 1..12" in str(exc)
    else:
        raise AssertionError("broken books were read")


# -- start-up: beancount only for co-ops that keep books ---------------------------------------


def test_commands_and_the_site_data_module_do_not_import_beancount_without_books(
    tmp_path: Path,
) -> None:
    campaign = campaign_with_books(tmp_path, books=None)
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from fundraiser.cli import main\n"
        "import fundraiser.sitegen.data, fundraiser.books.spending\n"
        f"result = CliRunner().invoke(main, ['--campaign', {str(campaign)!r}, 'check'])\n"
        "assert result.exit_code == 0, result.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'beancount'))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
