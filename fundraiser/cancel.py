"""Cancelling a pledge: one rule for the backer's private link and the organizer's command.

A pledge is cancelled only where the state machine allows it (never once
paid). The backer may cancel until the deadline; an organizer at any time.
An online pledge that Stripe knows (an open card form, a saved card) is
cancelled through Stripe first: the form is closed there, so the backer can
no longer complete it and, in a keep-it-all campaign, pay for a pledge we
call cancelled. The domain does not talk to Stripe, so the face passes that
step in (payments.cardforms.withdraw). When a command has no Stripe key, a
pledge with only a saved card is cancelled in the ledger and its card is
removed by the next `stripe sync`; one with an open form is refused.

Whoever cancels, the ledger's part is `record_cancel`, in one transaction: the
pledge cancelled, its "we have your pledge" mail dropped if it has not gone
yet (it would now mislead), and the backer's "your pledge is cancelled" queued.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from datetime import datetime

from fundraiser import outbox, pledges
from fundraiser.errors import InvalidTransition, NotConfigured, UserInputError
from fundraiser.ledger import Ledger, Tx
from fundraiser.pledges import Pledge, Source, Status

#: Cancels a pledge at Stripe first, then in the ledger: (pledge id, reason) -> the pledge.
#: Raises NotConfigured, before doing anything, when the command cannot reach Stripe.
AtStripe = Callable[[int, str], Pledge]


class Who(enum.Enum):
    BACKER = "backer"  # through their private link: until the deadline
    ORGANIZER = "organizer"  # `fundraiser pledges cancel`: at any time


def refusal(status: Status, who: Who, *, now: datetime, deadline: datetime) -> str | None:
    """Why `who` may not cancel a pledge in `status` now, or None when they may.

    Only the backer's limits are checked here; an organizer's cancel is checked
    by the state machine itself, whose refusal names every state it allows.
    """
    if who is Who.BACKER:
        if now >= deadline:
            return "the campaign has closed: pledges can no longer be cancelled"
        if Status.CANCELLED not in pledges.TRANSITIONS[status]:
            return f"this pledge is {status.value} and cannot be cancelled"
    return None


def cancel(
    ledger: Ledger,
    pledge_id: int,
    *,
    who: Who,
    reason: str,
    now: datetime,
    deadline: datetime,
    at_stripe: AtStripe,
    stored_now: str | None = None,
) -> Pledge:
    """Cancel a pledge by the one rule, or raise and change nothing."""
    with ledger.read() as conn:
        pledge = pledges.get(conn, pledge_id)
    refused = refusal(pledge.status, who, now=now, deadline=deadline)
    if refused:
        raise InvalidTransition(refused)
    open_form = pledge.status is Status.PENDING and bool(pledge.stripe_intent)
    if pledge.source is Source.ONLINE and (open_form or pledge.status is not Status.PENDING):
        try:
            return at_stripe(pledge_id, reason)
        except NotConfigured as exc:
            if open_form:
                raise UserInputError(
                    f"pledge {pledge_id}'s card form is still open at Stripe and is closed "
                    f"there first: {exc}"
                ) from None
            # Only a saved card: it is removed at Stripe by the next `stripe sync`.
    with ledger.write(stored_now) as tx:
        return record_cancel(tx, pledge_id, reason)


def record_cancel(tx: Tx, pledge_id: int, reason: str, *, notify: bool = True) -> Pledge:
    """Cancel a pledge in the ledger, in the caller's transaction, and tell the backer.

    `notify` is False only for card forms closed because they were never
    finished (abandoned, or open at the deadline): no pledge was made to confirm.
    """
    pledge = pledges.transition(tx, pledge_id, Status.CANCELLED, reason=reason)
    outbox.drop_queued(tx, pledge_id, outbox.Kind.PLEDGE_RECEIVED)
    if notify:
        outbox.queue(
            tx,
            outbox.Kind.PLEDGE_CANCELLED,
            f"pledge-{pledge_id}-cancelled",
            to_email=pledge.email,
            to_name=pledge.name,
            data={
                "pledge_id": pledge_id,
                "amount": pledge.amount.amount,
                "currency": pledge.amount.currency,
            },
            pledge_id=pledge_id,
        )
    return pledge
