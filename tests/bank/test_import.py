"""`fundraiser bank import`: statements in every format, matched to pledges, once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser.bank import receipts
from fundraiser.bankfiles import aside
from fundraiser.ledger import open_ledger, schema
from tests.bankfixtures import Tx, camt053, mt940, ofx, use_eur
from tests.conftest import Cli


def _add(cli: Cli, name: str, amount: str, email: str | None = None) -> int:
    out = cli.ok(
        "pledges",
        "add",
        "--name",
        name,
        "--email",
        email or f"{name.split()[0].lower()}@ex.org",
        "--address",
        "1 Road",
        "--amount",
        amount,
        "--round",
        "crowd",
    ).output
    return int(out.split("pledge ")[1].split(":")[0])


def _pledges(cli: Cli) -> dict[int, dict[str, object]]:
    return {p["id"]: p for p in json.loads(cli.ok("pledges", "list", "--json").output)}


def _snapshot(cli: Cli) -> tuple[object, ...]:
    ledger = open_ledger(cli.db_url)
    try:
        with ledger.read() as conn:
            counts = tuple(
                conn.execute(sa.select(sa.func.count()).select_from(t)).scalar()
                for t in (schema.journal, schema.bank_transactions, schema.remainders)
            )
            statuses = tuple(
                conn.execute(
                    sa.select(schema.pledges.c.status, schema.pledges.c.paid_amount).order_by(
                        schema.pledges.c.id
                    )
                )
            )
        return counts, statuses, ledger.head()
    finally:
        ledger.dispose()


@pytest.fixture
def eur(cli: Cli) -> Cli:
    use_eur(cli.campaign)
    return cli


def _statement(folder: Path) -> Path:
    return camt053(
        folder / "statement.xml",
        [
            Tx("E1", "500.00", "Shares PLEDGE-1 thank you", "Ann Lee"),
            Tx("E2", "100.00", "pledge 2", "Bo Kim"),  # part of 500
            Tx("E3", "600.00", "P L E D G E 3", "Cy Dee"),  # 100 over
            Tx("E1", "500.00", "Shares PLEDGE-1 thank you", "Ann Lee"),  # the same line twice
            Tx("E4", "250.00", "for my shares", "Di Fox"),  # no reference: suggested
            Tx("E5", "-80.00", "Office rent March", "Landlord Ltd"),  # not ours
            Tx("E6", "75.00", "PLEDGE-99", "Nobody"),  # no such pledge
        ],
    )


def test_a_camt053_statement_pays_matched_pledges_once_and_waits_on_the_rest(
    eur: Cli, tmp_path: Path
) -> None:
    for name, amount in (
        ("Ann Lee", "500.00"),
        ("Bo Kim", "500.00"),
        ("Cy Dee", "500.00"),
        ("Di Fox", "250.00"),
    ):
        _add(eur, name, amount)
    statement = _statement(tmp_path)
    before = _snapshot(eur)
    dry = json.loads(eur.ok("bank", "import", str(statement), "--dry-run", "--json").output)
    assert dry["dry_run"] and dry["counts"]["paid"] == 2 and dry["duplicates"] == 1
    assert _snapshot(eur) == before  # a dry run changes nothing, journal included

    done = json.loads(eur.ok("bank", "import", str(statement), "--notify", "--json").output)
    assert done["counts"] == {"paid": 2, "part": 1, "unwanted": 0, "unmatched": 2, "refund": 0}
    assert done["not_ours"] == 1 and done["mail_queued"] == 2
    unmatched = {p["bank_id"]: p for p in done["placed"] if p["outcome"] == "unmatched"}
    assert unmatched["E4"]["suggestions"] == [
        {"pledge_id": 4, "why": "the amount owed and the payer's name match"}
    ]
    assert "pledge 99, which does not exist" in unmatched["E6"]["note"]
    pledges = _pledges(eur)
    assert (pledges[1]["status"], pledges[1]["paid"]) == ("paid", 50000)
    # Under-paid: still pending, the part received shown, waiting for the balance.
    assert (pledges[2]["status"], pledges[2]["paid"]) == ("pending", 10000)
    assert "€100.00 of €500.00" in str(pledges[2]["status_reason"])
    assert (pledges[3]["status"], pledges[3]["paid"]) == ("paid", 50000)
    assert pledges[4]["status"] == "pending"
    refunds = json.loads(eur.ok("refunds", "list", "--json").output)
    assert [(r["pledge_id"], r["amount"], r["remainders"][0]["reason"]) for r in refunds] == [
        (3, 10000, "overpaid")
    ]
    mail = json.loads(eur.ok("mail", "list", "--json").output)
    assert sorted((m["kind"], m["to_email"]) for m in mail) == [
        ("payment_received", "ann@ex.org"),
        ("payment_received", "cy@ex.org"),
    ]

    # The same statement again: nothing changes, not even the journal.
    after = _snapshot(eur)
    again = json.loads(eur.ok("bank", "import", str(statement), "--notify", "--json").output)
    assert again["already_imported"] == 5 and again["not_ours"] == 1 and again["placed"] == []
    assert _snapshot(eur) == after

    # The organizer accepts the suggestion later; the rest of the balance arrives.
    eur.ok("bank", "import", str(statement), "--accept", "suggested")
    later = camt053(
        tmp_path / "later.xml", [Tx("E7", "400.00", "PLEDGE-2 rest", "Bo Kim", day="2027-03-03")]
    )
    eur.ok("bank", "import", str(later))
    pledges = _pledges(eur)
    assert (pledges[4]["status"], pledges[2]["status"], pledges[2]["paid"]) == (
        "paid",
        "paid",
        50000,
    )
    assert eur.ok("ledger", "verify").output.startswith("OK")


@pytest.mark.parametrize(("by_id", "in_list"), [(2_000, 500), (2_000, 1), (1, 500)])
def test_receipts_and_refunds_go_to_the_backers_they_are_for(
    eur: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, by_id: int, in_list: int
) -> None:
    # A backer's key, name and email are read for the pledges that need them: by
    # id for a few (in IN lists of `in_list`), with the whole table for many
    # (by_id=1 makes two "many").
    monkeypatch.setattr(receipts, "_BY_ID", by_id)
    monkeypatch.setattr(receipts, "_IN_LIST", in_list)
    for name, amount in (("Ann Lee", "500.00"), ("Bo Kim", "500.00"), ("Cy Dee", "500.00")):
        _add(eur, name, amount)
    done = json.loads(
        eur.ok("bank", "import", str(_statement(tmp_path)), "--notify", "--json").output
    )
    assert done["counts"]["paid"] == 2 and done["mail_queued"] == 2
    mail = json.loads(eur.ok("mail", "list", "--json").output)
    to = sorted(
        line
        for m in mail
        for line in eur.ok("mail", "preview", str(m["id"])).output.splitlines()
        if line.startswith("To: ")
    )
    assert len(to) == 2
    assert "Ann Lee" in to[0] and "ann@ex.org" in to[0]
    assert "Cy Dee" in to[1] and "cy@ex.org" in to[1]
    ledger = open_ledger(eur.db_url)
    try:
        with ledger.read() as conn:
            query = sa.select(schema.pledges.c.id, schema.pledges.c.person_key)
            keys = dict(conn.execute(query).all())
            owed = list(
                conn.execute(
                    sa.select(schema.remainders.c.pledge_id, schema.remainders.c.person_key)
                )
            )
    finally:
        ledger.dispose()
    assert owed == [(3, keys[3])] and len(set(keys.values())) == 3


def test_overlapping_statements_pay_only_what_is_new(eur: Cli, tmp_path: Path) -> None:
    for name in ("Ann Lee", "Bo Kim", "Cy Dee"):
        _add(eur, name, "50.00")
    first = camt053(
        tmp_path / "a.xml", [Tx("X1", "50.00", "PLEDGE-1"), Tx("X2", "50.00", "PLEDGE-2")]
    )
    second = camt053(
        tmp_path / "b.xml", [Tx("X2", "50.00", "PLEDGE-2"), Tx("X3", "50.00", "PLEDGE-3")]
    )
    eur.ok("bank", "import", str(first))
    out = json.loads(eur.ok("bank", "import", str(second), "--json").output)
    assert out["already_imported"] == 1 and out["counts"]["paid"] == 1
    assert [p["status"] for p in _pledges(eur).values()] == ["paid"] * 3
    assert eur.ok("refunds", "list").output.strip() == "No refunds due."


def test_a_transfer_for_a_pledge_already_paid_is_refunded_whole(eur: Cli, tmp_path: Path) -> None:
    _add(eur, "Ann Lee", "50.00")
    eur.ok("pledges", "mark-paid", "1")
    statement = camt053(tmp_path / "s.xml", [Tx("Y1", "50.00", "PLEDGE-1")])
    out = json.loads(eur.ok("bank", "import", str(statement), "--json").output)
    assert out["counts"]["unwanted"] == 1
    refunds = json.loads(eur.ok("refunds", "list", "--json").output)
    assert [(r["amount"], r["remainders"][0]["reason"]) for r in refunds] == [(5000, "unwanted")]


def test_the_journal_holds_no_payer_name_account_or_reference_text(
    eur: Cli, tmp_path: Path
) -> None:
    _add(eur, "Ann Lee", "500.00")
    statement = camt053(
        tmp_path / "s.xml",
        [
            Tx("Z1", "500.00", "PLEDGE-1 Zebulon Quux", "Zebulon Quux"),
            Tx("Z2", "9.00", "gift from Xavier Yount", "Xavier Yount"),
        ],
    )
    eur.ok("bank", "import", str(statement))
    ledger = open_ledger(eur.db_url)
    with ledger.read() as conn:
        journal = " ".join(conn.execute(sa.select(schema.journal.c.data)).scalars())
        kept = (
            conn.execute(
                sa.select(schema.bank_transactions.c.remittance).order_by(
                    schema.bank_transactions.c.id
                )
            )
            .scalars()
            .all()
        )
    ledger.dispose()
    for secret in ("Zebulon", "Xavier", "DE89", "gift"):
        assert secret not in journal
    # Only an unmatched credit keeps its reference text, so the organizer can place it.
    assert kept == [None, "gift from Xavier Yount"]


def test_a_big_statement_read_aside_lists_what_to_look_at_and_every_line_on_request(
    eur: Cli, tmp_path: Path
) -> None:
    for name, amount in (("Ann Lee", "500.00"), ("Bo Kim", "500.00"), ("Cy Dee", "250.00")):
        _add(eur, name, amount)
    spending = [Tx(f"OUT-{n}", "-1.00", f"Card payment {n}", "Shop") for n in range(3300)]
    statement = camt053(
        tmp_path / "year.xml",
        [
            Tx("E1", "500.00", "PLEDGE-1", "Ann Lee"),
            Tx("E2", "100.00", "pledge 2", "Bo Kim"),
            *spending,
            Tx("E3", "250.00", "for my shares", "Cy Dee"),
        ],
        opening="5000.00",
    )
    assert statement.stat().st_size > aside.ASIDE_FROM  # read in a child process
    dry = json.loads(eur.ok("bank", "import", str(statement), "--dry-run", "--json").output)
    assert dry["counts"] == {"paid": 1, "part": 1, "unwanted": 0, "unmatched": 1, "refund": 0}
    assert (dry["lines"], dry["not_ours"], dry["listed"]) == (3303, 3300, "notable")
    # The plain payment is counted and summed, and not listed: the lines to look at are.
    assert [(p["bank_id"], p["outcome"]) for p in dry["placed"]] == [
        ("E2", "part"),
        ("E3", "unmatched"),
    ]
    assert dry["placed"][1]["suggestions"] == [
        {"pledge_id": 3, "why": "the amount owed and the payer's name match"}
    ]
    assert (dry["received"], dry["applied"]) == (85000, 60000)
    done = json.loads(eur.ok("bank", "import", str(statement), "--json", "--every-line").output)
    assert done["listed"] == "every line"
    assert [(p["bank_id"], p["outcome"], p["pledge_id"]) for p in done["placed"]] == [
        ("E1", "paid", 1),
        ("E2", "part", 2),
        ("E3", "unmatched", None),
    ]
    pledges = _pledges(eur)
    assert [(p["status"], p["paid"]) for p in pledges.values()] == [
        ("paid", 50000),
        ("pending", 10000),
        ("pending", 0),
    ]
    again = json.loads(eur.ok("bank", "import", str(statement), "--json").output)
    assert again["already_imported"] == 3 and again["placed"] == []


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("other-currency-line", "Ntry[2]/NtryDtls/TxDtls: is in USD, the campaign in EUR"),
        ("other-currency-statement", "the statement is in GBP and the campaign in EUR"),
        ("truncated", "line "),
        ("entities", "declares a DTD or entities"),
        ("not-camt", "not a camt.053 statement"),
    ],
)
def test_a_bad_camt053_is_refused_naming_where_and_the_fix_and_changes_nothing(
    eur: Cli, tmp_path: Path, kind: str, expected: str
) -> None:
    _add(eur, "Ann Lee", "500.00")
    path = tmp_path / "bad.xml"
    if kind == "other-currency-line":
        camt053(path, [Tx("A", "500.00", "PLEDGE-1"), Tx("B", "20.00", "PLEDGE-1", currency="USD")])
    elif kind == "other-currency-statement":
        camt053(path, [Tx("A", "500.00", "PLEDGE-1")], currency="GBP")
    elif kind == "truncated":
        full = camt053(path, [Tx("A", "500.00", "PLEDGE-1")]).read_text()
        path.write_text(full[: len(full) // 2])
    elif kind == "entities":
        path.write_text(
            '<?xml version="1.0"?>\n'
            '<!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;">]>\n'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02">&b;</Document>\n'
        )
    else:
        path.write_text(
            '<?xml version="1.0"?>'
            '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"/>'
        )
    before = _snapshot(eur)
    result = eur("bank", "import", str(path))
    assert result.exit_code == 2, result.output
    assert "bad.xml" in result.output and expected in result.output
    assert "Traceback" not in result.output
    assert _snapshot(eur) == before


def test_an_mt940_statement_is_matched_and_a_bad_balance_line_refused(
    cli: Cli, tmp_path: Path
) -> None:
    _add(cli, "Ann Lee", "50.00")
    _add(cli, "Bo Kim", "50.00")
    good = mt940(
        tmp_path / "s.sta",
        [Tx("M1", "50.00", "PLEDGE-1"), Tx("M2", "20.00", "Pledge2"), Tx("M3", "-5.00", "fees")],
    )
    out = json.loads(cli.ok("bank", "import", str(good), "--json").output)
    assert (out["format"], out["counts"]["paid"], out["counts"]["part"]) == ("mt940", 1, 1)

    broken = tmp_path / "broken.sta"
    broken.write_text(good.read_text().replace(":60F:C270228GBP1000,00", ":60F:C2702GBP1000,00"))
    before = _snapshot(cli)
    result = cli("bank", "import", str(broken))
    assert result.exit_code == 2 and "broken.sta: line 4" in result.output
    assert "balance line" in result.output
    short = tmp_path / "short.sta"
    short.write_text(good.read_text().replace(":62F:C270302GBP1065,00", ":62F:C270302GBP1165,00"))
    result = cli("bank", "import", str(short))
    assert result.exit_code == 2 and "is not the closing balance" in result.output
    assert _snapshot(cli) == before


def test_an_ofx_statement_is_matched_and_other_currency_or_truncated_refused(
    cli: Cli, tmp_path: Path
) -> None:
    _add(cli, "Ann Lee", "50.00")
    good = ofx(
        tmp_path / "s.ofx", [Tx("F1", "50.00", "PLEDGE-1", "A LEE"), Tx("F2", "-3.00", "fee")]
    )
    out = json.loads(cli.ok("bank", "import", str(good), "--json").output)
    assert (out["format"], out["counts"]["paid"]) == ("ofx", 1)
    before = _snapshot(cli)
    other = ofx(tmp_path / "usd.ofx", [Tx("F3", "10.00", "PLEDGE-1", currency="USD")])
    result = cli("bank", "import", str(other))
    assert result.exit_code == 2 and "is in USD, the campaign in GBP" in result.output
    cut = tmp_path / "cut.ofx"
    cut.write_text(good.read_text()[:-60])
    result = cli("bank", "import", str(cut))
    assert result.exit_code == 2 and "cut.ofx" in result.output and "</OFX>" in result.output
    assert _snapshot(cli) == before


CSV_MAPPING = """
[bank.csv]
date = "Date"
amount = "Amount"
text = ["Reference", "Details"]
name = "Counterparty"
date_format = "%d/%m/%Y"
decimal = ","
delimiter = ";"
"""


def test_a_csv_statement_is_read_by_the_mapping_in_campaign_toml(cli: Cli, tmp_path: Path) -> None:
    cli.campaign.write_text(
        cli.campaign.read_text().replace("\n[[tiers]]", CSV_MAPPING + "\n[[tiers]]", 1)
    )
    _add(cli, "Ann Lee", "1250.00")
    _add(cli, "Bo Kim", "50.00")
    path = tmp_path / "export.csv"
    path.write_text(
        "Date;Amount;Counterparty;Reference;Details\n"
        "01/03/2027;1.250,00;ANN LEE;pledge-1;\n"
        '01/03/2027;50,00;B KIM;=HYPERLINK("x");Pledge 2\n'
        "02/03/2027;-12,50;Stationers;invoice 7;\n",
        encoding="utf-8",
    )
    out = json.loads(cli.ok("bank", "import", str(path), "--json").output)
    assert out["counts"]["paid"] == 2 and out["not_ours"] == 1
    again = json.loads(cli.ok("bank", "import", str(path), "--json").output)
    assert again["already_imported"] == 2 and again["not_ours"] == 1

    wrong = tmp_path / "renamed.csv"
    wrong.write_text("Date;Amount;Counterparty;References;Details\n01/03/2027;1,00;X;PLEDGE-1;\n")
    result = cli("bank", "import", str(wrong))
    assert result.exit_code == 2
    assert "renamed.csv: line 1 (the header): has no column 'Reference'" in result.output
    assert "Did you mean 'References'?" in result.output


def test_a_csv_without_a_mapping_or_in_another_encoding_is_refused(
    cli: Cli, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_bytes("Date,Amount,Reference\n01/03/2027,50.00,Caf\xe9 PLEDGE-1\n".encode("latin-1"))
    result = cli("bank", "import", str(path))
    assert result.exit_code == 2 and "no [bank.csv]" in result.output
    cli.campaign.write_text(
        cli.campaign.read_text().replace(
            "\n[[tiers]]",
            '\n[bank.csv]\ndate = "Date"\namount = "Amount"\ntext = "Reference"\n'
            'date_format = "%d/%m/%Y"\n\n[[tiers]]',
            1,
        )
    )
    result = cli("bank", "import", str(path))
    assert result.exit_code == 2 and "export.csv: line 2: is not utf-8 text" in result.output
    assert "--encoding cp1252" in result.output
    _add(cli, "Ann Lee", "50.00")
    out = json.loads(cli.ok("bank", "import", str(path), "--encoding", "latin-1", "--json").output)
    assert out["counts"]["paid"] == 1


def test_an_unknown_format_is_refused_with_the_formats_named(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "statement.pdf"
    path.write_bytes(b"%PDF-1.7 not a statement")
    result = cli("bank", "import", str(path))
    assert result.exit_code == 2
    assert "statement.pdf: is not a statement format this tool reads" in result.output
    assert "camt053, mt940, ofx, csv" in result.output
