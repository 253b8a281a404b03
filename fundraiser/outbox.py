"""The outbox: mail queued in the ledger, in the same transaction as its cause.

A message is queued once per cause (its dedupe key), so rerunning a command
that already queued it adds nothing. `fundraiser mail send` delivers them.
"""

from __future__ import annotations

import enum
import json
from typing import Any, NamedTuple

import sqlalchemy as sa

from fundraiser.ledger import Tx, bulk, changes, schema


class Kind(enum.StrEnum):
    WELCOME = "welcome"
    PLEDGE_RECEIVED = "pledge_received"
    PAYMENT_RECEIVED = "payment_received"  # a bank transfer for an offline pledge
    PAYMENT_FAILED = "payment_failed"
    CAMPAIGN_FAILED = "campaign_failed"
    REFUND_SENT = "refund_sent"
    PLEDGE_CANCELLED = "pledge_cancelled"  # confirms a cancel, by the backer or an organizer
    APPLICATION_RECEIVED = "application_received"  # a joiner paid; the board will decide
    APPLICATION_DECLINED = "application_declined"  # the board did not admit a joiner
    MEMBER_SIGN_IN = "member_sign_in"  # a member's link to their own page
    MEMBER_EMAIL = "member_email"  # confirm a new email address (sent to the new one)
    FEE_FAILED = "fee_failed"  # a membership fee payment failed: change the card
    FEE_LAPSED = "fee_lapsed"  # the grace period ended: the membership lapsed


class MailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up after permanent errors or too many tries


_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # built once, used per message
_QUEUED = MailStatus.QUEUED.value


class Row(NamedTuple):
    """One outbox row, in column order: a tuple inserts twice as fast as a dict."""

    created_at: str
    kind: str
    dedupe_key: str
    to_email: str
    to_name: str
    data: str
    pledge_id: int | None
    member_number: int | None
    status: str
    attempts: int
    next_attempt_at: str


def message(
    kind: Kind,
    dedupe_key: str,
    *,
    to_email: str,
    to_name: str,
    data: dict[str, Any] | str,
    now: str,
    pledge_id: int | None = None,
    member_number: int | None = None,
) -> Row:
    """One outbox row, ready for `queue_many`; `data` may come encoded already
    (as `encode_data` would: an issue makes thousands at once)."""
    return Row(
        now,
        kind.value,
        dedupe_key,
        to_email,
        to_name,
        data if isinstance(data, str) else _JSON.encode(data),
        pledge_id,
        member_number,
        _QUEUED,
        0,
        now,
    )


def encode_data(data: dict[str, Any]) -> str:
    """A message's template data as the outbox stores it (sorted keys)."""
    return _JSON.encode(data)


#: A member's mail goes to the member's own address and name, as the register holds them.
_TO_MEMBER = changes.Copy("members", "member_number", {"to_email": "email", "to_name": "name"})


def queue_many(tx: Tx, rows: list[Row], *, record: bool = True) -> int:
    """Queue messages whose dedupe key is new; returns how many were queued.

    With `record=False` the caller journals them with its own change.
    """
    if not rows:
        return 0
    known = _known_keys(tx, rows)
    fresh = [r for r in rows if r.dedupe_key not in known]
    tx.insert(schema.outbox, Row._fields, fresh)
    if fresh and record:
        kinds = sorted({r.kind for r in fresh})
        tx.record("mail.queue", "outbox", {"count": len(fresh), "kinds": kinds})
    return len(fresh)


def queue_to_members(tx: Tx, kind: Kind, mail: list[tuple[str, str, int]]) -> int:
    """Queue one message of `kind` per (dedupe key, data, member number) whose key is
    new, each addressed to its member as the members table holds them; how many
    were queued. The caller journals them with its own change (an issue's welcome).

    Every row shares the same kind, moment and state: bound once, written once in
    the journal, so each row is its key, its data and its member.
    """
    if not mail:
        return 0
    known = _known_kinds_keys(tx, [kind.value])
    fresh = [m for m in mail if m[0] not in known] if known else mail
    shared = {
        "created_at": tx.now,
        "kind": kind.value,
        "pledge_id": None,
        "status": _QUEUED,
        "attempts": 0,
        "next_attempt_at": tx.now,
    }
    columns = ("dedupe_key", "data", "member_number")
    tx.insert(schema.outbox, columns, fresh, shared, copy=_TO_MEMBER)
    return len(fresh)


def _known_keys(tx: Tx, rows: list[Row]) -> set[str]:
    """The dedupe keys among these rows that the outbox already holds."""
    if len(rows) <= 20:
        # One mail per webhook is the common case: a lookup per key through the
        # driver costs microseconds, building an IN query in SQLAlchemy hundreds.
        sql = "SELECT 1 FROM outbox WHERE dedupe_key = ?"
        return {r.dedupe_key for r in rows if bulk.first(tx.conn, sql, (r.dedupe_key,))}
    if len(rows) <= 500:
        keys = [r.dedupe_key for r in rows]
        query = sa.select(schema.outbox.c.dedupe_key).where(schema.outbox.c.dedupe_key.in_(keys))
        return set(tx.execute(query).scalars())
    # Many rows (an issue's welcome mail): one scan of their kinds beats
    # hundreds of IN queries, each with thousands of bound keys.
    return _known_kinds_keys(tx, sorted({r.kind for r in rows}))


def _known_kinds_keys(tx: Tx, kinds: list[str]) -> set[str]:
    """Every dedupe key the outbox holds for messages of these kinds."""
    query = sa.select(schema.outbox.c.dedupe_key).where(schema.outbox.c.kind.in_(kinds))
    return {key for (key,) in bulk.fetch_rows(tx.conn, query)}


def queue(tx: Tx, kind: Kind, dedupe_key: str, **fields: Any) -> bool:
    """Queue one message unless its dedupe key was queued before."""
    return queue_many(tx, [message(kind, dedupe_key, now=tx.now, **fields)]) == 1


def drop_queued(tx: Tx, pledge_id: int, kind: Kind) -> int:
    """Delete a pledge's messages of `kind` not yet sent (a mail overtaken by events).

    Only queued ones: a message a send run has claimed is on its way already.
    """
    waiting = tx.execute(
        sa.select(schema.outbox.c.id).where(
            schema.outbox.c.pledge_id == pledge_id,
            schema.outbox.c.kind == kind.value,
            schema.outbox.c.status == _QUEUED,
        )
    ).scalars()
    # By id: which mail is still queued is the sender's business, not the journal's.
    done = tx.delete(schema.outbox, {"id": list(waiting)})
    if done:
        tx.record("mail.drop", "outbox", {"count": done, "kind": kind.value, "pledge": pledge_id})
    return done
