"""The co-op's own books, written by the tests: a small beancount file a treasurer might keep.

Four months (March with nothing in it), money in and out, a Stripe payout to the
bank (neither in nor out), a bill in dollars paid from the pound account, a
euro account (left out of a pound campaign), categories with three or more
transactions a month and some with one (folded into "Other"), a dispute, and
payees, narrations, tags, links and metadata that must never reach a page:
people's names, markup and spreadsheet formulas. The books assert their own
balances, so beancount itself checks the figures the tests expect.
"""

from __future__ import annotations

from pathlib import Path

from tests.sitehelpers import ROOT

#: What no public page may show: it is in payees, narrations, tags, links, metadata and
#: a sub-account's name.
SECRET = "Qx7v"
TAG = SECRET.lower()
ATTACKS = (
    '<script>alert("books")</script>',
    '=HYPERLINK("http://evil.example","x")',
    "<img src=x onerror=alert(1)>",
)


def quoted(text: str) -> str:
    """A beancount string: backslashes and double quotes escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


BOOKS = f"""\
option "title" "Hearth's books"
option "operating_currency" "GBP"

2026-01-01 open Assets:Bank:Current GBP
2026-01-01 open Assets:Bank:Euro EUR
2026-01-01 open Assets:Stripe GBP
2026-01-01 open Assets:Stripe:Disputed GBP
2026-01-01 open Assets:Equipment GBP
2026-01-01 open Equity:Opening-Balances GBP
2026-01-01 open Equity:Share-Capital GBP
2026-01-01 open Income:Grants GBP
2026-01-01 open Income:Donations EUR
2026-01-01 open Expenses:Rent:Office GBP
2026-01-01 open Expenses:IT-Services
2026-01-01 open Expenses:Payment-Fees GBP
2026-01-01 open Expenses:Legal GBP
2026-01-01 open Expenses:Salaries:Legalname-{SECRET} GBP

2026-01-02 * "Old bank" "Opening balance moved from the founders' account"
  Assets:Bank:Current         10000.00 GBP
  Equity:Opening-Balances

2026-01-05 * "Legalname {SECRET}1" {quoted(ATTACKS[0])} #member-{TAG} ^pledge-{TAG}
  email: "marker-{TAG}1@example.org"
  Assets:Stripe                  98.50 GBP
  Expenses:Payment-Fees           1.50 GBP
  Equity:Share-Capital         -100.00 GBP

2026-01-06 * {quoted(ATTACKS[1])} "Shares, by card"
  Assets:Stripe                 198.50 GBP
  Expenses:Payment-Fees           1.50 GBP
  Equity:Share-Capital         -200.00 GBP

2026-01-07 * "Legalname {SECRET}3" "Shares, by card"
  Assets:Stripe                  48.50 GBP
  Expenses:Payment-Fees           1.50 GBP
  Equity:Share-Capital          -50.00 GBP

2026-01-08 * "Legalname {SECRET}4" "Shares, by card"
  Assets:Stripe                 148.50 GBP
  Expenses:Payment-Fees           1.50 GBP
  Equity:Share-Capital         -150.00 GBP

2026-01-20 * "Stripe" "Payout"
  Assets:Stripe                -394.00 GBP
  Assets:Bank:Current           394.00 GBP

2026-02-01 * "Landlord {SECRET}" "Office rent, February"
  Assets:Bank:Current          -400.00 GBP
  Expenses:Rent:Office

2026-02-08 * "Landlord {SECRET}" "Office rent, deposit"
  Assets:Bank:Current          -400.00 GBP
  Expenses:Rent:Office

2026-02-15 * "Landlord {SECRET}" "Office rent, service charge"
  Assets:Bank:Current          -400.00 GBP
  Expenses:Rent:Office

2026-02-03 * "Solicitor {SECRET}" {quoted(ATTACKS[2])}
  Assets:Bank:Current          -250.00 GBP
  Expenses:Legal

2026-02-28 * "Legalname {SECRET}9" "February pay"
  Assets:Bank:Current         -1200.00 GBP
  Expenses:Salaries:Legalname-{SECRET}

2026-02-10 * "Shop" "A laptop"
  Assets:Bank:Current          -300.00 GBP
  Assets:Equipment

2026-02-11 * "Host" "Servers"
  Assets:Bank:Current           -48.00 GBP
  Expenses:IT-Services           60.00 USD @ 0.80 GBP

2026-02-12 * "Host" "Backups"
  Assets:Bank:Current           -48.00 GBP
  Expenses:IT-Services           60.00 USD @ 0.80 GBP

2026-02-13 * "Host" "Mail"
  Assets:Bank:Current           -48.00 GBP
  Expenses:IT-Services           60.00 USD @ 0.80 GBP

2026-02-20 * "Donor {SECRET}" "A gift in euros"
  Assets:Bank:Euro              777.00 EUR
  Income:Donations

2026-04-02 * "Lottery fund" "Grant"
  Assets:Bank:Current          5000.00 GBP
  Income:Grants

2026-04-09 * "Card network" "Disputed card payment"
  Assets:Stripe                -100.00 GBP
  Assets:Stripe:Disputed

2026-04-30 * "Donor {SECRET}" "Another gift in euros"
  Assets:Bank:Euro              333.00 EUR
  Income:Donations

2026-05-01 balance Assets:Bank:Current    12300.00 GBP
2026-05-01 balance Assets:Stripe:Disputed   100.00 GBP
"""


def write_books(folder: Path, text: str = BOOKS, name: str = "books/hearth.beancount") -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def campaign_with_books(
    folder: Path,
    books: str | None = "books/hearth.beancount",
    *,
    replace: tuple[tuple[str, str], ...] = (),
) -> Path:
    """The example campaign.toml in `folder`, naming `books` in [books] path."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "campaign.toml").read_text(encoding="utf-8")
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    if books is not None:
        text += f'\n[books]\npath = "{books}"\n'
    path = folder / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path
