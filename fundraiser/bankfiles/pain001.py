"""SEPA credit transfers out: a pain.001.001.03 file, built and validated by `sepaxml`.

sepaxml checks its output against the XSD it ships before handing it over.
The message id is our batch id (not sepaxml's random one), so a file written
again for the same batch is the same payment order, which the bank pays once.
Names and references are cut down to the characters every SEPA bank takes.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from sepaxml import SepaTransfer

from fundraiser.bank.payouts import PayoutPlan

_NOT_SEPA = re.compile(r"[^A-Za-z0-9/\-?:().,'+ ]")


def sepa_text(text: str, limit: int) -> str:
    """Text in the SEPA character set (Latin letters, digits, a few marks)."""
    from text_unidecode import unidecode

    cleaned = _NOT_SEPA.sub(" ", unidecode(text))
    return " ".join(cleaned.split()).lstrip("-+/:?")[:limit] or "Backer"


class _Transfer(SepaTransfer):  # type: ignore[misc]  # sepaxml is untyped
    """sepaxml's transfer with our message id instead of a random one."""

    def __init__(self, config: dict[str, Any], msg_id: str) -> None:
        self._our_id = msg_id
        super().__init__(config, schema="pain.001.001.03")

    def _create_header(self) -> None:
        self.msg_id = self._our_id
        super()._create_header()


def write(
    payout_plan: PayoutPlan, *, name: str, iban: str, bic: str | None, execution: date
) -> bytes:
    config: dict[str, Any] = {
        "name": sepa_text(name, 70),
        "IBAN": iban,
        "batch": True,
        "currency": payout_plan.currency,
    }
    if bic:
        config["BIC"] = bic
    transfer = _Transfer(config, payout_plan.batch)
    for payout in payout_plan.payouts:
        payment: dict[str, Any] = {
            "name": sepa_text(payout.account.holder, 70),
            "IBAN": payout.account.iban,
            "amount": payout.item.total.amount,
            "execution_date": execution,
            "description": f"{payout.reference} refund from {sepa_text(name, 100)}"[:140],
            "endtoend_id": payout.reference,
        }
        if payout.account.bic:
            payment["BIC"] = payout.account.bic
        transfer.add_payment(payment)
    out: bytes = transfer.export(validate=True, pretty_print=True)
    return out
