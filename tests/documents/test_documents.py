"""Certificates and statements as real PDFs, read back; the refund list."""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import pdfplumber
import pypdf
import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fundraiser.config import load_campaign
from fundraiser.documents import PACKAGE_TEMPLATES
from fundraiser.documents.certificates import Certificate, certificate_spec
from fundraiser.documents.printing import Documents, Renderer
from fundraiser.ledger import open_ledger, schema
from fundraiser.stripekeys import ledger_keys
from tests.conftest import ROOT, Cli
from tests.smtp_fixtures import found, pay
from tests.spreadsheet import mode

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all


def text_of(path: Path) -> str:
    return "\n".join(p.extract_text() for p in pypdf.PdfReader(path).pages)


def hashes(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.pdf"))
    }


def test_certificates_one_per_issue_entry_and_byte_identical_on_rerun(
    cli: Cli, campaign_dir: Path
) -> None:
    found(cli)
    result = json.loads(cli.ok("certificates", "make", "--json").output)
    assert result["kind"] == "certificate" and result["unchanged"] == 0
    assert result["written"] == [f"certificate-00000{n}.pdf" for n in (1, 2, 3)]
    folder = campaign_dir / "var" / "certificates"
    grace = " ".join(text_of(folder / "certificate-000001.pdf").split())  # lines wrap
    for needle in (
        "Hearth Social Co-operative",
        "co-operative society registered in England and Wales",
        "registration number pending",
        "Grace Hopper",
        "member number 1",
        "4 fully paid shares",
        "£50.00",
        "£200.00",
        "Certificate No. 1",
        "10 December 2026",
        "Secretary",
        "Member of the Board",
    ):
        assert needle in grace, needle
    assert "200 fully paid shares" in text_of(folder / "certificate-000003.pdf")
    meta = pypdf.PdfReader(folder / "certificate-000001.pdf").metadata
    assert meta is not None and meta["/CreationDate"] == "D:20261210"
    before = hashes(folder)
    again = cli.ok("certificates", "make")
    assert "Wrote 0 certificates, 3 unchanged" in again.output
    assert hashes(folder) == before
    # A new issue adds a certificate and leaves the others untouched.
    pay(cli, "Ada Lovelace", "ada@example.org", "100.00", "R9")
    cli.ok("shares", "issue")
    only = json.loads(cli.ok("certificates", "make", "--member", "4", "--json").output)
    assert only["written"] == ["certificate-000004.pdf"]
    assert "Ada Lovelace" in text_of(folder / "certificate-000004.pdf")
    assert {k: v for k, v in hashes(folder).items() if k != "certificate-000004.pdf"} == before


def test_unknown_member_and_nothing_issued(sqlite_cli: Cli) -> None:
    assert "nothing to make" in sqlite_cli.ok("certificates", "make").output
    found(sqlite_cli)
    bad = sqlite_cli("certificates", "make", "--member", "42")
    assert bad.exit_code == 2 and "member 42 does not exist" in bad.output


def test_statements_when_the_rules_issue_no_certificates(
    sqlite_cli: Cli, campaign_dir: Path
) -> None:
    toml = campaign_dir / "campaign.toml"
    toml.write_text(toml.read_text().replace("certificates = true", "certificates = false"))
    found(sqlite_cli)
    sqlite_cli.ok("members", "withdraw", "3", "--waive-notice", "--shares", "50")
    result = json.loads(sqlite_cli.ok("certificates", "make", "--json").output)
    assert result["kind"] == "statement"
    assert result["written"] == [f"statement-00000{n}.pdf" for n in (1, 2, 3)]
    big = text_of(campaign_dir / "var" / "certificates" / "statement-000003.pdf")
    assert "Share account statement" in big and "Big Backer" in big
    assert "Shares withdrawn" in big and "+200" in big and "-50" in big and "150" in big


