"""Membership fees: a subscription per member, its invoices, and where it stands today.

Stripe tells us about a fee by events that arrive at least once and in any
order: an invoice paid, a payment failed, the subscription deleted. Each is
applied here once (an invoice is a row keyed by Stripe's invoice id; paid wins
over failed for good, a repeat changes nothing), and the subscription's
summary is recomputed from its invoices after every one, so the same set of
events gives the same rows whatever order they came in.

A fee's standing (current, due, late, lapsed, ended) is not stored: it is read
from the summary, the rules' grace days and the day asked (`standing`), so a
membership lapses on the right day without a nightly job, and a late payment
brings it back at once. No Stripe here: the payments package turns Stripe's
objects into `FeeEvent`s and calls `apply`.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.config import Interval, Rate
from fundraiser.errors import NotFound, UserInputError
from fundraiser.ledger import Tx, bulk, schema

# Where a fee stands, read without SQLAlchemy for the public figures; offered here too.
from fundraiser.membership.standings import SUSPENDED as SUSPENDED
from fundraiser.membership.standings import Fee as Fee
from fundraiser.membership.standings import Places as Places
from fundraiser.membership.standings import Standing as Standing
from fundraiser.membership.standings import fees as fees
from fundraiser.membership.standings import latest_by_member as latest_by_member
from fundraiser.membership.standings import monthly as monthly
from fundraiser.membership.standings import places as places
from fundraiser.membership.standings import standing as standing
from fundraiser.money import Money


class EventKind(enum.StrEnum):
    INVOICE_PAID = "invoice.paid"
    PAYMENT_FAILED = "invoice.payment_failed"
    SUBSCRIPTION_DELETED = "customer.subscription.deleted"
    SUBSCRIPTION_UPDATED = "customer.subscription.updated"  # its plan (so its rate) moved


class InvoiceStatus(enum.StrEnum):
    PAID = "paid"
    FAILED = "failed"
    CLAWED_BACK = "clawed_back"  # paid, then taken back by the member's bank (a lost dispute)


class Outcome(enum.StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"  # seen before: nothing changed
    UNKNOWN = "unknown"  # no subscription of ours by that id (yet): the caller defers it


@dataclass(frozen=True)
class FeeEvent:
    """One Stripe fee event in plain values (dates as ISO text, amounts in minor units)."""

    kind: EventKind
    subscription: str  # Stripe's sub_...
    invoice: str | None = None  # Stripe's in_... (None for a deleted subscription)
    amount: int = 0
    currency: str = ""
    period_start: str = ""  # YYYY-MM-DD
    period_end: str = ""  # YYYY-MM-DD
    at: str = ""  # when it happened (the event's time), ISO
    rate: str = ""  # a subscription updated to one of our plans: that plan's rate


def start(
    tx: Tx,
    *,
    member_number: int,
    rate: Rate,
    amount: Money,
    interval: Interval,
    started_on: str,
    stripe_subscription: str | None = None,
    stripe_customer: str | None = None,
) -> int:
    """A member's fee subscription; the same Stripe subscription twice is the same row."""
    if stripe_subscription is not None:
        found = _by_stripe(tx.conn, stripe_subscription)
        if found is not None:
            return int(found.id)
    row = {
        "member_number": member_number,
        "stripe_subscription": stripe_subscription,
        "stripe_customer": stripe_customer,
        "rate": rate.value,
        "amount": amount.amount,
        "currency": amount.currency,
        "interval": interval.value,
        "started_on": started_on,
        "created_at": tx.now,
        "updated_at": tx.now,
    }
    tx.insert(schema.fee_subscriptions, list(row), [tuple(row.values())])
    sub_id = int(
        tx.conn.execute(sa.select(sa.func.max(schema.fee_subscriptions.c.id))).scalar() or 0
    )
    tx.record(
        "fees.start",
        f"member:{member_number}",
        {
            "subscription": sub_id,
            "rate": rate.value,
            "amount": amount.amount,
            "currency": amount.currency,
            "interval": interval.value,
        },
    )
    return sub_id


# The webhook's hot path reads through the driver (ledger.bulk): 50,000 fee
# events a month, each a few lookups, cost more in building SQLAlchemy
# statements than in the database.
_SUBSCRIPTION = (
    "SELECT id, currency, paid_through, failing_since, ended_at, rate, amount "
    "FROM fee_subscriptions WHERE stripe_subscription = ?"
)
_INVOICE = "SELECT status FROM fee_invoices WHERE id = ?"
_SUMMARY = (
    "SELECT MAX(CASE WHEN status = 'paid' THEN period_end END), "
    "MIN(CASE WHEN status IN ('failed', 'clawed_back') THEN period_start END) "
    "FROM fee_invoices WHERE subscription_id = ?"
)
assert [s.value for s in InvoiceStatus] == ["paid", "failed", "clawed_back"]


