"""Apply what Stripe tells us to the ledger: idempotent and order-independent.

Everything here runs inside the caller's write transaction and works on plain
dicts (an event's object, or an object re-read from the API). The rules that
make any delivery order converge on the same ledger:

- A pledge only moves along the TRANSITIONS table; a move that is not allowed
  any more (an old "failed" after "paid") is stale and ignored.
- Amounts only grow: the refunded total is Stripe's cumulative figure, capped
  at what was paid, and never lowered.
- A dispute's outcome is computed from every event stored about it, so a late
  "created" after "closed" cannot reopen it.
- An object we cannot match yet (a refund before its payment) is deferred and
  retried after the next event that teaches us new ids.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import outbox, pledges
from fundraiser.ledger import Tx, bulk, schema
from fundraiser.membership import dunning, fees
from fundraiser.money import Money
from fundraiser.payments import fees as fee_kinds
from fundraiser.payments import orphans
from fundraiser.pledges import CHARGEABLE, ENDED_UNPAID, HELD, RECEIVED, TRANSITIONS, Status
from fundraiser.register import EntryKind
from fundraiser.stripekeys import Keys

#: Charge outcomes we treat as "the bank wants the backer present".
AUTH_REQUIRED = "authentication_required"
_DISPUTE_CLOSED = {"won", "lost", "warning_closed"}


class Outcome(enum.StrEnum):
    APPLIED = "applied"  # the ledger changed
    UNCHANGED = "unchanged"  # ours, but nothing to do (already there, or stale)
    IGNORED = "ignored"  # not about any pledge of ours
    DEFERRED = "deferred"  # about an object we cannot match yet; retried later


class Links(Protocol):
    """Builds backers' private links (the service's signed tokens)."""

    def manage_url(self, pledge_id: int) -> str: ...

    def fix_url(self, pledge_id: int, expires: datetime) -> str: ...

    def member_url(self, member_id: int, expires: datetime) -> str: ...


@dataclass(frozen=True)
class Context:
    keys: Keys
    fix_window: timedelta = timedelta(days=7)
    links: Links | None = None
    #: Re-reads a charge from Stripe (refund.* events carry no cumulative total).
    fetch_charge: Callable[[str], dict[str, Any]] | None = None
    notes: list[str] = field(default_factory=list)
    #: Called in the write that recorded a pledge's card payment, with its id: a join
    #: paid on the site is admitted in that same write (payments/joining.py).
    after_payment: Callable[[Tx, int], None] | None = None
    #: The rules' grace days for an unpaid membership fee (the dunning mail says when it lapses).
    grace_days: int = 0


def id_of(value: Any) -> str | None:
    """An id from a field that is either an id or an embedded object."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):
        found = value.get("id")
        return str(found) if found else None
    return str(getattr(value, "id", "") or "") or None


#: A pledge's full row, columns as attributes (see `pledge_row`).
PledgeRow = Any

_LOOKUPS = frozenset({"id", "stripe_intent", "stripe_charge", "request_key"})


def pledge_row(conn: Connection, **where: Any) -> PledgeRow | None:
    """One pledge's full row by a unique column (through the driver: a hot path)."""
    column, value = next(iter(where.items()))
    if value is None:
        return None
    assert column in _LOOKUPS
    return bulk.first_row(conn, f"SELECT * FROM pledges WHERE {column} = ?", (value,))


def _at(tx: Tx) -> datetime:
    return datetime.fromisoformat(tx.now)


