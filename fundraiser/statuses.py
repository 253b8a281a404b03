"""A pledge's states and how it reaches the ledger: plain names, no database.

The allowed moves live in one table, TRANSITIONS; `pledges.transition` applies
them. The groups other modules ask about are named once here, beside it. No
SQLAlchemy here: `fundraiser status` builds its SQL from these groups and never
loads it (see ledger/reader.py). `fundraiser.pledges` offers every name too.
"""

from __future__ import annotations

import enum


class Status(enum.StrEnum):
    PENDING = "pending"  # recorded; no card saved, no money received yet
    AUTHORIZED = "authorized"  # card saved, to be charged if the goal is met
    PROCESSING = "processing"  # a charge is in flight (collect marks this first)
    PAID = "paid"
    PAYMENT_FAILED = "payment_failed"  # charge failed; the backer may fix their card
    FAILED = "failed"  # could not be paid, for good
    CANCELLED = "cancelled"  # withdrawn by the backer or an organizer before payment
    RELEASED = "released"  # the goal was missed: nothing will be charged
    REFUNDED = "refunded"  # every penny paid was returned
    DISPUTED = "disputed"  # the backer's bank is disputing the charge


S = Status
TRANSITIONS: dict[Status, frozenset[Status]] = {
    S.PENDING: frozenset({S.AUTHORIZED, S.PROCESSING, S.PAID, S.FAILED, S.CANCELLED, S.RELEASED}),
    S.AUTHORIZED: frozenset({S.PROCESSING, S.PAID, S.PAYMENT_FAILED, S.CANCELLED, S.RELEASED}),
    S.PROCESSING: frozenset({S.PAID, S.PAYMENT_FAILED, S.AUTHORIZED}),
    S.PAYMENT_FAILED: frozenset({S.AUTHORIZED, S.PROCESSING, S.PAID, S.FAILED}),
    S.PAID: frozenset({S.REFUNDED, S.DISPUTED}),
    S.DISPUTED: frozenset({S.PAID, S.REFUNDED}),
    S.FAILED: frozenset(),
    S.CANCELLED: frozenset(),
    S.RELEASED: frozenset(),
    S.REFUNDED: frozenset(),
}

# The groups every other module asks about, named once beside the table.
# theme/static/js/pledge.js gets what it needs from the service's answers
# (`secured`), never from a copy of these.

#: Pledges that still count towards the campaign (money promised or received).
LIVE = frozenset({S.PENDING, S.AUTHORIZED, S.PROCESSING, S.PAID, S.PAYMENT_FAILED, S.DISPUTED})
#: The backer's part is done: a card saved for later, or the money received.
SECURED = frozenset({S.AUTHORIZED, S.PAID})
#: Money received and not returned: refundable, and counted as paid in.
HELD = frozenset({S.PAID, S.DISPUTED})
#: Money was received at some point (held now, or since returned in full).
RECEIVED = HELD | {S.REFUNDED}
#: A charge may be made or is in flight: what a charge's failure can move.
CHARGEABLE = frozenset({S.AUTHORIZED, S.PROCESSING})
#: Live but not paid yet: what the close of an all-or-nothing campaign settles.
UNSETTLED = LIVE - HELD
#: Over without money: never to be charged, so nothing kept at Stripe has a use.
ENDED_UNPAID = frozenset({S.CANCELLED, S.RELEASED, S.FAILED})

assert SECURED <= LIVE and HELD <= LIVE and not (LIVE & ENDED_UNPAID)
assert all(not TRANSITIONS[s] for s in ENDED_UNPAID | {S.REFUNDED})


class Source(enum.StrEnum):
    """How a pledge reached the ledger."""

    ONLINE = "online"  # the pledge page: Stripe holds the card or took the money
    OFFLINE = "offline"  # recorded by an organizer (`pledges add`): paid by bank transfer
    IMPORT = "import"  # an organizer's CSV (`pledges import`): paid by bank transfer


#: Pledges an organizer recorded by hand: their money comes by bank transfer.
BY_HAND = frozenset({Source.OFFLINE, Source.IMPORT})