def test_a_coop_can_restyle_its_certificate(sqlite_cli: Cli, campaign_dir: Path) -> None:
    own = campaign_dir / "templates" / "documents" / "certificates"
    own.mkdir(parents=True)
    (own / "certificate.html").write_text(
        "<html><body><h1>Our own design</h1><p>{{ member.name }} holds "
        "{{ certificate.shares }}</p></body></html>"
    )
    found(sqlite_cli)
    sqlite_cli.ok("certificates", "make", "--member", "2")
    folder = campaign_dir / "var" / "certificates"
    text = text_of(folder / "certificate-000002.pdf")
    assert "Our own design" in text and "Alan Turing holds 1" in text
    # A changed template is a changed input: the rerun makes the files again.
    (own / "certificate.html").write_text(
        "<html><body><h1>Second design</h1><p>{{ member.name }}</p></body></html>"
    )
    again = json.loads(sqlite_cli.ok("certificates", "make", "--json").output)
    assert len(again["written"]) == 3
    assert "Second design" in text_of(folder / "certificate-000002.pdf")
    # A deleted (or edited) file is made again; the others stay as they are.
    (folder / "certificate-000001.pdf").unlink()
    third = json.loads(sqlite_cli.ok("certificates", "make", "--json").output)
    assert third["written"] == ["certificate-000001.pdf"] and third["unchanged"] == 2


def test_an_own_template_that_cannot_show_a_taken_back_certificate_is_refused(
    sqlite_cli: Cli, campaign_dir: Path
) -> None:
    own = campaign_dir / "templates" / "documents" / "certificates"
    own.mkdir(parents=True)
    (own / "certificate.html").write_text(
        "<html><body><p>{{ member.name }} holds {{ certificate.shares }}</p></body></html>"
    )
    found(sqlite_cli)
    sqlite_cli.ok("certificates", "make")  # nothing taken back yet: the design is fine
    sqlite_cli.ok("members", "withdraw", "3", "--waive-notice", "--shares", "150")
    folder = campaign_dir / "var" / "certificates"
    before = hashes(folder)
    refused = sqlite_cli("certificates", "make")
    assert refused.exit_code == 1 and "Traceback" not in refused.output
    assert "never shows certificate.cancelled" in refused.output
    assert "{% if certificate.cancelled %}" in refused.output
    assert hashes(folder) == before  # the old certificate 3 is not re-made as if it stood
    (own / "certificate.html").write_text(
        "<html><body><p>{{ member.name }} holds {{ certificate.shares }}</p>"
        "{% if certificate.cancelled %}<p>Void since {{ certificate.cancelled.date }}</p>"
        "{% endif %}</body></html>"
    )
    sqlite_cli.ok("certificates", "make")
    assert "Void since 10 December 2026" in text_of(folder / "certificate-000003.pdf")


def test_a_process_pool_makes_the_same_bytes(sqlite_cli: Cli, campaign_dir: Path) -> None:
    found(sqlite_cli)
    campaign = load_campaign(campaign_dir / "campaign.toml")
    ledger = open_ledger(sqlite_cli.db_url)
    try:
        with ledger.read() as conn:
            one = Documents(campaign, campaign_dir / "one").make(conn, workers=1)
            two = Documents(campaign, campaign_dir / "two").make(conn, workers=2)
    finally:
        ledger.dispose()
    assert one.written == two.written and len(one.written) == 3
    assert hashes(campaign_dir / "one") == hashes(campaign_dir / "two")


# -- the certificate's page, measured ----------------------------------------------

A4_LANDSCAPE = (841.9, 595.3)  # points
LETTER_LANDSCAPE = (792.0, 612.0)


@dataclass(frozen=True)
class Word:
    text: str
    x0: float
    top: float
    x1: float
    bottom: float


@dataclass(frozen=True)
class Sheet:
    """A certificate's one page as a reader sees it: its size, the border, the words."""

    pages: int
    size: tuple[float, float]
    frame: tuple[float, float, float, float]  # the inside of the double border
    outer: tuple[float, float, float, float]  # its outside edge
    words: list[Word]
    rules: list[tuple[float, float, float, float]]  # other filled shapes: signature lines

    def lines(self) -> list[str]:
        """The text line by line, top to bottom (words sharing a baseline joined)."""
        rows: dict[float, list[Word]] = {}
        for word in self.words:
            key = next((k for k in rows if abs(k - word.bottom) < 2), word.bottom)
            rows.setdefault(key, []).append(word)
        return [" ".join(w.text for w in sorted(rows[k], key=lambda w: w.x0)) for k in sorted(rows)]

    def outside_frame(self) -> list[str]:
        x0, top, x1, bottom = self.frame
        return [
            w.text for w in self.words if w.x0 < x0 or w.top < top or w.x1 > x1 or w.bottom > bottom
        ]

    def overlapping(self) -> list[tuple[str, str]]:
        """Pairs of words drawn over each other (0.5 pt allowed for the fonts' boxes)."""
        found = []
        for i, a in enumerate(self.words):
            for b in self.words[i + 1 :]:
                if (
                    min(a.x1, b.x1) - max(a.x0, b.x0) > 0.5
                    and min(a.bottom, b.bottom) - max(a.top, b.top) > 0.5
                ):
                    found.append((a.text, b.text))
        return found