def move(
    tx: Tx,
    row: PledgeRow,
    to: Status,
    *,
    reason: str,
    paid: Money | None = None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Make the move if the state machine allows it from here; False when stale.

    `row` must have been read in this transaction (it is not read again).
    """
    if to not in TRANSITIONS[Status(row.status)]:
        return False
    pledges.transition_row(tx, row, to, reason=reason, paid=paid, extra=extra)
    return True


def queue_received(tx: Tx, ctx: Context, row: PledgeRow) -> None:
    """The "we have your pledge" mail, once per pledge, whatever the path to it."""
    data: dict[str, Any] = {
        "pledge_id": row.id,
        "amount": int(row.amount),
        "currency": row.currency,
        "shares": row.shares,
        "tier": row.tier,
    }
    if ctx.links is not None:
        data["manage_url"] = ctx.links.manage_url(row.id)
    mail_backer(tx, row, outbox.Kind.PLEDGE_RECEIVED, f"pledge-{row.id}-received", data)


def mail_backer(tx: Tx, row: PledgeRow, kind: outbox.Kind, key: str, data: dict[str, Any]) -> None:
    """Queue a mail to the backer of a pledge, once per key, in this transaction."""
    outbox.queue(tx, kind, key, to_email=row.email, to_name=row.name, data=data, pledge_id=row.id)


def record_failure(
    tx: Tx, ctx: Context, row: PledgeRow, *, code: str, attempt: int, intent: str | None
) -> bool:
    """A collect charge failed: mark it and, on its first failure, mail a fix link.

    The fix window opens when a charge first fails, and the date the backer is
    given then stands: a retry that fails again (`collect --retry`) neither
    moves it nor mails again. One "action needed" mail per failure, not per
    run. A card the backer fixes closes the window (fix_until is cleared), so a
    charge failing after that is a new failure, with a window and a mail of its own.
    """
    first = row.fix_until is None
    until = _at(tx) + ctx.fix_window if first else datetime.fromisoformat(row.fix_until)
    extra: dict[str, Any] = {
        "failure_code": code,
        "fix_until": until.isoformat(),
        "attempts": max(int(row.attempts), attempt),
    }
    if intent and row.stripe_intent != intent:
        extra["stripe_intent"] = intent
    if not move(tx, row, Status.PAYMENT_FAILED, reason=f"charge failed: {code}", extra=extra):
        return False
    if not first:
        return True
    data: dict[str, Any] = {
        "pledge_id": row.id,
        "amount": int(row.amount),
        "currency": row.currency,
        "reason": code,
        "authentication_required": code == AUTH_REQUIRED,
        "fix_until": until.isoformat(),
    }
    if ctx.links is not None:
        data["fix_url"] = ctx.links.fix_url(row.id, until)
    mail_backer(tx, row, outbox.Kind.PAYMENT_FAILED, f"pledge-{row.id}-failed-{attempt}", data)
    return True


def _attempt(metadata: Mapping[str, Any]) -> int | None:
    raw = str(metadata.get("attempt") or "")
    return int(raw) if raw.isdigit() else None


def _livemode_ok(row: PledgeRow, obj: Mapping[str, Any]) -> bool:
    live = obj.get("livemode")
    return row.livemode is None or live is None or bool(row.livemode) == bool(live)


def apply_intent(tx: Tx, ctx: Context, intent: Mapping[str, Any]) -> Outcome:
    """Bring a pledge up to date with one of its SetupIntents or PaymentIntents."""
    metadata = intent.get("metadata") or {}
    pledge_id = ctx.keys.owns(metadata)
    if pledge_id is None:
        return Outcome.IGNORED
    row = pledge_row(tx.conn, id=pledge_id)
    if row is None or not _livemode_ok(row, intent):
        return Outcome.IGNORED
    customer = id_of(intent.get("customer"))
    if row.stripe_customer and customer and customer != row.stripe_customer:
        return Outcome.IGNORED  # metadata says ours, the customer says otherwise: refuse
    status = str(intent.get("status") or "")
    current = Status(row.status)
    method = id_of(intent.get("payment_method"))

    joining = metadata.get("purpose") == "join"  # paid on the join page: payments/joining.py
    if intent.get("object") == "setup_intent":
        if status != "succeeded" or not method or joining:
            # A join's saved card is not a pledge's authorization: only its payment moves it.
            return Outcome.UNCHANGED
        fixing = metadata.get("purpose") == "fix"
        if current is Status.PENDING or (fixing and current is Status.PAYMENT_FAILED):
            extra: dict[str, Any] = {
                "stripe_payment_method": method,
                "failure_code": None,
                "fix_until": None,
            }
            reason = "card fixed by the backer" if fixing else "card saved"
            moved = move(tx, row, Status.AUTHORIZED, reason=reason, extra=extra)
            if moved and current is Status.PENDING:
                queue_received(tx, ctx, row)
            return Outcome.APPLIED if moved else Outcome.UNCHANGED
        return Outcome.UNCHANGED

    attempt = _attempt(metadata)
    intent_id = id_of(intent.get("id"))
    if status == "succeeded":
        charge = id_of(intent.get("latest_charge"))
        if current in RECEIVED:
            if row.stripe_charge and charge and charge != row.stripe_charge:
                # Money taken twice: never silently; an organizer must refund one.
                tx.record(
                    "payment.duplicate",
                    f"pledge:{row.id}",
                    {"id": row.id, "intent": intent_id, "charge": charge},
                )
                ctx.notes.append(f"pledge {row.id}: a second successful charge {charge}")
                return Outcome.APPLIED
            return Outcome.UNCHANGED
        received = int(intent.get("amount_received") or intent.get("amount") or row.amount)
        if current in ENDED_UNPAID:  # money for a pledge that is over: kept in sight
            note = orphans.record(tx, row, intent_id, charge, Money(received, row.currency))
            if note is None:
                return Outcome.UNCHANGED
            ctx.notes.append(note)
            return Outcome.APPLIED
        extra = {
            "stripe_intent": intent_id,
            "stripe_charge": charge,
            "failure_code": None,
            "fix_until": None,
            "attempts": max(int(row.attempts), attempt or 0),
        }
        if method:
            extra["stripe_payment_method"] = method
        moved = move(
            tx,
            row,
            Status.PAID,
            reason="paid by card",
            paid=Money(received, row.currency),
            extra=extra,
        )
        if moved and current is Status.PENDING and not joining:  # a join gets its welcome
            queue_received(tx, ctx, row)
        return Outcome.APPLIED if moved else Outcome.UNCHANGED

    if attempt is None:
        # On-session payments (keep-it-all) that fail stay pending: the backer can retry.
        return Outcome.UNCHANGED
    if status == "requires_action":
        code = AUTH_REQUIRED  # the emulator's answer to an off-session 3-D Secure card
    elif status == "requires_payment_method" and (
        intent.get("last_payment_error") or current is Status.PROCESSING
    ):
        error = intent.get("last_payment_error") or {}
        code = str(error.get("decline_code") or error.get("code") or "card_declined")
    else:
        return Outcome.UNCHANGED
    if current is Status.PENDING:
        return Outcome.DEFERRED  # charged off-session, so the card was saved: wait for that
    if attempt < int(row.attempts) or current not in CHARGEABLE:
        return Outcome.UNCHANGED  # an older attempt, or already settled
    done = record_failure(tx, ctx, row, code=code, attempt=attempt, intent=intent_id)
    return Outcome.APPLIED if done else Outcome.UNCHANGED


def _row_for_charge(conn: Connection, charge: Mapping[str, Any]) -> PledgeRow | None:
    return pledge_row(conn, stripe_charge=id_of(charge.get("id"))) or pledge_row(
        conn, stripe_intent=id_of(charge.get("payment_intent"))
    )


def flag_shares(tx: Tx, pledge_id: int, reason: str) -> int:
    """Flag register entries issued from this pledge's money (once per reason)."""
    entries = set(
        tx.execute(
            sa.select(schema.allotments.c.entry_id).where(
                schema.allotments.c.pledge_id == pledge_id
            )
        ).scalars()
    ) | set(
        tx.execute(
            sa.select(schema.register_entries.c.id).where(
                schema.register_entries.c.pledge_id == pledge_id,
                schema.register_entries.c.kind == EntryKind.ISSUE.value,
            )
        ).scalars()
    )
    added = 0
    for entry in sorted(entries):
        known = tx.execute(
            sa.select(schema.register_flags.c.id).where(
                schema.register_flags.c.entry_id == entry,
                schema.register_flags.c.pledge_id == pledge_id,
                schema.register_flags.c.reason == reason,
            )
        ).first()
        if known is None:
            tx.insert(
                schema.register_flags,
                ("entry_id", "pledge_id", "reason", "created_at"),
                [(entry, pledge_id, reason, tx.now)],
            )
            added += 1
    if added:
        tx.record("register.flag", f"pledge:{pledge_id}", {"pledge": pledge_id, "reason": reason})
    return added


def queue_refund_mail(tx: Tx, row: PledgeRow, refund_id: str, amount: int) -> None:
    mail_backer(
        tx,
        row,
        outbox.Kind.REFUND_SENT,
        f"refund-{refund_id}",
        {"pledge_id": row.id, "amount": amount, "currency": row.currency},
    )


def apply_charge(tx: Tx, ctx: Context, charge: Mapping[str, Any]) -> Outcome:
    """Take a charge's cumulative refunded amount (never lowering ours)."""
    row = _row_for_charge(tx.conn, charge)
    if row is None:
        return Outcome.DEFERRED
    if not _livemode_ok(row, charge):
        return Outcome.IGNORED
    current = Status(row.status)
    if current in ENDED_UNPAID:  # an orphaned payment, refunded from the dashboard
        return Outcome.APPLIED if orphans.returned(tx, row, charge) else Outcome.UNCHANGED
    if current not in RECEIVED:
        return Outcome.DEFERRED  # its payment is not recorded yet
    outcome = Outcome.UNCHANGED
    for refund in (charge.get("refunds") or {}).get("data") or []:
        if refund.get("status") in (None, "succeeded", "pending"):
            queue_refund_mail(tx, row, str(refund["id"]), int(refund.get("amount") or 0))
    paid = int(row.paid_amount)
    refunded = min(int(charge.get("amount_refunded") or 0), paid)
    if refunded > int(row.refunded_amount):
        outcome = Outcome.APPLIED
        if refunded >= paid and current in HELD:
            move(tx, row, Status.REFUNDED, reason="refunded", extra={"refunded_amount": refunded})
        else:
            tx.update(schema.pledges, {"id": row.id}, refunded_amount=refunded, updated_at=tx.now)
            tx.record(
                "pledge.refund",
                f"pledge:{row.id}",
                {"id": row.id, "refunded": refunded, "paid": paid},
            )
        if cuts_into_shares(tx, row.id, refunded):
            flag_shares(tx, row.id, "refunded")
    return outcome


def cuts_into_shares(tx: Tx, pledge_id: int, refunded: int) -> bool:
    """True when a refunded total reaches money that paid for shares.

    Remainders (below one share, over the cap, scaled back) were never shares:
    refunding them leaves the register as it is.
    """
    not_shares = tx.execute(
        sa.select(sa.func.coalesce(sa.func.sum(schema.remainders.c.amount), 0)).where(
            schema.remainders.c.pledge_id == pledge_id
        )
    ).scalar()
    return refunded > int(not_shares or 0)


def apply_refund(tx: Tx, ctx: Context, refund: Mapping[str, Any]) -> Outcome:
    """A refund.* event: re-read its charge for the cumulative total."""
    charge_id = id_of(refund.get("charge"))
    if ctx.fetch_charge is None or charge_id is None:
        return Outcome.DEFERRED
    charge = dict(ctx.fetch_charge(charge_id))
    outcome = apply_charge(tx, ctx, charge)
    row = _row_for_charge(tx.conn, charge)
    if row is not None and outcome is not Outcome.DEFERRED and refund.get("status") != "failed":
        queue_refund_mail(tx, row, str(refund["id"]), int(refund.get("amount") or 0))
    return outcome


def _dispute_statuses(conn: Connection, dispute_id: str) -> list[str]:
    found = []
    for payload in conn.execute(
        sa.select(schema.stripe_events.c.payload).where(
            schema.stripe_events.c.type.like("charge.dispute.%")
        )
    ).scalars():
        obj = json.loads(payload).get("data", {}).get("object", {})
        if obj.get("id") == dispute_id:
            found.append(str(obj.get("status") or ""))
    return found


def apply_dispute(tx: Tx, ctx: Context, dispute: Mapping[str, Any]) -> Outcome:
    charge = {"id": id_of(dispute.get("charge")), "payment_intent": dispute.get("payment_intent")}
    row = _row_for_charge(tx.conn, charge)
    if row is None:  # a membership fee's payment, or one we do not know yet
        fee = fee_kinds.apply_dispute(tx, dispute)
        if fee is None or fee is fees.Outcome.UNKNOWN:
            return Outcome.DEFERRED
        return Outcome.APPLIED if fee is fees.Outcome.APPLIED else Outcome.UNCHANGED
    current = Status(row.status)
    if current not in RECEIVED:
        return Outcome.DEFERRED
    statuses = set(_dispute_statuses(tx.conn, str(dispute["id"]))) | {
        str(dispute.get("status") or "")
    }
    closed = statuses & _DISPUTE_CLOSED
    changed = flag_shares(tx, row.id, "disputed") > 0
    if "lost" in closed:
        refunded = min(int(row.paid_amount), int(row.refunded_amount) + int(dispute["amount"]))
        changed |= move(
            tx, row, Status.REFUNDED, reason="dispute lost", extra={"refunded_amount": refunded}
        )
    elif closed:
        changed |= move(tx, row, Status.PAID, reason="dispute won")
        done = tx.update(
            schema.register_flags,
            {"pledge_id": row.id, "reason": "disputed", "resolved_at": None},
            resolved_at=tx.now,
        )
        if done:
            tx.record("register.unflag", f"pledge:{row.id}", {"pledge": row.id, "won": True})
        changed |= done > 0
    else:
        changed |= move(tx, row, Status.DISPUTED, reason="the bank is disputing the charge")
    return Outcome.APPLIED if changed else Outcome.UNCHANGED


def apply_event(tx: Tx, ctx: Context, event: Mapping[str, Any]) -> Outcome:
    kind = str(event.get("type") or "")
    obj = (event.get("data") or {}).get("object") or {}
    if kind.startswith(("setup_intent.", "payment_intent.")):
        return apply_intent(tx, ctx, obj)
    if kind.startswith("charge.dispute."):
        return apply_dispute(tx, ctx, obj)
    if kind in ("charge.refunded", "charge.refund.updated"):
        if kind == "charge.refund.updated":
            return apply_refund(tx, ctx, obj)
        return apply_charge(tx, ctx, obj)
    if kind.startswith("refund."):
        return apply_refund(tx, ctx, obj)
    if kind in fee_kinds.KINDS:
        return _fee(tx, ctx, kind, obj, int(event.get("created") or 0))
    return Outcome.IGNORED


def member_link(ctx: Context, now: str) -> dunning.LinkFor:
    """A member's fresh sign-in link, when the service's address is known."""
    links = ctx.links
    if links is None:
        return lambda number: None
    expires = datetime.fromisoformat(now.replace("Z", "+00:00")) + dunning.LINK_LIFETIME
    return lambda number: links.member_url(number, expires)


def _fee(tx: Tx, ctx: Context, kind: str, obj: Mapping[str, Any], created: int) -> Outcome:
    """A membership fee's invoice or subscription (fundraiser.membership.fees)."""
    event = fee_kinds.fee_event(kind, obj, created)
    if event is None:
        return Outcome.IGNORED  # an invoice that is not for a subscription
    done = fees.apply(tx, event)
    if done is fees.Outcome.APPLIED and event.kind == fees.EventKind.PAYMENT_FAILED:
        dunning.fee_failed(tx, event, member_link(ctx, tx.now), grace_days=ctx.grace_days)
    return {
        fees.Outcome.APPLIED: Outcome.APPLIED,
        fees.Outcome.DUPLICATE: Outcome.UNCHANGED,
        # A subscription we have not recorded yet (its join is still being written).
        fees.Outcome.UNKNOWN: Outcome.DEFERRED,
    }[done]
