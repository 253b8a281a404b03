"""Our namespace on a shared Stripe account: idempotency keys and metadata from our ids.

Kept apart from the Stripe client so that reports (the refund list) can name
the exact keys without importing stripe-python.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import Ledger, schema

NAMESPACE_KEY = "stripe.namespace"


@dataclass(frozen=True)
class Keys:
    """Idempotency keys and metadata derived from our ids, namespaced per ledger.

    Two campaigns (or a test run and the real one) may share a Stripe account:
    without the namespace, pledge 1 of each would share `pledge-1-customer` and
    Stripe would hand the second one the first one's customer.
    """

    namespace: str

    def key(self, pledge_id: int, suffix: str) -> str:
        return f"{self.namespace}-pledge-{pledge_id}-{suffix}"

    def remainder_refund(self, pledge_id: int, remainder_id: int) -> str:
        """The key for refunding one remainder to the card: stable across retries."""
        return self.key(pledge_id, f"remainder-{remainder_id}-refund")

    def metadata(self, pledge_id: int, **extra: str | int) -> dict[str, str]:
        return {
            "pledge_id": str(pledge_id),
            "ledger": self.namespace,
            **{k: str(v) for k, v in extra.items()},
        }

    def owns(self, metadata: Mapping[str, Any] | None) -> int | None:
        """Our pledge id from an object's metadata, or None if it is not ours."""
        if not metadata or metadata.get("ledger") != self.namespace:
            return None
        raw = str(metadata.get("pledge_id") or "")
        return int(raw) if raw.isdigit() else None


def stored_keys(conn: Connection) -> Keys | None:
    """This ledger's keys if it has ever talked to Stripe (read only)."""
    value = conn.execute(
        sa.select(schema.state.c.value).where(schema.state.c.key == NAMESPACE_KEY)
    ).scalar()
    return Keys(str(value)) if value else None


def ledger_keys(ledger: Ledger) -> Keys:
    """This ledger's namespace, made once and kept in the state table."""
    with ledger.read() as conn:
        found = stored_keys(conn)
    if found is not None:
        return found
    with ledger.write() as tx:
        found = stored_keys(tx.conn)
        if found is not None:
            return found
        value = "fr" + hashlib.sha256(secrets.token_bytes(16)).hexdigest()[:10]
        tx.execute(schema.state.insert().values(key=NAMESPACE_KEY, value=value, updated_at=tx.now))
        tx.record("stripe.namespace", "state", {"namespace": value})
    return Keys(value)
