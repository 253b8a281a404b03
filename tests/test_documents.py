"""Certificates and statements as real PDFs, read back; the refund list."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pypdf
import sqlalchemy as sa

from fundraiser.config import load_campaign
from fundraiser.documents.certificates import Documents
from fundraiser.ledger import open_ledger
from fundraiser.stripekeys import ledger_keys
from tests.conftest import Cli
from tests.smtp_fixtures import found, pay


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
    sqlite_cli.ok("members", "withdraw", "3", "--shares", "50")
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
    sqlite_cli.ok("members", "withdraw", "3", "--shares", "150")
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


# -- refunds -------------------------------------------------------------------


def test_refund_list_bank_and_card(cli: Cli, tmp_path: Path) -> None:
    found(cli)  # Big paid 10,100.00 by transfer: 100.00 over the cap
    pay(cli, "Card Payer", "card@example.org", "75.00", "R5")
    ledger = open_ledger(cli.db_url)
    with ledger.write() as tx:  # as if Stripe took it
        tx.execute(sa.text("UPDATE pledges SET source='online' WHERE reference='R5'"))
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
        tx.execute(sa.text("UPDATE pledges SET source='online' WHERE id=1"))
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
    part = json.loads(cli.ok("members", "withdraw", "3", "--shares", "150", "--json").output)
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
    rest = json.loads(cli.ok("members", "withdraw", "3", "--shares", "50", "--json").output)
    assert rest["ceased"] and rest["balance_certificate"] is None
    again = json.loads(cli.ok("certificates", "make", "--json").output)
    assert again["written"] == ["certificate-000004.pdf"]
    assert "Cancelled on 10 December 2026" in text_of(folder / "certificate-000004.pdf")
    with ledger.read() as conn:
        assert documents.filenames(conn, 3) == []
    ledger.dispose()
