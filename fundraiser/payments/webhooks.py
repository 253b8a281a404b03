"""Stripe webhooks: verify the signature over the raw body, store once, apply.

The event is stored (by its id, the primary key) and applied in one
transaction: a delivery either leaves both or neither, so Stripe's retry of a
failed one is safe, and a second delivery of a stored event changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, replace
from typing import Any

from fundraiser.errors import WebhookRejected
from fundraiser.ledger import Ledger, Tx, bulk
from fundraiser.payments.deferred import any_waiting, defer, refs_of, retry_deferred
from fundraiser.payments.events import Context, Outcome, apply_event, id_of

#: Stripe's default: a signature older (or newer) than this is refused.
TOLERANCE = 300


def signature_header(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """The Stripe-Signature header Stripe would send (tests and the benchmark use it)."""
    stamp = int(time.time()) if timestamp is None else timestamp
    digest = hmac.new(secret.encode(), f"{stamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={stamp},v1={digest}"


def verify(
    payload: bytes, header: str | None, secret: str, *, now: float, tolerance: int = TOLERANCE
) -> dict[str, Any]:
    """The event, if the header signs this exact body recently enough; else raise."""
    if not header:
        raise WebhookRejected("no Stripe-Signature header")
    stamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            stamp = int(value)
        elif key == "v1":
            signatures.append(value)
    if stamp is None or not signatures:
        raise WebhookRejected("the Stripe-Signature header has no timestamp or v1 signature")
    # One call into OpenSSL: an HMAC object costs a delivery more than the digest.
    expected = hmac.digest(secret.encode(), b"%d." % stamp + payload, "sha256").hex()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        raise WebhookRejected("the signature does not match the body")
    if abs(now - stamp) > tolerance:
        raise WebhookRejected(
            f"the signature is {int(abs(now - stamp))} s old (limit {tolerance} s)"
        )
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise WebhookRejected("the body is not JSON") from None
    if (
        not isinstance(event, dict)
        or not str(event.get("id") or "").startswith("evt_")
        or not isinstance(event.get("type"), str)
        or not isinstance(event.get("created"), int)
        or not isinstance((event.get("data") or {}).get("object"), dict)
    ):
        raise WebhookRejected("the body is not a Stripe event")
    return event


@dataclass(frozen=True)
class Receipt:
    event_id: str
    type: str
    duplicate: bool
    outcome: Outcome | None = None


def store_and_apply(tx: Tx, ctx: Context, event: dict[str, Any], raw: str) -> Receipt:
    """Store the event once and apply it, in the caller's transaction."""
    event_id = str(event["id"])
    kind = str(event["type"])
    # Stored and found a duplicate in one statement: no row stored means its id was
    # stored before (SQLite and PostgreSQL both say so in the count of rows written).
    stored = bulk.run(
        tx.conn,
        "INSERT INTO stripe_events (id, type, livemode, created, payload, received_at, "
        "applied_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
        (event_id, kind, bool(event.get("livemode")), int(event["created"]), raw, tx.now, tx.now),
    )
    if stored == 0:
        return Receipt(event_id, kind, duplicate=True)
    outcome = apply_event(tx, ctx, event)
    if outcome is Outcome.APPLIED and kind == "payment_intent.succeeded" and ctx.after_payment:
        metadata = (event["data"]["object"] or {}).get("metadata") or {}
        paid = ctx.keys.owns(metadata)
        # Only a join's payment admits (payments/joining.py makes every one of them
        # with this purpose): a pledge's payment does not look for a join.
        if paid is not None and metadata.get("purpose") == "join":
            ctx.after_payment(tx, paid)
    if outcome is Outcome.DEFERRED:
        defer(tx, ctx, event)
        bulk.run(tx.conn, "UPDATE stripe_events SET applied_at = NULL WHERE id = ?", (event_id,))
    tx.record("stripe.event", f"event:{event_id}", {"type": kind, "outcome": outcome.value})
    if outcome is Outcome.APPLIED and any_waiting(tx):  # usually none: no refs to make
        retry_deferred(tx, ctx, refs_of(ctx, event))
    return Receipt(event_id, kind, duplicate=False, outcome=outcome)


Item = tuple[Context, dict[str, Any], str]


def apply_batch(ledger: Ledger, items: list[Item]) -> list[Receipt | Exception]:
    """Store and apply many verified events in one commit (group commit).

    One commit (one fsync) for a batch keeps the endpoint fast under bursts.
    If anything in the batch fails, nothing of it is kept and each event is
    tried again in its own transaction, so one bad event cannot sink others.
    """
    try:
        with ledger.write() as tx:
            return [store_and_apply(tx, ctx, event, raw) for ctx, event, raw in items]
    except Exception as exc:
        if len(items) == 1:
            return [exc]
    results: list[Receipt | Exception] = []
    for ctx, event, raw in items:
        try:
            with ledger.write() as tx:
                results.append(store_and_apply(tx, ctx, event, raw))
        except Exception as exc:
            results.append(exc)
    return results


def needs_prepare(event: dict[str, Any]) -> bool:
    """True if applying this event needs a Stripe call first (see `prepare`)."""
    kind = str(event.get("type") or "")
    return kind.startswith("refund.") or kind == "charge.refund.updated"


def prepare(ctx: Context, event: dict[str, Any]) -> Context:
    """Fetch what applying needs from Stripe before the transaction starts.

    refund.* events carry one refund, not the charge's refunded total; the
    charge is re-read here so no API call happens while the ledger is locked.
    """
    if not needs_prepare(event):
        return ctx
    charge_id = id_of(((event.get("data") or {}).get("object") or {}).get("charge"))
    if ctx.fetch_charge is None or charge_id is None:
        return ctx
    charge = ctx.fetch_charge(charge_id)
    return replace(ctx, fetch_charge=lambda _id: charge)


def receive(
    ledger: Ledger,
    ctx: Context,
    payload: bytes,
    header: str | None,
    secret: str,
    *,
    now: float | None = None,
) -> Receipt:
    """Verify, store and apply one delivery; raise WebhookRejected on a bad signature."""
    event = verify(payload, header, secret, now=time.time() if now is None else now)
    ctx = prepare(ctx, event)
    with ledger.write() as tx:
        return store_and_apply(tx, ctx, event, payload.decode("utf-8"))