def _by_stripe(conn: Connection, stripe_subscription: str) -> Any:
    return bulk.first_row(conn, _SUBSCRIPTION, (stripe_subscription,))


def apply(tx: Tx, event: FeeEvent) -> Outcome:
    """Apply one fee event, once: the function the webhook and `stripe sync` call."""
    sub = _by_stripe(tx.conn, event.subscription)
    if sub is None:
        return Outcome.UNKNOWN
    if event.kind == EventKind.SUBSCRIPTION_DELETED:
        if sub.ended_at is not None and sub.ended_at <= event.at:
            return Outcome.DUPLICATE
        tx.update(schema.fee_subscriptions, {"id": sub.id}, ended_at=event.at, updated_at=tx.now)
        tx.record("fees.ended", f"fee:{sub.id}", {"subscription": sub.id, "at": event.at})
        return Outcome.APPLIED
    if event.kind == EventKind.SUBSCRIPTION_UPDATED:
        return _updated(tx, sub, event)
    if not event.invoice or not event.period_start or not event.period_end:
        raise UserInputError(f"fee event for {event.subscription} names no invoice or period")
    status = InvoiceStatus.PAID if event.kind == EventKind.INVOICE_PAID else InvoiceStatus.FAILED
    invoice = bulk.first(tx.conn, _INVOICE, (event.invoice,))
    if invoice is not None and (
        invoice[0] in (InvoiceStatus.PAID.value, InvoiceStatus.CLAWED_BACK.value)
        or status == InvoiceStatus.FAILED
    ):
        # Paid stays paid, a failure repeated is the same failure, and money the bank
        # took back is not paid again by replaying the event that once paid it.
        return Outcome.DUPLICATE
    if invoice is None:
        row = {
            "id": event.invoice,
            "subscription_id": sub.id,
            "status": status.value,
            "amount": event.amount,
            "currency": event.currency or sub.currency,
            "period_start": event.period_start,
            "period_end": event.period_end,
            "paid_at": event.at if status == InvoiceStatus.PAID else None,
            "created_at": tx.now,
            "updated_at": tx.now,
        }
        tx.insert(schema.fee_invoices, list(row), [tuple(row.values())])
    else:  # failed before, paid now
        tx.update(
            schema.fee_invoices,
            {"id": event.invoice},
            status=status.value,
            paid_at=event.at,
            updated_at=tx.now,
        )
    _summarise(tx, sub, event, was_failed=invoice is not None)
    tx.record(
        f"fees.{status.value}",
        f"fee:{sub.id}",
        {
            "subscription": sub.id,
            "invoice": event.invoice,
            "amount": event.amount,
            "period": [event.period_start, event.period_end],
        },
    )
    return Outcome.APPLIED


def _summarise(tx: Tx, sub: Any, event: FeeEvent, *, was_failed: bool) -> None:
    """paid_through (the latest paid period's end) and failing_since (the earliest failed
    period's start) after one invoice changed: the same aggregates over the
    invoices whatever their order, kept by max and min without reading them all
    again, except when the earliest failure is the one now paid."""
    paid_through, failing_since = sub.paid_through, sub.failing_since
    if event.kind == EventKind.INVOICE_PAID:
        paid_through = max(paid_through or "", event.period_end)
        if was_failed and failing_since == event.period_start:
            found = bulk.first(tx.conn, _SUMMARY, (sub.id,))
            failing_since = found[1] if found is not None else None
    else:
        failing_since = min(failing_since or event.period_start, event.period_start)
    if (paid_through, failing_since) != (sub.paid_through, sub.failing_since):
        tx.update(
            schema.fee_subscriptions,
            {"id": sub.id},
            paid_through=paid_through,
            failing_since=failing_since,
            updated_at=tx.now,
        )


def claw_back(tx: Tx, invoice_id: str, *, dispute: str, at: str) -> Outcome:
    """A fee payment the member's bank took back (a dispute lost): that period is
    unpaid again, so the member is late from its start and lapses after the grace
    days, as with a failed payment. Once per invoice."""
    row = tx.conn.execute(
        sa.select(schema.fee_invoices.c.status, schema.fee_invoices.c.subscription_id).where(
            schema.fee_invoices.c.id == invoice_id
        )
    ).first()
    if row is None:
        return Outcome.UNKNOWN
    if row.status != InvoiceStatus.PAID.value:
        return Outcome.DUPLICATE
    tx.update(
        schema.fee_invoices,
        {"id": invoice_id},
        status=InvoiceStatus.CLAWED_BACK.value,
        updated_at=tx.now,
    )
    paid_through, failing_since = bulk.first(tx.conn, _SUMMARY, (row.subscription_id,)) or (
        None,
        None,
    )
    tx.update(
        schema.fee_subscriptions,
        {"id": row.subscription_id},
        paid_through=paid_through,
        failing_since=failing_since,
        updated_at=tx.now,
    )
    tx.record(
        "fees.clawed_back",
        f"fee:{row.subscription_id}",
        {"subscription": row.subscription_id, "invoice": invoice_id, "dispute": dispute, "at": at},
    )
    return Outcome.APPLIED


