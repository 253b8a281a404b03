"""Leaving: a member gives back shares by a withdrawal entry.

The register is append-only (fundraiser.register): a withdrawal never edits
the entries that issued the shares, it adds one that takes them back. A member
may leave with all their shares or keep at least the offer's minimum holding;
at zero shares they cease (`ceased_on`), and their entry stays in the register
(see fundraiser.membership.privacy for how long).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fundraiser import register
from fundraiser.config import Campaign
from fundraiser.errors import UserInputError
from fundraiser.ledger import Ledger
from fundraiser.money import Money


@dataclass(frozen=True)
class Withdrawal:
    member: int
    entry_id: int | None  # None on a dry run
    shares: int
    amount: Money
    holding_after: int
    ceased: bool
    # The certificate for the shares left (the member's others are taken back).
    balance_certificate: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "entry_id": self.entry_id,
            "shares": self.shares,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "holding_after": self.holding_after,
            "ceased": self.ceased,
            "balance_certificate": self.balance_certificate,
        }


def withdraw(
    ledger: Ledger,
    campaign: Campaign,
    number: int,
    shares: int,
    *,
    today: str,
    now: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
) -> Withdrawal:
    """A withdrawal entry for `shares` of a member's holding; ceased at zero."""
    if shares < 1:
        raise UserInputError(f"--shares must be at least 1, not {shares}")
    terms = campaign.shares
    with ledger.write(now) as tx:
        member = register.get_member(tx.conn, number)
        held, _ = register.holding(tx.conn, number)
        if member.ceased_on or held == 0:
            raise UserInputError(
                f"member {number} holds no shares"
                + (f" (ceased on {member.ceased_on})" if member.ceased_on else "")
                + ": there is nothing to withdraw"
            )
        if shares > held:
            raise UserInputError(
                f"--shares {shares} is more than member {number} holds ({held}): "
                f"withdraw at most {held}"
            )
        after = held - shares
        if 0 < after < terms.min_shares:
            stay = held - terms.min_shares
            keep = (
                f"or at most {stay} to stay a member" if stay > 0 else "a member cannot hold fewer"
            )
            raise UserInputError(
                f"--shares {shares} would leave member {number} with {after} share(s), "
                f"below the minimum holding of {terms.min_shares}: withdraw all {held} "
                f"shares to leave, {keep}"
            )
        amount = terms.price * shares
        if dry_run:
            return Withdrawal(number, None, shares, amount, after, after == 0)
        entry = register.enter_withdrawal(
            tx, number, shares, amount, today=today, note=(note or "").strip() or None
        )
        tx.record(
            "register.withdraw",
            f"member:{number}",
            {
                "member": number,
                "entry": entry.entry_id,
                "shares": shares,
                "amount": amount.amount,
                "ceased": entry.ceased,
                "balance_certificate": entry.balance_certificate,
            },
        )
        return Withdrawal(
            number, entry.entry_id, shares, amount, after, entry.ceased, entry.balance_certificate
        )
