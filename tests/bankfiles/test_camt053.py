"""camt.053 read entry by entry: every field where the ISO structure puts it, amounts exact."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fundraiser.bank.statement import StatementError
from fundraiser.bankfiles import camt053

NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.08"


def _document(entries: str, currency: str = "EUR") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><Document xmlns="{NS}"><BkToCstmrStmt><Stmt>'
        f"<Acct><Id><IBAN>FR7630006000011234567890189</IBAN></Id><Ccy>{currency}</Ccy></Acct>"
        f"{entries}</Stmt></BkToCstmrStmt></Document>"
    ).encode()


BATCH = """
<Ntry><NtryRef>N-1</NtryRef><Amt Ccy="EUR">150.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>
  <Sts><Cd>BOOK</Cd></Sts><BookgDt><DtTm>2027-03-01T09:30:00</DtTm></BookgDt>
  <AddtlNtryInf>SEPA batch</AddtlNtryInf>
  <NtryDtls>
    <TxDtls>
      <Refs><TxId>T-1</TxId><EndToEndId>E2E 1</EndToEndId></Refs>
      <AmtDtls><TxAmt><Amt Ccy="EUR">100</Amt></TxAmt></AmtDtls>
      <RltdPties><Dbtr><Pty><Nm>Ann Lee</Nm></Pty></Dbtr><Cdtr><Nm>The co-op</Nm></Cdtr></RltdPties>
      <RmtInf><Ustrd>PLEDGE-1</Ustrd><Ustrd> </Ustrd><Ustrd>shares</Ustrd></RmtInf>
    </TxDtls>
    <TxDtls>
      <Amt Ccy="EUR">50.5</Amt>
      <RltdPties><Dbtr><Nm>Bo Kim</Nm></Dbtr></RltdPties>
      <RmtInf><Strd><CdtrRefInf><Ref>RF18PLEDGE2</Ref><Ref>second</Ref></CdtrRefInf></Strd></RmtInf>
      <AddtlTxInf>from savings</AddtlTxInf>
    </TxDtls>
  </NtryDtls>
</Ntry>
<Ntry><Amt Ccy="EUR">12.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
  <ValDt><Dt>2027-03-02</Dt></ValDt><AcctSvcrRef>A-2</AcctSvcrRef>
  <AddtlNtryInf>Bank fee   March</AddtlNtryInf>
</Ntry>
<Ntry><Amt Ccy="EUR">9.00</Amt><CdtDbtInd>CRDT</CdtDbtInd><Sts><Cd>PDNG</Cd></Sts>
  <BookgDt><Dt>2027-03-03</Dt></BookgDt></Ntry>
<Ntry><Amt Ccy="EUR">30.00</Amt><CdtDbtInd>DBIT</CdtDbtInd><Sts>BOOK</Sts>
  <BookgDt><Dt>2027-03-03</Dt></BookgDt><AcctSvcrRef>A-4</AcctSvcrRef>
  <NtryDtls><TxDtls><Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
    <RltdPties><Dbtr><Nm>Not this one</Nm></Dbtr><Cdtr><Nm>Stationers</Nm></Cdtr></RltdPties>
    <RmtInf><Ustrd>REFUND-P7</Ustrd></RmtInf></TxDtls></NtryDtls>
