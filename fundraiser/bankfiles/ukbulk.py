"""UK bulk payments out: the CSV shape UK banks take for a batch of Faster Payments.

One row per payee: sort code, account number, account name, amount, reference.
Bacs limits names and references to 18 characters of A-Z, 0-9, . & / - and
space; a bank's own upload template may order the columns differently (the
header names them). Cells go through csvsafe all the same.
"""

from __future__ import annotations

import io
import re

from fundraiser import csvsafe
from fundraiser.bank.payouts import PayoutPlan

HEADER = ("Sort code", "Account number", "Account name", "Amount", "Reference")
_NOT_BACS = re.compile(r"[^A-Z0-9.&/\- ]")


def bacs_text(text: str, limit: int = 18) -> str:
    from text_unidecode import unidecode

    cleaned = _NOT_BACS.sub(" ", unidecode(text).upper())
    return " ".join(cleaned.split()).lstrip("-./&")[:limit].strip() or "BACKER"


def write(payout_plan: PayoutPlan) -> bytes:
    handle = io.StringIO(newline="")
    csvsafe.write(
        handle,
        HEADER,
        (
            (
                csvsafe.Plain(p.account.sort_code or ""),
                csvsafe.Plain(p.account.number or ""),
                bacs_text(p.account.holder),
                csvsafe.Plain(p.item.total.plain()),
                bacs_text(p.reference),
            )
            for p in payout_plan.payouts
        ),
    )
    return handle.getvalue().encode("utf-8")