def measure(pdf: Path | bytes) -> Sheet:
    """Where everything sits on the first page (pdfplumber: points, top-left origin)."""
    source = io.BytesIO(pdf) if isinstance(pdf, bytes) else pdf
    with pdfplumber.open(source) as document:
        page = document.pages[0]
        boxes = [(r["x0"], r["top"], r["x1"], r["bottom"]) for r in page.rects]
        # The double border is drawn as nested frames almost as large as the page.
        frames = [b for b in boxes if b[2] - b[0] > page.width * 0.8]
        assert frames, "no border found on the page"
        inside = (
            max(b[0] for b in frames),
            max(b[1] for b in frames),
            min(b[2] for b in frames),
            min(b[3] for b in frames),
        )
        outside = (
            min(b[0] for b in frames),
            min(b[1] for b in frames),
            max(b[2] for b in frames),
            max(b[3] for b in frames),
        )
        words = [
            Word(w["text"], w["x0"], w["top"], w["x1"], w["bottom"])
            for w in page.extract_words(keep_blank_chars=False, use_text_flow=True)
        ]
        return Sheet(
            len(document.pages),
            (round(float(page.width), 1), round(float(page.height), 1)),
            inside,
            outside,
            words,
            [b for b in boxes if b not in frames],
        )


def assert_laid_out(sheet: Sheet, size: tuple[float, float]) -> None:
    """One page of the given size; all text and rules inside the border, none overlapping,
    and the signature lines at the foot, so no empty bottom third."""
    assert sheet.pages == 1
    assert sheet.size == size
    assert sheet.outside_frame() == []
    assert sheet.overlapping() == []
    x0, top, x1, bottom = sheet.frame
    for rule in sheet.rules:
        assert x0 <= rule[0] and top <= rule[1] and rule[2] <= x1 and rule[3] <= bottom, rule
    signed = [w for w in sheet.words if w.text == "Secretary" or w.text == "Board"]
    assert len(signed) == 2
    height = sheet.size[1]
    assert all(w.bottom > height * 0.8 for w in signed), "the signatures are not at the foot"
    # The frame itself fills the page inside its 12 mm margins.
    assert sheet.outer[1] < 40 and sheet.outer[3] > height - 40


def add_member(cli: Cli, name: str, address: str, amount: str, ref: str) -> None:
    cli.ok(
        "pledges", "add", "--name", name, "--email", f"{ref.lower()}@example.org",
        "--address", address, "--amount", amount, "--status", "paid", "--reference", ref,
    )  # fmt: skip


def test_a_certificate_is_one_a4_page_inside_its_border_with_the_address_on_its_lines(
    sqlite_cli: Cli, campaign_dir: Path
) -> None:
    add_member(sqlite_cli, "Grace Hopper", "1 Test Street\nLondon\nN1 1AA", "200.00", "R1")
    add_member(sqlite_cli, "Alan Turing", "2 Test Road, Manchester, M1 1AA", "50.00", "R2")
    sqlite_cli.ok("shares", "issue")
    sqlite_cli.ok("certificates", "make")
    folder = campaign_dir / "var" / "certificates"

    grace = measure(folder / "certificate-000001.pdf")
    assert_laid_out(grace, A4_LANDSCAPE)
    lines = grace.lines()
    assert "Grace Hopper" in lines
    # Each line of the address on a line of its own, in order, under the name.
    at = lines.index("of 1 Test Street")
    assert lines[at : at + 3] == ["of 1 Test Street", "London", "N1 1AA"]
    assert lines.index("Grace Hopper") < at
    assert not any("Street London" in line for line in lines)

    alan = measure(folder / "certificate-000002.pdf")
    assert_laid_out(alan, A4_LANDSCAPE)
    assert "of 2 Test Road, Manchester, M1 1AA" in alan.lines()