def _updated(tx: Tx, sub: Any, event: FeeEvent) -> Outcome:
    """A subscription whose plan moved at Stripe (from the member's page, or by hand in
    Stripe's dashboard): its rate and amount as Stripe now bills them. An event older
    than the last rate change recorded is stale (Stripe may deliver out of order)."""
    rate = event.rate or sub.rate
    if (rate, event.amount) == (sub.rate, sub.amount):
        return Outcome.DUPLICATE
    tx.flush()  # the journal is read: entries a batch holds back go in first
    last = _last_rate_change(tx.conn, int(sub.id))
    if last is not None and event.at and _instant(event.at) < _instant(last):
        return Outcome.DUPLICATE
    change_rate(tx, int(sub.id), Rate(rate), Money(event.amount, sub.currency), at=event.at)
    return Outcome.APPLIED


def _instant(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _last_rate_change(conn: Connection, subscription_id: int) -> str | None:
    """When the latest rate change recorded for this subscription happened."""
    journal = schema.journal.c
    found = conn.execute(
        sa.select(journal.data)
        .where(journal.action == "fees.rate", journal.subject == f"fee:{subscription_id}")
        .order_by(journal.seq.desc())
        .limit(1)
    ).scalar()
    if found is None:
        return None
    at = json.loads(found).get("at")
    return str(at) if at else None


def change_rate(
    tx: Tx, subscription_id: int, rate: Rate, amount: Money, *, at: str | None = None
) -> None:
    """A member moves between fee rates (from the next period, as Stripe bills it).
    `at`: when it happened at Stripe (default: now)."""
    done = tx.update(
        schema.fee_subscriptions,
        {"id": subscription_id},
        rate=rate.value,
        amount=amount.amount,
        updated_at=tx.now,
    )
    if not done:
        raise NotFound(f"fee subscription {subscription_id} does not exist")
    tx.record(
        "fees.rate",
        f"fee:{subscription_id}",
        {
            "subscription": subscription_id,
            "rate": rate.value,
            "amount": amount.amount,
            "at": at or tx.now,
        },
    )


# -- where fees stand, for the board (the rule itself: membership/standings.py) -----


def suspended(conn: Connection, *, today: date, grace_days: int) -> dict[int, str]:
    """Members the rules suspend today (fee lapsed or ended), with why, in words."""
    why: dict[int, str] = {}
    for number, fee in latest_by_member(fees(conn, today=today, grace_days=grace_days)).items():
        if fee.standing == Standing.LAPSED:
            why[number] = f"fee unpaid since {fee.overdue_since}, lapsed after {fee.lapses_on}"
        elif fee.standing == Standing.ENDED:
            why[number] = f"fee ended on {(fee.ended_at or '')[:10]}"
    return why


@dataclass(frozen=True)
class Report:
    """The board's fee report: counts by standing, and the fees that need a look."""

    today: str
    counts: dict[str, int]
    per_month: Money  # what the fees now current or due bring in a month
    attention: list[Fee]  # due, late and lapsed, oldest overdue first

    def as_json(self) -> dict[str, Any]:
        return {
            "today": self.today,
            "counts": self.counts,
            "per_month": self.per_month.amount,
            "currency": self.per_month.currency,
            "fees": [f.as_json() for f in self.attention],
        }


def report(conn: Connection, *, today: date, grace_days: int, currency: str) -> Report:
    """Fees due, late and lapsed on `today`, for `fundraiser members fees`."""
    found = fees(conn, today=today, grace_days=grace_days)
    counts = {s.value: 0 for s in Standing}
    per_month = 0
    for fee in found:
        counts[fee.standing.value] += 1
        if fee.standing in (Standing.CURRENT, Standing.DUE, Standing.LATE):
            per_month += monthly(fee.amount.amount, fee.interval)
    attention = sorted(
        (f for f in found if f.standing in (Standing.DUE, Standing.LATE, Standing.LAPSED)),
        key=lambda f: (f.overdue_since or "", f.member_number or 0),
    )
    return Report(today.isoformat(), counts, Money(per_month, currency), attention)
