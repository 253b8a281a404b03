"""The outbox: mail queued in the ledger, in the same transaction as its cause.

A message is queued once per cause (its dedupe key), so rerunning a command
that already queued it adds nothing. `fundraiser mail send` delivers them.
"""

from __future__ import annotations

import enum
import json
from typing import Any

import sqlalchemy as sa

from fundraiser.ledger import Tx, bulk_insert, outbox


class Kind(enum.StrEnum):
    WELCOME = "welcome"
    PLEDGE_RECEIVED = "pledge_received"
    PAYMENT_FAILED = "payment_failed"
    CAMPAIGN_FAILED = "campaign_failed"
    REFUND_SENT = "refund_sent"


class MailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"  # gave up after permanent errors or too many tries


_JSON = json.JSONEncoder(sort_keys=True, ensure_ascii=False)  # built once, used per message
_QUEUED = MailStatus.QUEUED.value


def message(
    kind: Kind,
    dedupe_key: str,
    *,
    to_email: str,
    to_name: str,
    data: dict[str, Any],
    now: str,
    pledge_id: int | None = None,
    member_number: int | None = None,
) -> dict[str, Any]:
    """One outbox row, ready for `queue_many`."""
    return {
        "created_at": now,
        "kind": kind.value,
        "dedupe_key": dedupe_key,
        "to_email": to_email,
        "to_name": to_name,
        "data": _JSON.encode(data),
        "pledge_id": pledge_id,
        "member_number": member_number,
        "status": _QUEUED,
        "attempts": 0,
        "next_attempt_at": now,
        "last_error": None,
        "sent_at": None,
        "message_id": None,
    }


def queue_many(tx: Tx, rows: list[dict[str, Any]]) -> int:
    """Queue messages whose dedupe key is new; returns how many were queued."""
    if not rows:
        return 0
    keys = [r["dedupe_key"] for r in rows]
    known: set[str] = set()
    for start in range(0, len(keys), 5000):
        chunk = keys[start : start + 5000]
        known.update(
            tx.execute(sa.select(outbox.c.dedupe_key).where(outbox.c.dedupe_key.in_(chunk)))
            .scalars()
            .all()
        )
    fresh = [r for r in rows if r["dedupe_key"] not in known]
    bulk_insert(tx.conn, outbox, fresh)
    if fresh:
        kinds = sorted({r["kind"] for r in fresh})
        tx.record("mail.queue", "outbox", {"count": len(fresh), "kinds": kinds})
    return len(fresh)


def queue(tx: Tx, kind: Kind, dedupe_key: str, **fields: Any) -> bool:
    """Queue one message unless its dedupe key was queued before."""
    return queue_many(tx, [message(kind, dedupe_key, now=tx.now, **fields)]) == 1