def test_a_certificate_taken_back_still_fits_its_page(sqlite_cli: Cli, campaign_dir: Path) -> None:
    long_name = "Maximiliana " * 16 + "Quux"  # 196 characters
    address = "\n".join(f"Line {n}, " + "a long stretch of road " * 3 for n in range(9))
    add_member(sqlite_cli, long_name, address, "10000.00", "R1")
    sqlite_cli.ok("shares", "issue")
    sqlite_cli.ok("members", "withdraw", "1", "--waive-notice", "--shares", "150")
    sqlite_cli.ok("certificates", "make")
    folder = campaign_dir / "var" / "certificates"
    taken_back = measure(folder / "certificate-000001.pdf")
    assert_laid_out(taken_back, A4_LANDSCAPE)
    text = " ".join(taken_back.lines())
    assert "Cancelled on 10 December 2026: shares withdrawn" in text
    assert "Maximiliana Maximiliana" in text and "Quux" in text
    # Nine lines of address: the first five as written, the rest after commas.
    assert "Line 0, a long stretch" in text and "Line 8, a long stretch" in text
    assert_laid_out(measure(folder / "certificate-000002.pdf"), A4_LANDSCAPE)  # the balance


def test_names_are_text_never_markup(sqlite_cli: Cli, campaign_dir: Path) -> None:
    name = '<b>Bold</b> & <img src=x onerror="alert(1)"> Ltd'
    add_member(sqlite_cli, name, "<i>1</i> Road &amp; Co\n<br>Town", "50.00", "R1")
    sqlite_cli.ok("shares", "issue")
    sqlite_cli.ok("certificates", "make")
    sheet = measure(campaign_dir / "var" / "certificates" / "certificate-000001.pdf")
    assert_laid_out(sheet, A4_LANDSCAPE)
    lines = sheet.lines()
    assert name in lines
    assert "of <i>1</i> Road &amp; Co" in lines and "<br>Town" in lines


@pytest.mark.parametrize(
    ("country", "size"),
    [
        ('country = "US"', LETTER_LANDSCAPE),
        ("", LETTER_LANDSCAPE),  # no country: the dollar decides
        ('country = "EC"', A4_LANDSCAPE),  # Ecuador pays in dollars and prints on A4
    ],
)
def test_the_paper_is_the_co_ops_countrys(
    sqlite_cli: Cli, campaign_dir: Path, country: str, size: tuple[float, float]
) -> None:
    toml = campaign_dir / "campaign.toml"
    text = toml.read_text().replace('currency = "GBP"', 'currency = "USD"')
    assert 'country = "GB-ENG"' in text
    toml.write_text(text.replace('country = "GB-ENG"', country))
    add_member(sqlite_cli, "Grace Hopper", "1 Main St\nSpringfield, IL 62701", "200.00", "R1")
    sqlite_cli.ok("shares", "issue")
    sqlite_cli.ok("certificates", "make")
    sheet = measure(campaign_dir / "var" / "certificates" / "certificate-000001.pdf")
    assert_laid_out(sheet, size)
    assert "$50.00" in " ".join(sheet.lines())


def _certificate(name: str, address: str, taken_back: bool, balance: bool) -> Certificate:
    member = SimpleNamespace(number=987654, name=name, address=address)
    return Certificate(
        number=123456,
        entry_id=99999,
        member=member,
        shares=200,
        price=5000,
        currency="GBP",
        issued_on="2026-09-30",
        balance=balance,
        cancelled_on="2026-12-31" if taken_back else None,
        cancelled_by=100000 if taken_back else None,
        cancelled_kind="withdraw" if taken_back else None,
    )


# Letters, digits, accents, spaces and the punctuation people put in names and
# addresses, markup characters included; up to what the pledge service accepts.
TEXT = st.characters(
    codec="latin-1", categories=("L", "N", "P", "S", "Zs"), exclude_characters="\xa0\xad"
)
NAMES = st.text(TEXT, min_size=1, max_size=200).filter(lambda t: t.strip() != "")
ADDRESSES = st.lists(st.text(TEXT, min_size=1, max_size=120), min_size=1, max_size=10).map(
    lambda lines: "\n".join(lines)[:500]
)


