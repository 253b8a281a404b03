"""Stripe events we cannot match yet (a refund before its payment), kept and retried.

A deferred event is kept in the state table under one key per object it names,
`deferred:<object id>:<event id>`, so an event that teaches us an id retries
only the events waiting for that id (an index range scan), never all of them.

Usually none waits. A write found with none waiting is remembered until it
defers one, so a batch of webhooks (one write) asks once, not once an event:
only `defer` adds a waiting event, and a write is one writer's (SQLite's one
writer, or the whole-ledger lock webhooks take on PostgreSQL).
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import Tx, bulk, schema
from fundraiser.payments.events import Context, Outcome, apply_event, id_of

_DEFERRED = "deferred:"
#: Writes that found no event waiting and have deferred none since.
_NONE_WAITING: weakref.WeakSet[Tx] = weakref.WeakSet()


def refs_of(ctx: Context, event: Mapping[str, Any]) -> list[str]:
    """The ids an event's object names: itself, its charge and intent, our pledge."""
    obj = (event.get("data") or {}).get("object") or {}
    names = ("id", "latest_charge", "charge", "payment_intent", "subscription")
    refs = [id_of(obj.get(name)) for name in names]
    pledge_id = ctx.keys.owns(obj.get("metadata"))
    found = [r for r in refs if r]
    if pledge_id is not None:
        found.append(f"pledge-{pledge_id}")
    return sorted(set(found))


def _prefix(ref: str) -> tuple[str, str]:
    low = f"{_DEFERRED}{ref}:"
    return low, low[:-1] + ";"


def defer(tx: Tx, ctx: Context, event: Mapping[str, Any]) -> None:
    _NONE_WAITING.discard(tx)
    event_id = str(event["id"])
    for ref in refs_of(ctx, event):
        key = f"{_DEFERRED}{ref}:{event_id}"
        if (
            tx.execute(sa.select(schema.state.c.key).where(schema.state.c.key == key)).first()
            is None
        ):
            tx.execute(schema.state.insert().values(key=key, value=event_id, updated_at=tx.now))


def any_waiting(tx: Tx) -> bool:
    """Whether any event waits (once a write while none does: see above)."""
    if tx in _NONE_WAITING:
        return False
    found = bulk.first(
        tx.conn,
        "SELECT 1 FROM state WHERE key >= ? AND key < ? LIMIT 1",
        (_DEFERRED, _DEFERRED[:-1] + ";"),
    )
    if found is None:
        _NONE_WAITING.add(tx)
    return found is not None


def _waiting(tx: Tx, refs: list[str] | None) -> list[str]:
    if refs is None:
        low, high = _DEFERRED, _DEFERRED[:-1] + ";"
        rows = tx.execute(
            sa.select(schema.state.c.value).where(
                schema.state.c.key >= low, schema.state.c.key < high
            )
        ).scalars()
        return sorted(set(rows))
    found: set[str] = set()
    for ref in refs:
        low, high = _prefix(ref)
        found.update(
            tx.execute(
                sa.select(schema.state.c.value).where(
                    schema.state.c.key >= low, schema.state.c.key < high
                )
            ).scalars()
        )
    return sorted(found)


def retry_deferred(tx: Tx, ctx: Context, refs: list[str] | None = None) -> int:
    """Apply deferred events waiting for `refs` (None: all) that now match.

    Repeats while applying one teaches us ids another is waiting for.
    """
    applied = 0
    if refs is not None and not any_waiting(tx):
        return 0  # the usual case: nothing is waiting
    while True:
        progress: list[str] = []
        for event_id in _waiting(tx, refs):
            payload = tx.execute(
                sa.select(schema.stripe_events.c.payload).where(
                    schema.stripe_events.c.id == event_id
                )
            ).scalar()
            event = json.loads(payload) if payload is not None else {"id": event_id}
            outcome = apply_event(tx, ctx, event) if payload is not None else Outcome.IGNORED
            if outcome is Outcome.DEFERRED:
                continue
            for ref in refs_of(ctx, event):
                tx.execute(
                    schema.state.delete().where(
                        schema.state.c.key == f"{_DEFERRED}{ref}:{event_id}"
                    )
                )
            tx.execute(
                schema.stripe_events.update()
                .where(schema.stripe_events.c.id == event_id)
                .values(applied_at=tx.now)
            )
            applied += 1
            if outcome is Outcome.APPLIED:
                progress.extend(refs_of(ctx, event))
        if not progress:
            return applied
        if refs is not None:
            refs = sorted(set(progress))


def deferred_count(conn: Connection) -> int:
    return int(
        conn.execute(
            sa.select(sa.func.count(sa.distinct(schema.state.c.value))).where(
                schema.state.c.key >= _DEFERRED, schema.state.c.key < _DEFERRED[:-1] + ";"
            )
        ).scalar()
        or 0
    )
