"""Schema versions, migrated forward: MIGRATIONS[n] takes a ledger at version n to n + 1.

A new ledger is created at LATEST directly from the schema's metadata.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import bulk, changes, schema
from fundraiser.ledger.reader import LATEST as LATEST
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


def _v5_snapshot(conn: Connection) -> None:
    """Nothing changes in the tables: the upgrade journals them as they stand (see upgrade)."""


def _v6_membership(conn: Connection) -> None:
    """Joining, fees and withdrawals after the campaign: new tables, empty."""
    for table in (
        schema.applications,
        schema.fee_subscriptions,
        schema.fee_invoices,
        schema.withdrawal_requests,
    ):
        table.create(conn, checkfirst=True)


def _v7_joins(conn: Connection) -> None:
    """Joining on the site: the join page's choices beside each pledge, empty."""
    schema.joins.create(conn, checkfirst=True)


def _v8_member_page(conn: Connection) -> None:
    """A member's own page: their sign-in sessions and the changes they made, empty."""
    for table in (schema.member_sessions, schema.member_changes):
        table.create(conn, checkfirst=True)


def _v9_pledge_places(conn: Connection) -> None:
    """A tier's places counted from an index; PostgreSQL's pledge ids from a sequence."""
    conn.exec_driver_sql(schema.TIER_PLACES_INDEX)
    if conn.dialect.name == "postgresql":
        schema.pledge_ids.create(conn, checkfirst=True)
        top = conn.execute(sa.select(sa.func.max(schema.pledges.c.id))).scalar()
        if top:  # the next id drawn follows the pledges there are
            conn.execute(sa.text("SELECT setval('pledge_ids', :top)"), {"top": top})


def _v10_pledge_pages(conn: Connection) -> None:
    """PostgreSQL: room on each page of pledges for their updates (schema.PLEDGES_FILLFACTOR).

    Pages written from now on; the rows there are stay where they are."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(schema.PLEDGES_FILLFACTOR)


def _v11_journal_hash_unindexed(conn: Connection) -> None:
    """The journal without the unique index on its hashes (see schema.journal)."""
    if conn.dialect.name == "postgresql":
        for found in sa.inspect(conn).get_unique_constraints("journal"):
            if found["column_names"] == ["hash"] and found["name"]:
                conn.exec_driver_sql(f'ALTER TABLE journal DROP CONSTRAINT "{found["name"]}"')
        return
    # SQLite keeps a column's UNIQUE in the table's definition: the journal is
    # copied, entry for entry, into a table made from today's schema.
    rebuilt = schema.journal.to_metadata(sa.MetaData(), name="journal_v11")
    rebuilt.create(conn)
    names = ", ".join(column.name for column in schema.journal.columns)
    conn.exec_driver_sql(f"INSERT INTO journal_v11 ({names}) SELECT {names} FROM journal")
    conn.exec_driver_sql("DROP TABLE journal")
    conn.exec_driver_sql("ALTER TABLE journal_v11 RENAME TO journal")


MIGRATIONS: dict[int, Callable[[Connection], None]] = {
    1: _v2_stripe_events,
    2: _v3_outbox_state_flags,
    3: _v4_bank,
    4: _v5_snapshot,
    5: _v6_membership,
    6: _v7_joins,
    7: _v8_member_page,
    8: _v9_pledge_places,
    9: _v10_pledge_pages,
    10: _v11_journal_hash_unindexed,
}
# LATEST lives in ledger/reader.py (status reads without SQLAlchemy): a new
# migration raises it there.
assert set(MIGRATIONS) == set(range(1, LATEST)), "a migration's number and LATEST disagree"
#: From this version every change of a replayed table is journalled with it.
REPLAYED_FROM = 5


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
        _make_salt(tx)
        return
    while version < LATEST:
        MIGRATIONS[version](tx.conn)
        version += 1
        tx.execute(schema.schema_version.insert(), [{"version": version, "applied_at": tx.now}])
        tx.record("ledger.migrate", "schema", {"version": version})
        if version == REPLAYED_FROM:
            snapshot(tx)
    _make_salt(tx)


def _make_salt(tx: Tx) -> None:
    """The fingerprints' salt, made with the ledger (or its upgrade), not by its first
    pledge: two writers side by side would both make one (see Ledger.write)."""
    tx.fingerprint  # noqa: B018 (made on first use)


def snapshot(tx: Tx) -> None:
    """Journal the replayed tables as they stand: where a replay of an older ledger starts.

    A ledger written before its journal carried every change cannot be
    replayed from its first entry; from here on it can.
    """
    for table in changes.replayed_tables():
        columns = [c.name for c in table.columns if not c.info.get("operational")]
        keys = [c.name for c in table.primary_key.columns]
        rows = bulk.fetch_rows(
            tx.conn, sa.select(*[table.c[n] for n in columns]).order_by(*[table.c[k] for k in keys])
        )
        if rows:
            tx.keep(changes.Change(table.name, "insert", columns=columns, rows=rows))
    tx.record(changes.SNAPSHOT, "schema", {"version": REPLAYED_FROM})
