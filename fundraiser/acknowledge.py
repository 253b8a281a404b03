"""The "we have your pledge" mail for pledges an organizer records by hand.

Online pledges get theirs when the card form completes (payments.events).
An offline pledge (a seed commitment, a bank transfer) gets it only when the
organizer asks (`--notify`): they may be importing pledges the backers were
already told about. An unpaid one tells the backer where to send the money,
so the campaign's [bank] details must be set.
"""

from __future__ import annotations

from collections.abc import Sequence

from fundraiser import outbox
from fundraiser.config import Campaign
from fundraiser.errors import UserInputError
from fundraiser.people import normal_email
from fundraiser.pledges import NewPledge, Status


def transfer_reference(pledge_id: int) -> str:
    """What an offline backer writes on their transfer (short: UK references allow 18)."""
    return f"PLEDGE-{pledge_id}"


def check_bank(campaign: Campaign, items: Sequence[NewPledge]) -> None:
    """Refuse to promise payment instructions the campaign cannot give."""
    if campaign.bank is None and any(i.status is not Status.PAID for i in items):
        raise UserInputError(
            f"{campaign.path.name} has no [bank] section, so the mail cannot say where to "
            "send the money: add [bank] with account_name and details, or leave out --notify"
        )


def rows(ids: Sequence[int], items: Sequence[NewPledge], now: str) -> list[outbox.Row]:
    """One pledge-received mail per pledge; the dedupe key is the online one's too."""
    return [
        outbox.message(
            outbox.Kind.PLEDGE_RECEIVED,
            f"pledge-{pid}-received",
            to_email=normal_email(item.email),
            to_name=item.name.strip(),
            data={
                "pledge_id": pid,
                "amount": item.amount.amount,
                "currency": item.amount.currency,
                "transfer_reference": transfer_reference(pid),
            },
            now=now,
            pledge_id=pid,
        )
        for pid, item in zip(ids, items, strict=True)
    ]
