"""The ledger's tables (SQLAlchemy Core), at the latest schema version.

Imported as a module and read as `schema.pledges`, `schema.members`: table
names are common words, and the domain modules carry the same names.
Columns that hold Stripe's ids sit beside our keys, unique, as Stripe's
own objects are.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

metadata = sa.MetaData()

# Marks read by the journal's replay (ledger/changes.py, ledger/replay.py):
# a REPLAYED table changes only through Tx.insert/update/delete
# and is proved by the journal; a PERSONAL column enters the journal only as a
# salted fingerprint; an OPERATIONAL column is the mail queue's own bookkeeping
# (attempts, errors), neither journalled nor compared; SENT_ONLY: of the mail
# queue's status only "sent" is journalled, so only sent-or-not is compared.
REPLAYED: dict[str, Any] = {"replayed": True}
PERSONAL: dict[str, Any] = {"personal": True}
OPERATIONAL: dict[str, Any] = {"operational": True}
SENT_ONLY: dict[str, Any] = {"sent_only": True}

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("applied_at", sa.Text, nullable=False),
)

#: New pledges' ids on PostgreSQL, where writers run side by side (v9; pledges.create_many).
pledge_ids = sa.Sequence("pledge_ids", metadata=metadata)

journal = sa.Table(
    "journal",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", sa.Text, nullable=False),
    sa.Column("action", sa.Text, nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("data", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.Text, nullable=False),
    # No index: nothing looks an entry up by its hash (a published head is checked
    # at its seq), and the seq inside every hash keeps them apart. An index cost
    # each webhook's append a sixth of its writer time (migration 11 drops it).
    sa.Column("hash", sa.Text, nullable=False),
)

pledges = sa.Table(
    "pledges",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.Column("person_key", sa.Text, nullable=False, index=True, info=PERSONAL),
    sa.Column("name", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("email", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("address", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("display_name", sa.Text, info=PERSONAL),
    sa.Column("round", sa.Text, nullable=False),
    sa.Column("tier", sa.Text),
    sa.Column("shares", sa.Integer),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, index=True),
    sa.Column("status_reason", sa.Text),
    sa.Column("source", sa.Text, nullable=False),
    sa.Column("reference", sa.Text, info=PERSONAL),
    sa.Column("paid_amount", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("refunded_amount", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("paid_at", sa.Text),
    sa.Column("allotted_at", sa.Text),
    sa.Column("request_key", sa.Text, unique=True, info=PERSONAL),
    sa.Column("stripe_customer", sa.Text, info=PERSONAL),
    sa.Column("stripe_intent", sa.Text, unique=True),
    sa.Column("stripe_payment_method", sa.Text, info=PERSONAL),
    sa.Column("livemode", sa.Boolean),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("stripe_charge", sa.Text),
    sa.Column("failure_code", sa.Text),
    sa.Column("fix_until", sa.Text),
    sa.Index("ix_pledges_stripe_charge", "stripe_charge", unique=True),
    sa.CheckConstraint("amount > 0", name="pledge_amount_positive"),
    sa.CheckConstraint("refunded_amount <= paid_amount", name="pledge_refund_within_paid"),
    info=REPLAYED,
)

# A tier's places are counted on every new pledge: from this index alone, work
# bounded by the tier's pledges, never by the ledger's (v9). Only pledges with a
# tier: the others (bank, by hand, joins) never pay for it when their status
# moves. Written as DDL, the same on SQLite and PostgreSQL: an sa.Index with a
# dialect's WHERE imports that dialect's whole module at every start-up
# (PostgreSQL's cost a SQLite ledger's `status` about 45 ms).
TIER_PLACES_INDEX = (
    "CREATE INDEX IF NOT EXISTS ix_pledges_tier_places "
    "ON pledges (tier, status, source, created_at) WHERE tier IS NOT NULL"
)


# PostgreSQL (v10): half of each page of pledges left free. A pledge is updated
# several times in its life (paid, stamped by the issue); PostgreSQL writes a new
# version of the row for each update, and only when it fits on the same page does
# it skip every index (a "HOT" update). The issue stamps 100,000 pledges at once:
# 6.8 s on full pages, 1.35 s (and a tenth of the WAL) with room, for a table
# twice as big on disk. SQLite updates rows in place and has no such setting.
PLEDGES_FILLFACTOR = "ALTER TABLE pledges SET (fillfactor = 50)"


@sa.event.listens_for(pledges, "after_create")
def _tier_places(_table: sa.Table, conn: sa.Connection, **_kw: object) -> None:
    conn.exec_driver_sql(TIER_PLACES_INDEX)
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(PLEDGES_FILLFACTOR)


members = sa.Table(
    "members",
    metadata,
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("person_key", sa.Text, nullable=False, unique=True, info=PERSONAL),
    sa.Column("name", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("email", sa.Text, info=PERSONAL),
    sa.Column("address", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("admitted_on", sa.Text, nullable=False),
    sa.Column("ceased_on", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    info=REPLAYED,
)

register_entries = sa.Table(
    "register_entries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "member_number", sa.Integer, sa.ForeignKey("members.number"), nullable=False, index=True
    ),
    sa.Column("kind", sa.Text, nullable=False),  # issue, withdraw, cancel
    sa.Column("shares", sa.Integer, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id")),
    sa.Column("certificate_number", sa.Integer, unique=True),
    sa.Column("entry_date", sa.Text, nullable=False),
    sa.Column("note", sa.Text, info=PERSONAL),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.CheckConstraint("shares > 0", name="entry_shares_positive"),
    info=REPLAYED,
)

# Which pledge's money paid for which issue entry (one entry per member per issue).
allotments = sa.Table(
    "allotments",
    metadata,
    sa.Column("entry_id", sa.Integer, sa.ForeignKey("register_entries.id"), primary_key=True),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), primary_key=True),
    sa.Column("amount", sa.BigInteger, nullable=False),
    info=REPLAYED,
)

remainders = sa.Table(
    "remainders",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), nullable=False, index=True),
    sa.Column("person_key", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # due, refunded
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("refunded_at", sa.Text),
    sa.Column("refund_reference", sa.Text, info=PERSONAL),
    sa.Column("sent_at", sa.Text),  # v4: in a bank payment file, not yet seen leaving
    sa.Column("payout_batch", sa.Text),  # v4: that file's message id
    sa.CheckConstraint("amount > 0", name="remainder_amount_positive"),
    info=REPLAYED,
)

# Raw Stripe events, stored once by their id (schema version 2).
stripe_events = sa.Table(
    "stripe_events",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),
    sa.Column("type", sa.Text, nullable=False),
    sa.Column("livemode", sa.Boolean, nullable=False),
    sa.Column("created", sa.BigInteger, nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("received_at", sa.Text, nullable=False),
    sa.Column("applied_at", sa.Text),
)


# Mail waiting to be sent, queued in the same transaction as its cause (v3).
outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),  # welcome, pledge_received, payment_failed, ...
    sa.Column("dedupe_key", sa.Text, nullable=False, unique=True),  # one message per cause
    sa.Column("to_email", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("to_name", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("data", sa.Text, nullable=False, info=PERSONAL),  # JSON for the template
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id")),
    sa.Column("member_number", sa.Integer, sa.ForeignKey("members.number")),
    sa.Column("status", sa.Text, nullable=False, info=SENT_ONLY),  # queued, sending, sent, failed
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0", info=OPERATIONAL),
    sa.Column("next_attempt_at", sa.Text, info=OPERATIONAL),
    sa.Column("last_error", sa.Text, info=OPERATIONAL),
    sa.Column("sent_at", sa.Text),
    sa.Column("message_id", sa.Text, info=OPERATIONAL),
    info=REPLAYED,
)

# Small named values that commands resume from, e.g. the Stripe sync cursor (v3).
state = sa.Table(
    "state",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
)

# Shares issued from a pledge that was later refunded or disputed (v3).
register_flags = sa.Table(
    "register_flags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("entry_id", sa.Integer, sa.ForeignKey("register_entries.id"), nullable=False),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("resolved_at", sa.Text),
    sa.UniqueConstraint("entry_id", "pledge_id", "reason", name="flag_once"),
    info=REPLAYED,
)


# Every bank statement line the ledger has taken in, by the bank's own id within
# its account, so a statement imported twice, or two that overlap, change
# nothing twice (v4). `amount` is signed: money in is positive. `applied` is
# the part that went to the pledge; the rest of a credit is a remainder or,
# unmatched, waits. No payer name or account number is kept: `remittance`
# (the payment reference text) is kept only while a credit is unmatched.
bank_transactions = sa.Table(
    "bank_transactions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("account", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("bank_id", sa.Text, nullable=False),
    sa.Column("booked_on", sa.Text, nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("outcome", sa.Text, nullable=False, index=True),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), index=True),
    sa.Column("applied", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("remainder_id", sa.Integer, sa.ForeignKey("remainders.id")),
    sa.Column("remittance", sa.Text, info=PERSONAL),
    sa.Column("source", sa.Text, nullable=False),  # camt053, mt940, ofx, csv
    sa.Column("imported_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.UniqueConstraint("account", "bank_id", name="bank_transaction_once"),
    info=REPLAYED,
)

# The account a bank payer gave for their refund: personal data, never in the
# journal, erased with the rest of the person by `members forget` (v4).
refund_accounts = sa.Table(
    "refund_accounts",
    metadata,
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), primary_key=True),
    sa.Column("holder", sa.Text, nullable=False, info=PERSONAL),
    sa.Column("iban", sa.Text, info=PERSONAL),
    sa.Column("bic", sa.Text, info=PERSONAL),
    sa.Column("sort_code", sa.Text, info=PERSONAL),
    sa.Column("account_number", sa.Text, info=PERSONAL),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    info=REPLAYED,
)


# -- after the campaign: joining, fees and withdrawals (v6) --------------------------

# A person who paid for shares after the campaign: a new member waiting for the
# board (or admitted on payment), or a member's top-up. One per pledge.
applications = sa.Table(
    "applications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), nullable=False, unique=True),
    sa.Column("kind", sa.Text, nullable=False),  # join, top-up
    sa.Column("status", sa.Text, nullable=False, index=True),  # waiting, admitted, declined
    sa.Column("member_number", sa.Integer, sa.ForeignKey("members.number")),
    sa.Column("decided_on", sa.Text),
    sa.Column("reason", sa.Text, info=PERSONAL),  # the board's words to the person
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    info=REPLAYED,
)

# A member's membership fee: one Stripe subscription (or one kept by hand).
# Its standing (current, late, lapsed) is read from paid_through, failing_since
# and the grace days, on the day asked: nothing needs a nightly job to lapse.
fee_subscriptions = sa.Table(
    "fee_subscriptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("member_number", sa.Integer, sa.ForeignKey("members.number"), index=True),
    sa.Column("stripe_subscription", sa.Text, unique=True),
    sa.Column("stripe_customer", sa.Text, info=PERSONAL),
    sa.Column("rate", sa.Text, nullable=False),  # standard, reduced, supporter, free
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("interval", sa.Text, nullable=False),  # month, year
    sa.Column("started_on", sa.Text, nullable=False),
    sa.Column("paid_through", sa.Text),  # the end of the latest period paid for
    sa.Column("failing_since", sa.Text),  # the start of the oldest period still unpaid
    sa.Column("ended_at", sa.Text),  # the subscription was deleted (the fee ended)
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.CheckConstraint("amount >= 0", name="fee_amount_not_negative"),
    info=REPLAYED,
)

# Each fee invoice, once by Stripe's invoice id: what makes applying its
# events idempotent and order-independent (paid wins over failed, for good).
fee_invoices = sa.Table(
    "fee_invoices",
    metadata,
    sa.Column("id", sa.Text, primary_key=True),  # Stripe's in_..., or our own for a fee by hand
    sa.Column(
        "subscription_id",
        sa.Integer,
        sa.ForeignKey("fee_subscriptions.id"),
        nullable=False,
        index=True,
    ),
    sa.Column("status", sa.Text, nullable=False),  # paid, failed
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.Text, nullable=False),
    sa.Column("period_start", sa.Text, nullable=False),
    sa.Column("period_end", sa.Text, nullable=False),
    sa.Column("paid_at", sa.Text),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    info=REPLAYED,
)

# A join or top-up made on the site's join page: what the pledge row does not
# carry (the fee rate chosen, how it is paid, the SEPA mandate), and the fee
# subscription started for it once the member is admitted.
joins = sa.Table(
    "joins",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("pledge_id", sa.Integer, sa.ForeignKey("pledges.id"), nullable=False, unique=True),
    sa.Column("kind", sa.Text, nullable=False),  # join, top-up
    sa.Column("member_number", sa.Integer, sa.ForeignKey("members.number")),  # a top-up's member
    sa.Column("rate", sa.Text),  # standard, reduced, supporter, free; None: no fee
    sa.Column("method", sa.Text, nullable=False),  # card, sepa_debit
    sa.Column("mandate", sa.Text, info=PERSONAL),  # Stripe's SEPA mandate id
    sa.Column("fee_subscription_id", sa.Integer, sa.ForeignKey("fee_subscriptions.id")),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    info=REPLAYED,
)

# A member's request to withdraw shares, held for the rules' notice period.
withdrawal_requests = sa.Table(
    "withdrawal_requests",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "member_number", sa.Integer, sa.ForeignKey("members.number"), nullable=False, index=True
    ),
    sa.Column("shares", sa.Integer, nullable=False),
    sa.Column("requested_on", sa.Text, nullable=False),
    sa.Column("due_on", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False, index=True),  # waiting, paid, withdrawn
    sa.Column("entry_id", sa.Integer, sa.ForeignKey("register_entries.id")),
    sa.Column("method", sa.Text),  # card, bank: how the money went back
    sa.Column("note", sa.Text, info=PERSONAL),
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    sa.CheckConstraint("shares > 0", name="withdrawal_request_shares_positive"),
    info=REPLAYED,
)


# -- a member's own page (v8) -------------------------------------------------------

# A member signed in from an emailed link: one row per link used (its digest is
# unique, so a link works once), and the session it opened, until it expires or
# the member signs out.
member_sessions = sa.Table(
    "member_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "member_number", sa.Integer, sa.ForeignKey("members.number"), nullable=False, index=True
    ),
    sa.Column("link_digest", sa.Text, nullable=False, unique=True, info=PERSONAL),
    sa.Column("started_at", sa.Text, nullable=False),
    sa.Column("expires_at", sa.Text, nullable=False),
    sa.Column("ended_at", sa.Text),  # signed out
    info=REPLAYED,
)

# What a member changed about themselves, with its date: the register's history
# of postal address, email (pending until the new address confirms it) and
# public name, and their fee's rate and end.
member_changes = sa.Table(
    "member_changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "member_number", sa.Integer, sa.ForeignKey("members.number"), nullable=False, index=True
    ),
    sa.Column("field", sa.Text, nullable=False),  # address, email, public_name, fee_rate, fee
    sa.Column("value", sa.Text, info=PERSONAL),  # the new value (None: public name withdrawn)
    sa.Column("status", sa.Text, nullable=False),  # done, pending (email), superseded
    sa.Column("changed_on", sa.Text),  # the day it took effect
    sa.Column("created_at", sa.Text, nullable=False),
    sa.Column("updated_at", sa.Text, nullable=False),
    info=REPLAYED,
)
