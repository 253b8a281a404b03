"""Our objects at Stripe that the ledger does not know: found by our metadata, removed.

A pledge's Stripe customer (the backer's name and email) and its card form are
made before the ledger records them: the ledger needs Stripe's ids. A service
killed in between leaves both at Stripe with nothing in the ledger pointing at
them. The same request sent again gets them back (their idempotency keys come
from the request), but a backer who gave up never sends it, and Stripe keeps a
key's answer for a day only.

So `stripe sync` lists our customers and card forms (metadata naming this
ledger's namespace and a pledge, and nothing more: a fix-your-card form or a
charge carries more) and removes those no pledge names, once they are older
than GRACE, so a request still being answered is never swept: an open form is
cancelled, then the customer deleted, each journalled. A pledge left waiting
with no card form is cancelled: nobody can complete it now.

Stripe lists newest first, so the listing stops at objects older than the
ledger's first online pledge (ours cannot be older). The emulator lists oldest
first; in tests every object it holds is newer than that, or none is ours.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
import stripe

from fundraiser import pledges
from fundraiser.errors import InvalidTransition
from fundraiser.ledger import Ledger, schema
from fundraiser.payments.client import as_dict, opts, stripe_errors
from fundraiser.payments.events import Context
from fundraiser.pledges import Source, Status

#: How old an object must be before it counts as left behind (a pledge's request
#: takes seconds; an hour leaves room for a slow Stripe and a retry).
GRACE = timedelta(hours=1)
#: The metadata of a pledge's own customer and card form, exactly.
FORM_KEYS = frozenset({"pledge_id", "ledger"})
#: A card form that can still save a card or take money.
OPEN = frozenset({"requires_payment_method", "requires_confirmation", "requires_action"})
REMOVED = "stripe.leftover_removed"
KINDS = ("setup_intent", "payment_intent", "customer")  # forms before their customers


@dataclass(frozen=True)
class Leftover:
    pledge_id: int
    kind: str  # setup_intent, payment_intent, customer
    stripe_id: str
    status: str | None  # a form's state at Stripe; None for a customer

    def as_json(self) -> dict[str, Any]:
        return {"pledge_id": self.pledge_id, "object": self.kind, "id": self.stripe_id}


@dataclass
class Swept:
    removed: list[Leftover] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)  # pledges left with no card form
    notes: list[str] = field(default_factory=list)


def _first_online(ledger: Ledger) -> datetime | None:
    with ledger.read() as conn:
        first = conn.execute(
            sa.select(sa.func.min(schema.pledges.c.created_at)).where(
                schema.pledges.c.source == Source.ONLINE.value
            )
        ).scalar()
    if first is None:
        return None
    moment = datetime.fromisoformat(str(first))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _listed(client: stripe.StripeClient, kind: str) -> Iterator[dict[str, Any]]:
    v1 = client.v1
    lister: Any = {
        "setup_intent": v1.setup_intents,
        "payment_intent": v1.payment_intents,
        "customer": v1.customers,
    }[kind]
    with stripe_errors(f"listing {kind.replace('_', ' ')}s at Stripe"):
        for item in lister.list(params={"limit": 100}).auto_paging_iter():
            yield as_dict(item)


def find(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    *,
    now: datetime,
    grace: timedelta = GRACE,
) -> list[Leftover]:
    """Our pledges' customers and card forms at Stripe that no pledge names, older
    than `grace` at `now`; forms first, then customers."""
    first = _first_online(ledger)
    if first is None:
        return []  # no online pledge ever: nothing of ours can be at Stripe
    oldest = int(first.timestamp()) - 24 * 3600  # clocks differ: a day's margin
    newest = int((now - grace).timestamp())
    found: list[Leftover] = []
    for kind in KINDS:
        for obj in _listed(client, kind):
            created = int(obj.get("created") or 0)
            if created < oldest:
                break  # newest first: the rest are older still
            metadata = obj.get("metadata") or {}
            pledge_id = ctx.keys.owns(metadata)
            if created > newest or pledge_id is None or set(metadata) != FORM_KEYS:
                continue
            status = None if kind == "customer" else str(obj.get("status") or "")
            found.append(Leftover(pledge_id, kind, str(obj["id"]), status))
    known = _named(ledger, [f.stripe_id for f in found])
    return [f for f in found if f.stripe_id not in known]


def _named(ledger: Ledger, ids: list[str]) -> set[str]:
    """Which of these Stripe ids a pledge names (as its customer or its card form)."""
    named: set[str] = set()
    p = schema.pledges.c
    with ledger.read() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            for customer, intent in conn.execute(
                sa.select(p.stripe_customer, p.stripe_intent).where(
                    sa.or_(p.stripe_customer.in_(chunk), p.stripe_intent.in_(chunk))
                )
            ):
                named.update(v for v in (customer, intent) if v in chunk)
    return named


def sweep(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    *,
    now: datetime,
    grace: timedelta = GRACE,
    stored_now: str | None = None,
    pace: Callable[[], None] | None = None,
) -> Swept:
    """Remove what `find` finds (rerun-safe: a removed object is not listed again)."""
    swept = Swept()
    for item in find(ledger, client, ctx, now=now, grace=grace):
        if item.kind != "customer" and item.status not in OPEN:
            if item.status != "canceled":  # closed already: nothing to do
                swept.notes.append(
                    f"pledge {item.pledge_id}: Stripe has a card form the ledger does not "
                    f"know ({item.stripe_id}, {item.status}): look at it in Stripe's dashboard"
                )
            continue
        if pace is not None:
            pace()
        _remove(client, ctx, item)
        with ledger.write(stored_now) as tx:
            tx.record(
                REMOVED,
                f"pledge:{item.pledge_id}",
                {"id": item.pledge_id, "object": item.kind, "stripe_id": item.stripe_id},
            )
        swept.removed.append(item)
    swept.cancelled = _cancel_formless(ledger, {i.pledge_id for i in swept.removed}, stored_now)
    return swept


def _remove(client: stripe.StripeClient, ctx: Context, item: Leftover) -> None:
    key = opts(ctx.keys.key(item.pledge_id, f"leftover-{item.stripe_id}"))
    v1 = client.v1
    with stripe_errors(f"removing pledge {item.pledge_id}'s {item.kind.replace('_', ' ')}"):
        try:
            if item.kind == "setup_intent":
                v1.setup_intents.cancel(item.stripe_id, options=key)
            elif item.kind == "payment_intent":
                v1.payment_intents.cancel(item.stripe_id, options=key)
            else:
                v1.customers.delete(item.stripe_id, options=key)
        except stripe.InvalidRequestError as exc:
            if exc.http_status != 404:  # 404: gone already (a rerun after a crash)
                raise


def _cancel_formless(ledger: Ledger, ids: Iterable[int], now: str | None) -> list[int]:
    """Cancel those pledges still waiting with no card form recorded."""
    cancelled = []
    for pledge_id in sorted(ids):
        with ledger.write(now) as tx:
            row = tx.execute(
                sa.select(schema.pledges.c.status, schema.pledges.c.stripe_intent).where(
                    schema.pledges.c.id == pledge_id,
                    schema.pledges.c.source == Source.ONLINE.value,
                )
            ).first()
            if row is None or row.status != Status.PENDING.value or row.stripe_intent:
                continue
            try:
                pledges.transition(
                    tx,
                    pledge_id,
                    Status.CANCELLED,
                    reason="its card form was made at Stripe but never recorded (the service "
                    "stopped): removed at Stripe",
                )
            except InvalidTransition:
                continue
        cancelled.append(pledge_id)
    return cancelled