@pytest.fixture(scope="module")
def renderer() -> Renderer:
    return Renderer([PACKAGE_TEMPLATES])


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=NAMES, address=ADDRESSES, taken_back=st.booleans(), balance=st.booleans())
def test_any_name_and_address_fit_inside_the_border(
    renderer: Renderer, name: str, address: str, taken_back: bool, balance: bool
) -> None:
    campaign = load_campaign(ROOT / "campaign.toml")
    spec = certificate_spec(campaign, _certificate(name, address, taken_back, balance))
    assert_laid_out(measure(renderer.pdf(spec)), A4_LANDSCAPE)


# -- refunds -------------------------------------------------------------------


def test_refund_list_bank_and_card(cli: Cli, tmp_path: Path) -> None:
    found(cli)  # Big paid 10,100.00 by transfer: 100.00 over the cap
    pay(cli, "Card Payer", "card@example.org", "75.00", "R5")
    ledger = open_ledger(cli.db_url)
    with ledger.write() as tx:  # as if Stripe took it
        (pid,) = tx.execute(sa.text("SELECT id FROM pledges WHERE reference='R5'")).one()
        tx.update(schema.pledges, {"id": pid}, source="online")
        tx.record("test.setup", f"pledge:{pid}", {"source": "online"})
    ledger.dispose()
    cli.ok("shares", "issue")
    items = json.loads(cli.ok("refunds", "list", "--json").output)
    by_method = {i["method"]: i for i in items}
    bank, card = by_method["bank"], by_method["card"]
    assert (bank["pledge_id"], bank["amount"], bank["transfer_reference"]) == (
        4,
        10000,
        "REFUND-P4",
    )
    assert bank["remainders"][0]["reason"] == "cap"
    assert card["amount"] == 2500 and "through Stripe" in card["action"]
    # No Stripe call yet, so no namespace: no key to show (bank lines never have one).
    assert card["remainders"][0]["idempotency_key"] is None
    assert bank["remainders"][0]["idempotency_key"] is None
    ledger = open_ledger(cli.db_url)
    namespace = ledger_keys(ledger).namespace  # what the first Stripe call makes
    ledger.dispose()
    card = next(
        i for i in json.loads(cli.ok("refunds", "list", "--json").output) if i["pledge_id"] == 5
    )
    line = card["remainders"][0]
    assert line["idempotency_key"] == f"{namespace}-pledge-5-remainder-{line['id']}-refund"
    bank_csv = tmp_path / "bank.csv"
    cli.ok("refunds", "list", "--csv", str(bank_csv))
    assert bank_csv.read_text().splitlines() == [
        "pledge_id,name,amount,currency,refund_reference,paid_with_reference,reasons",
        "4,Big Backer,100.00,GBP,REFUND-P4,R4,cap",
    ]
    human = cli.ok("refunds", "list").output
    assert "Bank transfers to make" in human and "REFUND-P4" in human
    assert "run `fundraiser refunds send`" in human


def test_recording_a_bank_refund(cli: Cli) -> None:
    found(cli)
    result = cli.ok("refunds", "mark-paid", "4", "--reference", "BANK-77")
    assert "Recorded a refund of £100.00 to Big Backer for pledge 4" in result.output
    assert json.loads(cli.ok("refunds", "list", "--json").output) == []
    ledger = open_ledger(cli.db_url)
    with ledger.read() as conn:
        pledge = conn.execute(sa.text("SELECT refunded_amount FROM pledges WHERE id=4")).one()
        rem = conn.execute(sa.text("SELECT status, refund_reference FROM remainders")).one()
        mail = conn.execute(sa.text("SELECT data FROM outbox WHERE kind='refund_sent'")).one()
    ledger.dispose()
    assert pledge.refunded_amount == 10000
    assert tuple(rem) == ("refunded", "BANK-77")
    assert json.loads(mail.data)["method"] == "bank"
    # The register still shows 200 shares: the refund was never share money.
    members = json.loads(cli.ok("members", "list", "--json").output)
    assert members[2]["shares"] == 200 and members[2]["amount_paid"] == 1000000
    again = cli("refunds", "mark-paid", "4", "--reference", "BANK-77")
    assert again.exit_code == 2 and "has no refund due" in again.output
    preview = cli.ok("mail", "preview", "4").output
    assert "Your refund from Hearth Social Co-operative: £100.00" in preview
    assert "most one member may hold" in preview


