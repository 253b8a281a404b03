"""Stripe's invoices and subscriptions as membership fee events.

Stripe's shapes moved between API versions: an invoice names its subscription
at `subscription` (older) or `parent.subscription_details.subscription`
(newer), and the period a fee pays for is its line's `period` (the invoice's
own period_start/period_end is when items were added). Both are read here, so
the domain (fundraiser.membership.fees) sees one plain `FeeEvent`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger import Tx, schema
from fundraiser.membership import fees
from fundraiser.membership.fees import EventKind, FeeEvent
from fundraiser.payments.plans import rate_of

#: Stripe's event types that are fee events, and what each is to us. Real Stripe
#: sends invoice.paid and invoice.payment_succeeded for the same invoice; the
#: emulator only the second: the invoice id makes them one.
KINDS: dict[str, EventKind] = {
    "invoice.paid": EventKind.INVOICE_PAID,
    "invoice.payment_succeeded": EventKind.INVOICE_PAID,
    "invoice.payment_failed": EventKind.PAYMENT_FAILED,
    "customer.subscription.deleted": EventKind.SUBSCRIPTION_DELETED,
    "customer.subscription.updated": EventKind.SUBSCRIPTION_UPDATED,
}

#: A subscription in these states has ended at Stripe, whatever event says so.
_ENDED = frozenset({"canceled", "incomplete_expired"})


def _id(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return str(found) if found else None
    return None


def _day(timestamp: Any) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).date().isoformat()


def _moment(timestamp: Any) -> str:
    return datetime.fromtimestamp(int(timestamp), UTC).isoformat().replace("+00:00", "Z")


def subscription_of(invoice: Mapping[str, Any]) -> str | None:
    found = _id(invoice.get("subscription"))
    if found:
        return found
    details = (invoice.get("parent") or {}).get("subscription_details") or {}
    return _id(details.get("subscription"))


def _period(invoice: Mapping[str, Any]) -> tuple[Any, Any]:
    lines = (invoice.get("lines") or {}).get("data") or []
    for line in lines:
        period = line.get("period") or {}
        if period.get("start") is not None and period.get("end") is not None:
            return period["start"], period["end"]
    return invoice.get("period_start"), invoice.get("period_end")


def fee_event(kind: str, obj: Mapping[str, Any], created: int) -> FeeEvent | None:
    """The fee event a Stripe event is, or None when it is not about a subscription."""
    ours = KINDS.get(kind)
    if ours is None:
        return None
    if ours == EventKind.SUBSCRIPTION_DELETED:
        sub = _id(obj.get("id"))
        ended = obj.get("ended_at") or obj.get("canceled_at") or created
        return None if sub is None else FeeEvent(ours, sub, at=_moment(ended))
    if ours == EventKind.SUBSCRIPTION_UPDATED:
        return _updated(obj, created)
    sub = subscription_of(obj)
    invoice = _id(obj.get("id"))
    start, end = _period(obj)
    if sub is None or invoice is None or start is None or end is None:
        return None
    amount = obj.get("amount_paid") if ours == EventKind.INVOICE_PAID else obj.get("amount_due")
    return FeeEvent(
        ours,
        sub,
        invoice,
        int(amount or 0),
        str(obj.get("currency") or "").upper(),
        _day(start),
        _day(end),
        _moment(created),
    )


def _updated(obj: Mapping[str, Any], created: int) -> FeeEvent | None:
    """A subscription updated: ended (then it is a deletion), or billed by another
    plan (Stripe's newer shape names it a price on the item; older ones a plan)."""
    sub = _id(obj.get("id"))
    if sub is None:
        return None
    if str(obj.get("status") or "") in _ENDED:
        ended = obj.get("ended_at") or obj.get("canceled_at") or created
        return FeeEvent(EventKind.SUBSCRIPTION_DELETED, sub, at=_moment(ended))
    items = (obj.get("items") or {}).get("data") or []
    billed = (items[0].get("price") or items[0].get("plan")) if items else obj.get("plan")
    if not isinstance(billed, Mapping):
        return None
    amount = billed.get("unit_amount", billed.get("amount"))
    if amount is None:
        return None
    return FeeEvent(
        EventKind.SUBSCRIPTION_UPDATED,
        sub,
        amount=int(amount),
        currency=str(billed.get("currency") or "").upper(),
        at=_moment(created),
        rate=rate_of(str(billed.get("id") or "")) or "",
    )


#: The invoice events that carry the charge a fee was paid with.
_PAID_KINDS = ("invoice.paid", "invoice.payment_succeeded")


def _paid_with(invoice: Mapping[str, Any]) -> set[str]:
    """The charge and payment intent ids an invoice was paid with (older shapes name
    them on the invoice; newer ones list its payments)."""
    found = {_id(invoice.get("charge")), _id(invoice.get("payment_intent"))}
    for paid in (invoice.get("payments") or {}).get("data") or []:
        payment = paid.get("payment") or {}
        found |= {_id(payment.get("charge")), _id(payment.get("payment_intent"))}
    return {f for f in found if f}


def invoice_for(conn: Connection, charge: str | None, intent: str | None) -> str | None:
    """The fee invoice paid by this charge or payment intent, from the invoice events
    we stored (a dispute names the charge, not the invoice)."""
    wanted = {x for x in (charge, intent) if x}
    if not wanted:
        return None
    events = schema.stripe_events.c
    mentions = sa.or_(*[events.payload.contains(x, autoescape=True) for x in sorted(wanted)])
    for payload in conn.execute(
        sa.select(events.payload).where(events.type.in_(_PAID_KINDS), mentions)
    ).scalars():
        invoice = (json.loads(payload).get("data") or {}).get("object") or {}
        if _paid_with(invoice) & wanted and invoice.get("id"):
            return str(invoice["id"])
    return None


def apply_dispute(tx: Tx, dispute: Mapping[str, Any]) -> fees.Outcome | None:
    """A dispute of a fee payment: lost, the fee is clawed back; open or won, nothing
    changes. None: the disputed payment is not a fee we know (yet)."""
    invoice = invoice_for(tx.conn, _id(dispute.get("charge")), _id(dispute.get("payment_intent")))
    if invoice is None:
        return None
    if str(dispute.get("status") or "") != "lost":
        return fees.Outcome.DUPLICATE
    at = _moment(dispute.get("created") or 0)
    return fees.claw_back(tx, invoice, dispute=str(dispute.get("id") or ""), at=at)


def apply_fee(tx: Tx, kind: str, obj: Mapping[str, Any], created: int) -> fees.Outcome | None:
    """Apply a Stripe fee event in the caller's write; None when it is not a fee event."""
    event = fee_event(kind, obj, created)
    return None if event is None else fees.apply(tx, event)
