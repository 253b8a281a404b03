"""Bank statements written by the tests, in each format the import reads."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from xml.sax.saxutils import escape

CAMT_NS = "urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"
COOP_IBAN = "DE89370400440532013000"


@dataclass(frozen=True)
class Tx:
    ref: str  # the bank's id
    amount: str  # major units, signed: "-50.00" is money out
    text: str
    payer: str = ""
    day: str = "2027-03-01"
    currency: str = ""  # the line's own, when it differs


def camt053(
    path: Path,
    txs: list[Tx],
    *,
    currency: str = "EUR",
    account: str = COOP_IBAN,
    opening: str = "1000.00",
) -> Path:
    """A camt.053.001.02 statement, built in the ISO schema's structure."""
    entries = []
    total = Decimal(opening)
    for tx in txs:
        amount = Decimal(tx.amount)
        ccy = tx.currency or currency
        total += amount if ccy == currency else 0
        credit = amount > 0
        party = "Dbtr" if credit else "Cdtr"
        entries.append(
            f"""
      <Ntry>
        <Amt Ccy="{ccy}">{abs(amount):.2f}</Amt>
        <CdtDbtInd>{"CRDT" if credit else "DBIT"}</CdtDbtInd>
        <Sts>BOOK</Sts>
        <BookgDt><Dt>{tx.day}</Dt></BookgDt>
        <ValDt><Dt>{tx.day}</Dt></ValDt>
        <AcctSvcrRef>{escape(tx.ref)}</AcctSvcrRef>
        <BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly></Domn></BkTxCd>
        <NtryDtls><TxDtls>
          <Refs><EndToEndId>NOTPROVIDED</EndToEndId></Refs>
          <RltdPties><{party}><Nm>{escape(tx.payer)}</Nm></{party}></RltdPties>
          <RmtInf><Ustrd>{escape(tx.text)}</Ustrd></RmtInf>
        </TxDtls></NtryDtls>
      </Ntry>"""
        )
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<Document xmlns="{CAMT_NS}">
  <BkToCstmrStmt>
    <GrpHdr><MsgId>STMT-1</MsgId><CreDtTm>2027-03-02T06:00:00</CreDtTm></GrpHdr>
    <Stmt>
      <Id>STMT-1-1</Id>
      <CreDtTm>2027-03-02T06:00:00</CreDtTm>
      <Acct><Id><IBAN>{account}</IBAN></Id><Ccy>{currency}</Ccy></Acct>
      <Bal><Tp><CdOrPrtry><Cd>OPBD</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{opening}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2027-02-28</Dt></Dt></Bal>
      <Bal><Tp><CdOrPrtry><Cd>CLBD</Cd></CdOrPrtry></Tp><Amt Ccy="{currency}">{total:.2f}</Amt>
        <CdtDbtInd>CRDT</CdtDbtInd><Dt><Dt>2027-03-02</Dt></Dt></Bal>{"".join(entries)}
    </Stmt>
  </BkToCstmrStmt>
</Document>
"""
    path.write_text(xml, encoding="utf-8")
    return path


def mt940(path: Path, txs: list[Tx], *, currency: str = "GBP", opening: str = "1000.00") -> Path:
    lines = [":20:STMT1", ":25:08929965432100", ":28C:1/1"]
    lines.append(f":60F:C270228{currency}{opening.replace('.', ',')}")
    total = Decimal(opening)
    for tx in txs:
        amount = Decimal(tx.amount)
        total += amount
        day = tx.day[2:].replace("-", "")
        sign = "C" if amount > 0 else "D"
        lines.append(
            f":61:{day}{day[2:]}{sign}{abs(amount):.2f}".replace(".", ",") + f"NTRFNONREF//{tx.ref}"
        )
        lines.append(f":86:{tx.text}")
    lines.append(f":62F:C270302{currency}{total:.2f}".replace(".", ","))
    path.write_text("\r\n".join(lines) + "\r\n-", encoding="utf-8")
    return path


def ofx(path: Path, txs: list[Tx], *, currency: str = "GBP") -> Path:
    body = []
    for tx in txs:
        other = (
            f"<CURRENCY><CURRATE>1.0<CURSYM>{tx.currency}</CURRENCY>"
            if tx.currency and tx.currency != currency
            else ""
        )
        kind = "CREDIT" if Decimal(tx.amount) > 0 else "DEBIT"
        body.append(
            f"<STMTTRN><TRNTYPE>{kind}<DTPOSTED>{tx.day.replace('-', '')}<TRNAMT>{tx.amount}"
            f"<FITID>{tx.ref}<NAME>{tx.payer or 'UNKNOWN'}<MEMO>{tx.text}{other}</STMTTRN>"
        )
    text = f"""OFXHEADER:100
DATA:OFXSGML
VERSION:102
SECURITY:NONE
ENCODING:USASCII
CHARSET:1252
COMPRESSION:NONE
OLDFILEUID:NONE
NEWFILEUID:NONE

<OFX>
<SIGNONMSGSRSV1><SONRS><STATUS><CODE>0<SEVERITY>INFO</STATUS><DTSERVER>20270302120000<LANGUAGE>ENG</SONRS></SIGNONMSGSRSV1>
<BANKMSGSRSV1><STMTTRNRS><TRNUID>1<STATUS><CODE>0<SEVERITY>INFO</STATUS>
<STMTRS><CURDEF>{currency}<BANKACCTFROM><BANKID>089299<ACCTID>65432100<ACCTTYPE>CHECKING</BANKACCTFROM>
<BANKTRANLIST><DTSTART>20270301<DTEND>20270302
{"".join(body)}
</BANKTRANLIST><LEDGERBAL><BALAMT>0.00<DTASOF>20270302</LEDGERBAL></STMTRS></STMTTRNRS></BANKMSGSRSV1></OFX>
"""
    path.write_text(text, encoding="ascii")
    return path


def use_eur(campaign: Path) -> None:
    """The example campaign, in EUR, with the co-op's IBAN in [bank]."""
    text = campaign.read_text()
    text = text.replace('currency = "GBP"', 'currency = "EUR"')
    text = text.replace(
        'details = "Sort code 08-92-99, account 65432100"',
        f'iban = "{COOP_IBAN}"\nbic = "COBADEFFXXX"',
    )
    campaign.write_text(text)
