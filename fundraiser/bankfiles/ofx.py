"""OFX statements (1.x SGML and 2.x XML), parsed by `ofxtools`.

ofxtools tokenises the file itself (no DTD, no entities). OFX is lenient SGML
and a file cut short can still parse, so the closing </OFX> is required.
A transaction in another currency than the statement's carries <CURRENCY>.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from fundraiser.bank.statement import Line, Statement, fail, one_line, with_ids
from fundraiser.money import exponent


def read(name: str, data: bytes) -> Statement:
    if b"</ofx>" not in data[-4096:].lower():
        raise fail(
            name,
            "end of file",
            "the closing </OFX> is missing: the file is cut short",
            "download the statement again",
        )
    import io

    from ofxtools.Parser import OFXTree

    tree = OFXTree()
    try:
        tree.parse(io.BytesIO(data))
        ofx: Any = tree.convert()
    except Exception as exc:  # ofxtools has no common error class
        message = str(exc).split("\n")[0][:200]
        raise fail(name, "", f"cannot be read as OFX ({message})", "download it again") from None
    statements = list(getattr(ofx, "statements", []) or [])
    if not statements:
        raise fail(name, "<STMTRS>", "holds no bank statement", "download the bank statement")
    accounts = {str(getattr(s.account, "acctid", "")) for s in statements}
    if len(accounts) > 1:
        raise fail(name, "<STMTRS>", "holds several accounts", "import each account's file")
    first = statements[0]
    currency = str(first.curdef).upper()
    account = accounts.pop() or "ofx"
    lines: list[Line] = []
    n = 0
    for statement in statements:
        for tx in statement.banktranlist or []:
            n += 1
            ccy = currency
            other = getattr(tx, "currency", None)
            if other is None:
                other = getattr(tx, "origcurrency", None)
            if other is not None and getattr(other, "cursym", None):
                ccy = str(other.cursym).upper()
            amount = Decimal(tx.trnamt)
            minor = int(amount.scaleb(exponent(ccy)))
            payee = getattr(tx, "payee", None)
            payer = str(tx.name or (getattr(payee, "name", "") if payee else "") or "")
            text = one_line(" ".join(str(v) for v in (tx.memo, tx.name, tx.refnum) if v))
            lines.append(
                Line(
                    f"<STMTTRN> #{n} (FITID {tx.fitid})",
                    str(tx.fitid or ""),
                    tx.dtposted.date().isoformat(),
                    minor,
                    ccy,
                    text,
                    one_line(payer),
                )
            )
    return Statement(name, "ofx", account, currency, with_ids(account, lines))
