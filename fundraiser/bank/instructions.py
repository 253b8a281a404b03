"""What a backer who pays by bank is told: the co-op's account, the amount still due
and the reference that matches the transfer to the pledge.

One view for the pledge mail and the backer's private page, so both say the same.
Structured details ([bank] iban and bic, or sort_code and account_number) are shown
as such, and the free-text `details` only when there are none. In euros to an IBAN
the transfer can also be made from a scan (fundraiser.bankfiles.epc).
"""

from __future__ import annotations

from dataclasses import dataclass

from fundraiser import accounts
from fundraiser.acknowledge import transfer_reference
from fundraiser.config import Bank
from fundraiser.money import Money


@dataclass(frozen=True)
class Transfer:
    account_name: str
    iban: str | None  # in groups of four, as people copy it
    bic: str | None
    sort_code: str | None
    account_number: str | None
    details: str
    reference: str
    due: Money

    @property
    def scannable(self) -> bool:
        """Whether a SEPA banking app can pay it from an EPC QR code."""
        return self.iban is not None and self.due.currency == "EUR" and self.due.amount > 0


def for_pledge(bank: Bank | None, pledge_id: int, due: Money) -> Transfer | None:
    """How to pay what is still due on a pledge; None when the co-op gave no account."""
    if bank is None:
        return None
    return Transfer(
        account_name=bank.account_name,
        iban=accounts.spaced(bank.iban) if bank.iban else None,
        bic=bank.bic,
        # 089299 as written on a UK cheque book and in banking apps: 08-92-99.
        sort_code="-".join((c[:2], c[2:4], c[4:])) if (c := bank.sort_code) else None,
        account_number=bank.account_number,
        details=bank.details,
        reference=transfer_reference(pledge_id),
        due=due,
    )
