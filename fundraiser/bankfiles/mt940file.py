"""SWIFT MT940 statements, parsed by the `mt-940` package.

The package reads the tags; we check what it does not: each balance line's
shape (so a bad one is named by its line), and that the opening balance plus
the transactions is the closing balance (a statement cut short does not add
up). `:86:` details in the German structured form (?20..?29 for the reference,
?32/?33 for the name) are unfolded; anything else is taken as it stands.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

import mt940

from fundraiser.bank.statement import Line, Statement, fail, one_line, with_ids
from fundraiser.bankfiles import decode
from fundraiser.money import Money, exponent

_BALANCE_TAGS = (":60F:", ":60M:", ":62F:", ":62M:", ":64:", ":65:")
_BALANCE = re.compile(r"^[CD]\d{6}[A-Z]{3}\d{1,15}(,\d*)?$")
_SUBFIELD = re.compile(r"\?(\d\d)")


def _minor(amount: Decimal, currency: str) -> int:
    return int(amount.scaleb(exponent(currency)))


def _unfold(details: str) -> tuple[str, str]:
    """(reference text, payer name) from an :86: field."""
    if "?" not in details:
        return one_line(details), ""
    parts = _SUBFIELD.split(details)
    text, name = [], []
    for code, value in zip(parts[1::2], parts[2::2], strict=False):
        value = value.replace("\n", "").replace("\r", "")
        if code.startswith("2") or code in ("60", "61", "62", "63"):
            text.append(value)  # the reference, continued line by line
        elif code in ("32", "33"):
            name.append(value)
    return one_line("".join(text)), one_line("".join(name))


def read(name: str, data: bytes, encoding: str) -> Statement:
    text = decode(name, data, encoding)
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        for tag in _BALANCE_TAGS:
            if line.startswith(tag) and not _BALANCE.match(line[len(tag) :]):
                raise fail(
                    name,
                    f"line {number}",
                    f"the balance line {line!r} is not C/D, a YYMMDD date, a currency and "
                    "an amount (e.g. :60F:C270301EUR1000,00)",
                    "download the statement again, or ask the bank why this line is broken",
                )
    if ":61:" not in text and ":60F:" not in text:
        raise fail(name, "", "holds no MT940 statement (:60F: and :61: lines)", "check the file")
    try:
        parsed: Any = mt940.parse(text)
    except Exception as exc:  # the package raises bare RuntimeErrors
        message = str(exc).split("\n")[0][:200]
        raise fail(name, "", f"cannot be read as MT940 ({message})", "download it again") from None
    data_ = parsed.data
    opening = data_.get("final_opening_balance") or data_.get("intermediate_opening_balance")
    closing = data_.get("final_closing_balance") or data_.get("intermediate_closing_balance")
    if opening is None:
        raise fail(name, ":60F:", "the opening balance is missing", "download the statement again")
    currency = str(opening.amount.currency)
    account = str(data_.get("account_identification") or "mt940").strip()
    lines: list[Line] = []
    total = 0
    for n, tx in enumerate(parsed, start=1):
        d = tx.data
        ccy = str(d["amount"].currency or currency)
        amount = _minor(Decimal(d["amount"].amount), ccy)
        total += amount if ccy == currency else 0
        bank_ref = str(d.get("bank_reference") or "").strip()
        if bank_ref.upper() == "NONREF":
            bank_ref = ""
        details, payer = _unfold(str(d.get("transaction_details") or ""))
        customer = str(d.get("customer_reference") or "").strip()
        words = [details, "" if customer.upper() == "NONREF" else customer]
        booked = d.get("entry_date") or d.get("date")
        lines.append(
            Line(
                f":61: #{n}",
                bank_ref,
                str(booked),
                amount,
                ccy,
                one_line(" ".join(w for w in words if w)),
                payer,
            )
        )
    if closing is not None:
        start = _minor(Decimal(opening.amount.amount), currency)
        end = _minor(Decimal(closing.amount.amount), currency)
        if start + total != end:
            raise fail(
                name,
                ":62F:",
                f"the opening balance plus the transactions ({Money(start + total, currency)}) "
                f"is not the closing balance ({Money(end, currency)})",
                "the statement is incomplete or its balance line is wrong: download it again",
            )
    return Statement(name, "mt940", account, currency, with_ids(account, lines))