def test_card_refunds_wait_for_the_payments_module(sqlite_cli: Cli, campaign_dir: Path) -> None:
    pay(sqlite_cli, "Card Payer", "card@example.org", "75.00", "R5")
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.write() as tx:
        tx.update(schema.pledges, {"id": 1}, source="online")
        tx.record("test.setup", "pledge:1", {"source": "online"})
    ledger.dispose()
    sqlite_cli.ok("shares", "issue")
    ledger_file = campaign_dir / "var" / "ledger.sqlite"
    before = ledger_file.read_bytes()
    refused = sqlite_cli("refunds", "mark-paid", "1", "--reference", "X")
    assert refused.exit_code == 2 and "paid by card" in refused.output
    assert "1 card refund, £25.00" in sqlite_cli.ok("refunds", "send", "--dry-run").output
    # Without Stripe settings nothing is sent and nothing changes.
    result = sqlite_cli("refunds", "send", env={"STRIPE_SECRET_KEY": ""})
    assert result.exit_code in (1, 2) and "STRIPE_SECRET_KEY" in result.output
    assert ledger_file.read_bytes() == before


def test_a_withdrawal_takes_certificates_back_and_issues_a_balance(
    cli: Cli, campaign_dir: Path
) -> None:
    found(cli)  # members 1-3; member 3 holds 200 shares on certificate 3
    cli.ok("certificates", "make")
    folder = campaign_dir / "var" / "certificates"
    unrelated = {k: v for k, v in hashes(folder).items() if k != "certificate-000003.pdf"}
    part = json.loads(
        cli.ok("members", "withdraw", "3", "--waive-notice", "--shares", "150", "--json").output
    )
    assert (part["holding_after"], part["balance_certificate"]) == (50, 4)
    made = json.loads(cli.ok("certificates", "make", "--json").output)
    assert made["written"] == ["certificate-000003.pdf", "certificate-000004.pdf"]
    taken_back = " ".join(text_of(folder / "certificate-000003.pdf").split())
    assert "Cancelled on 10 December 2026: shares withdrawn" in taken_back
    assert "register entry 4" in taken_back and "no longer represents a holding" in taken_back
    balance = text_of(folder / "certificate-000004.pdf")
    for needle in ("Certificate No. 4", "balance certificate", "50 fully paid shares", "£2,500.00"):
        assert needle in balance, needle
    assert "Cancelled" not in balance
    for name in ("certificate-000003.pdf", "certificate-000004.pdf"):
        assert len(pypdf.PdfReader(folder / name).pages) == 1
    assert {k: v for k, v in hashes(folder).items() if k in unrelated} == unrelated

    documents = Documents(load_campaign(campaign_dir / "campaign.toml"))
    ledger = open_ledger(cli.db_url)
    with ledger.read() as conn:  # what a mail to the member would attach: what they hold
        assert documents.filenames(conn, 3) == ["certificate-000004.pdf"]
    rest = json.loads(
        cli.ok("members", "withdraw", "3", "--waive-notice", "--shares", "50", "--json").output
    )
    assert rest["ceased"] and rest["balance_certificate"] is None
    again = json.loads(cli.ok("certificates", "make", "--json").output)
    assert again["written"] == ["certificate-000004.pdf"]
    assert "Cancelled on 10 December 2026" in text_of(folder / "certificate-000004.pdf")
    with ledger.read() as conn:
        assert documents.filenames(conn, 3) == []
    ledger.dispose()


def test_certificates_are_readable_by_their_owner_only(sqlite_cli: Cli, campaign_dir: Path) -> None:
    """Names, addresses and holdings: 0600 files in a 0700 folder (issue 13, item 16)."""
    found(sqlite_cli)
    old = os.umask(0o022)  # the usual umask would make them world-readable
    try:
        sqlite_cli.ok("certificates", "make")
        folder = campaign_dir / "var" / "certificates"
        assert mode(folder) == 0o700
        made = sorted(folder.iterdir())
        assert [p.name for p in made if p.suffix == ".pdf"] == [
            f"certificate-00000{n}.pdf" for n in (1, 2, 3)
        ]
        assert {p.name: mode(p) for p in made} == {p.name: 0o600 for p in made}
        first = folder / "certificate-000001.pdf"
        first.chmod(0o644)  # as an older kit left it
        sqlite_cli.ok("certificates", "make")  # unchanged, yet made private
        assert mode(first) == 0o600
    finally:
        os.umask(old)
