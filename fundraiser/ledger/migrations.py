"""Schema versions, migrated forward: MIGRATIONS[n] takes a ledger at version n to n + 1.

A new ledger is created at LATEST directly from the schema's metadata.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import schema
from fundraiser.ledger.tx import Tx

# Payment details on pledges added in v3.
V3_PLEDGE_COLUMNS = (
    sa.Column("stripe_charge", sa.Text, unique=True),
    sa.Column("failure_code", sa.Text),
    sa.Column("fix_until", sa.Text),
)


def _v2_stripe_events(conn: Connection) -> None:
    schema.stripe_events.create(conn)


def _v3_outbox_state_flags(conn: Connection) -> None:
    for table in (schema.outbox, schema.state, schema.register_flags):
        table.create(conn)
    for column in V3_PLEDGE_COLUMNS:
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE pledges ADD COLUMN {column.name} {kind}"))
    conn.execute(sa.text("CREATE UNIQUE INDEX ix_pledges_stripe_charge ON pledges (stripe_charge)"))


# A remainder's bank payout, added in v4.
V4_REMAINDER_COLUMNS = (
    sa.Column("sent_at", sa.Text),
    sa.Column("payout_batch", sa.Text),
)


def _v4_bank(conn: Connection) -> None:
    for table in (schema.bank_transactions, schema.refund_accounts):
        table.create(conn)
    for column in V4_REMAINDER_COLUMNS:
        kind = column.type.compile(dialect=conn.dialect)
        conn.execute(sa.text(f"ALTER TABLE remainders ADD COLUMN {column.name} {kind}"))


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v2_stripe_events,
    2: _v3_outbox_state_flags,
    3: _v4_bank,
}
LATEST = 4


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table("schema_version"):
        return 0
    value = conn.execute(sa.select(sa.func.max(schema.schema_version.c.version))).scalar()
    return int(value or 0)


def upgrade(tx: Tx) -> None:
    """Bring the ledger to LATEST in the caller's write transaction (new: create it)."""
    version = current_version(tx.conn)  # another process may have migrated meanwhile
    if version == 0:
        schema.metadata.create_all(tx.conn)
        tx.execute(schema.schema_version.insert(), [{"version": LATEST, "applied_at": tx.now}])
        tx.record("ledger.create", "schema", {"version": LATEST})
        return
    while version < LATEST:
        MIGRATIONS[version](tx.conn)
        version += 1
        tx.execute(schema.schema_version.insert(), [{"version": version, "applied_at": tx.now}])
        tx.record("ledger.migrate", "schema", {"version": version})