</Ntry>
"""


def test_each_transaction_of_a_batch_and_each_plain_entry_is_one_line() -> None:
    statement = camt053.read("s.xml", _document(BATCH))
    got = [
        (x.where, x.bank_id, x.booked_on, x.amount, x.currency, x.text, x.payer)
        for x in statement.lines
    ]
    assert got == [
        (
            "Stmt[1]/Ntry[1]/NtryDtls/TxDtls[1]",
            "T-1",
            "2027-03-01",
            10000,
            "EUR",
            "PLEDGE-1 shares E2E 1 SEPA batch",
            "Ann Lee",
        ),
        (
            "Stmt[1]/Ntry[1]/NtryDtls/TxDtls[2]",
            "N-1/2",
            "2027-03-01",
            5050,
            "EUR",
            "RF18PLEDGE2 second from savings SEPA batch",
            "Bo Kim",
        ),
        ("Stmt[1]/Ntry[2]", "A-2", "2027-03-02", -1200, "EUR", "Bank fee March", ""),
        (
            "Stmt[1]/Ntry[4]/NtryDtls/TxDtls",
            "A-4",
            "2027-03-03",
            -3000,
            "EUR",
            "REFUND-P7",
            "Stationers",
        ),
    ]
    assert statement.notes == ("Stmt[1]/Ntry[3]: pdng, not booked yet: left out",)
    assert (statement.account, statement.currency) == ("FR7630006000011234567890189", "EUR")


@pytest.mark.parametrize(
    ("entry", "where", "what"),
    [
        ('<Amt Ccy="EUR">5.00</Amt><CdtDbtInd>CRDT</CdtDbtInd>', "Ntry[1]/BookgDt", "no booking"),
        ('<Amt Ccy="EUR">5.00</Amt><CdtDbtInd>RCDT</CdtDbtInd>', "Ntry[1]/CdtDbtInd", "'RCDT'"),
        ('<Amt Ccy="EUR"> </Amt><CdtDbtInd>CRDT</CdtDbtInd>', "Ntry[1]/Amt", "has no amount"),
        ('<Amt Ccy="EU">5</Amt><CdtDbtInd>CRDT</CdtDbtInd>', "Ntry[1]/Amt", "no currency"),
        ('<Amt Ccy="EUR">5.001</Amt><CdtDbtInd>CRDT</CdtDbtInd>', "Ntry[1]/Amt", "'5.001' is not"),
        ('<Amt Ccy="EUR">-5</Amt><CdtDbtInd>CRDT</CdtDbtInd>', "Ntry[1]/Amt", "'-5' is not"),
    ],
)
def test_a_broken_entry_is_refused_by_its_place(entry: str, where: str, what: str) -> None:
    with pytest.raises(StatementError) as caught:
        camt053.read("s.xml", _document(f"<Ntry>{entry}</Ntry>"))
    assert f"s.xml: Stmt[1]/{where}" in str(caught.value) and what in str(caught.value)


@given(
    whole=st.integers(0, 10**12),
    digits=st.text("0123456789", max_size=4),
    dot=st.booleans(),
    pad=st.sampled_from(["", " ", "\n  "]),
    currency=st.sampled_from(["EUR", "JPY", "KWD"]),
)
def test_an_amount_is_read_exactly_as_a_decimal_number_of_minor_units(
    whole: int, digits: str, dot: bool, pad: str, currency: str
) -> None:
    text = f"{whole}{'.' if dot or digits else ''}{digits}"
    exp = {"EUR": 2, "JPY": 0, "KWD": 3}[currency]
    expected = Decimal(text).scaleb(exp)
    entry = (
        f'<Ntry><Amt Ccy="{currency}">{pad}{text}{pad}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        "<BookgDt><Dt>2027-03-01</Dt></BookgDt></Ntry>"
    )
    if expected != expected.to_integral_value():
        with pytest.raises(StatementError, match="is not an amount"):
            camt053.read("s.xml", _document(entry, currency))
        return
    (line,) = camt053.read("s.xml", _document(entry, currency)).lines
    assert (line.amount, line.currency) == (int(expected), currency)


def test_an_amount_written_again_is_read_again_in_its_own_currency() -> None:
    # Amounts are remembered by their text and currency: the same text in another
    # currency is another amount, and a text written twice is read the same twice.
    entries = "".join(
        f'<Ntry><Amt Ccy="{ccy}">{text}</Amt><CdtDbtInd>CRDT</CdtDbtInd>'
        f"<BookgDt><Dt>2027-03-01</Dt></BookgDt><AcctSvcrRef>{n}</AcctSvcrRef></Ntry>"
        for n, (text, ccy) in enumerate(
            [("1.5", "EUR"), ("1.5", "KWD"), ("1.5", "EUR"), (" 1.5 ", "EUR"), ("7", "JPY")]
        )
    )
    lines = camt053.read("s.xml", _document(entries)).lines
    assert [(x.amount, x.currency) for x in lines] == [
        (150, "EUR"),
        (1500, "KWD"),
        (150, "EUR"),
        (150, "EUR"),
        (7, "JPY"),
    ]
    with pytest.raises(StatementError, match=r"Stmt\[1\]/Ntry\[2\]/Amt"):
        camt053.read("s.xml", _document(entries.replace('"KWD">1.5', '"KWD">1.5001')))
