"""Bank refunds out: the payer's account, a payment file, and the statement that confirms it."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import sepaxml
import sqlalchemy as sa
import xmlschema

from fundraiser.ledger import open_ledger, schema
from tests.bankfixtures import Tx, camt053, mt940, use_eur
from tests.conftest import Cli
from tests.spreadsheet import mode

PAIN_XSD = Path(sepaxml.__file__).parent / "schemas" / "pain.001.001.03.xsd"


def _overpaid(
    cli: Cli, tmp_path: Path, payments: list[tuple[str, str, str]], maker=camt053
) -> None:  # type: ignore[no-untyped-def]
    """Pledges of 50.00 paid with more, so each leaves a remainder to refund."""
    txs = []
    for n, (name, paid, mark) in enumerate(payments, start=1):
        cli.ok(
            "pledges",
            "add",
            "--name",
            name,
            "--email",
            f"p{n}@ex.org",
            "--address",
            "1 Road",
            "--amount",
            "50.00",
            "--round",
            "crowd",
        )
        if mark == "cancel":
            cli.ok("pledges", "cancel", str(n))
        txs.append(Tx(f"IN{n}", paid, f"PLEDGE-{n}", name))
    cli.ok("bank", "import", str(maker(tmp_path / "in.stmt", txs)))


def test_sepa_refunds_go_out_in_a_valid_pain001_and_a_statement_confirms_them(
    cli: Cli, tmp_path: Path
) -> None:
    use_eur(cli.campaign)
    _overpaid(
        cli,
        tmp_path,
        [
            ("José Núñez", "80.00", "cancel"),
            ("=cmd|' /C calc'!A0", "60.00", ""),
            ("Nora None", "55.00", ""),
        ],
    )
    bad = cli("refunds", "set-account", "1", "--iban", "DE89 3704 0044 0532 0130 01")
    assert bad.exit_code == 2 and "not a valid IBAN" in bad.output and "0130 01" not in bad.output
    cli.ok("refunds", "set-account", "1", "--iban", "FR14 2004 1010 0505 0001 3M02 606")
    cli.ok(
        "refunds",
        "set-account",
        "2",
        "--iban",
        "DE89370400440532013000",
        "--holder",
        "<b>Evil</b> & Co",
    )
    out = tmp_path / "refunds.xml"
    result = cli.ok("refunds", "send", "--bank", "--out", str(out))
    assert "Skipped pledge 3 (€5.00): gave no account" in result.output
    assert "Wrote 2 refunds, €90.00 in all" in result.output, result.output

    assert mode(out) == 0o600  # names and accounts: the owner's only
    xmlschema.XMLSchema(str(PAIN_XSD)).validate(str(out))  # raises on any schema error
    doc = xmlschema.XMLSchema(str(PAIN_XSD)).to_dict(str(out))
    info = doc["CstmrCdtTrfInitn"]
    assert info["GrpHdr"]["MsgId"] == "REFUNDS-20261210-1"
    payments = info["PmtInf"][0]["CdtTrfTxInf"]
    assert [
        (p["PmtId"]["EndToEndId"], p["Amt"]["InstdAmt"]["$"], p["Cdtr"]["Nm"]) for p in payments
    ] == [
        ("REFUND-P1", 80.0, "Jose Nunez"),
        ("REFUND-P2", 10.0, "b Evil /b Co"),
    ]
    assert info["PmtInf"][0]["DbtrAcct"]["Id"]["IBAN"] == "DE89370400440532013000"

    # Sent: not in the next file, still owed until the bank shows it leaving.
    again = cli.ok("refunds", "send", "--bank", "--out", str(tmp_path / "again.xml"))
    assert "No bank refund can go in a payment file now." in again.output
    listed = {
        r["pledge_id"]: r["state"] for r in json.loads(cli.ok("refunds", "list", "--json").output)
    }
    assert listed == {1: "sent", 2: "sent", 3: "due"}
    forget = cli("members", "forget", "p1@ex.org")
    assert forget.exit_code != 0 and "refund is still owed" in forget.output

    # A lost file is written again with the same message id (the bank pays it once).
    cli.ok(
        "refunds",
        "send",
        "--bank",
        "--out",
        str(tmp_path / "lost.xml"),
        "--batch",
        "REFUNDS-20261210-1",
    )
    assert "<MsgId>REFUNDS-20261210-1</MsgId>" in (tmp_path / "lost.xml").read_text()

    statement = camt053(
        tmp_path / "out.xml",
        [
            Tx("OUT1", "-80.00", "REFUND-P1 refund", "Jose Nunez", day="2027-03-04"),
            Tx("OUT2", "-9.00", "REFUND-P2 refund", "Evil", day="2027-03-04"),
        ],
        opening="2000.00",
    )
    done = json.loads(cli.ok("bank", "import", str(statement), "--notify", "--json").output)
    assert done["counts"]["refund"] == 1
    wrong = next(p for p in done["placed"] if p["bank_id"] == "OUT2")
    assert wrong["outcome"] is None and "the amounts differ" in wrong["note"]
    listed = {
        r["pledge_id"]: r["state"] for r in json.loads(cli.ok("refunds", "list", "--json").output)
    }
    assert listed == {2: "sent", 3: "due"}
    mail = json.loads(cli.ok("mail", "list", "--json").output)
    assert ("refund_sent", "p1@ex.org") in {(m["kind"], m["to_email"]) for m in mail}

    # Refunded now: the person can be forgotten, and their account goes with them.
    cli.ok("members", "forget", "p1@ex.org")
    ledger = open_ledger(cli.db_url)
    with ledger.read() as conn:
        kept = conn.execute(sa.select(schema.refund_accounts.c.pledge_id)).scalars().all()
        journal = " ".join(conn.execute(sa.select(schema.journal.c.data)).scalars())
    ledger.dispose()
    assert kept == [2]
    # The account's parts that hex digests cannot hold by chance (a bare "2004" can).
    for part in ("FR14", "FR1420041010", "2004 1010", "3M02606", "3m02606", "Evil"):
        assert part not in journal, part


def test_gbp_refunds_go_out_as_a_uk_bulk_payment_csv(cli: Cli, tmp_path: Path) -> None:
    _overpaid(
        cli, tmp_path, [("Ann Lee", "70.00", ""), ("-Bob =SUM(A1)", "51.50", "")], maker=mt940
    )
    cli.ok("refunds", "set-account", "1", "--sort-code", "08-92-99", "--account-number", "65432100")
    cli.ok(
        "refunds",
        "set-account",
        "2",
        "--iban",
        "GB33BUKB20201555555555",
        "--holder",
        "-Bob =SUM(A1)",
    )
    bad = cli("refunds", "set-account", "1", "--sort-code", "0892", "--account-number", "1")
    assert bad.exit_code == 2 and "is not a sort code" in bad.output
    out = tmp_path / "refunds.csv"
    cli.ok("refunds", "send", "--bank", "--out", str(out))
    assert mode(out) == 0o600
    rows = list(csv.reader(io.StringIO(out.read_text())))
    assert rows == [
        ["Sort code", "Account number", "Account name", "Amount", "Reference"],
        ["089299", "65432100", "ANN LEE", "20.00", "REFUND-P1"],
        ["202015", "55555555", "BOB SUM A1", "1.50", "REFUND-P2"],
    ]


@pytest.mark.tampers
def test_a_card_pledge_needs_no_refund_account(cli: Cli) -> None:
    ledger = open_ledger(cli.db_url)
    with ledger.engine.begin() as conn:  # behind the journal's back: a state to start from
        conn.execute(
            schema.pledges.insert().values(
                id=1,
                created_at="x",
                updated_at="x",
                person_key="k",
                name="N",
                email="e@x.org",
                address="a",
                round="crowd",
                amount=5000,
                currency="GBP",
                status="paid",
                source="online",
                paid_amount=5000,
                stripe_intent="pi_1",
            )
        )
    ledger.dispose()
    result = cli(
        "refunds", "set-account", "1", "--sort-code", "089299", "--account-number", "65432100"
    )
    assert result.exit_code == 2 and "paid by card" in result.output


@pytest.mark.parametrize("currency", ["USD"])
def test_a_currency_without_a_payment_file_scheme_is_refused(cli: Cli, currency: str) -> None:
    cli.campaign.write_text(
        cli.campaign.read_text().replace('currency = "GBP"', f'currency = "{currency}"')
    )
    result = cli("refunds", "send", "--bank", "--out", "x.csv")
    assert result.exit_code == 2 and "EUR (SEPA) and GBP (UK bulk payments)" in result.output
