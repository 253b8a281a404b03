"""A join's Stripe objects: the share payment, and the fee's subscription after admission.

The shares are paid at once by a PaymentIntent on the person's Customer (card,
with 3-D Secure in the browser, or SEPA Direct Debit in euros), saved for
later use when a fee will be charged to it. Once the payment is recorded and
the member admitted (in the payment's own write: `after_payment_hook`), the fee
becomes a Subscription to the rate's Plan (plans.ensure_plan) with that saved
method; its first invoice is applied through the fee events as any other.

Every step is found again before it is made, so a rerun after a crash at any
point (`finish`, which `stripe sync` runs) makes one member and one
subscription: the subscription is looked up on the customer by our metadata
before one is created (the emulator ignores idempotency keys; Stripe keeps
them a day), and every write carries a key from our ids.

The card (or SEPA account, with its mandate) is saved first by a SetupIntent the
browser confirms, then charged on-session by a PaymentIntent the service makes;
a bank that wants 3-D Secure for the charge gets it in the browser
(requires_action). The emulator's Stripe.js can only authenticate a payment,
not take a card for one, so this is also the path it can run. The emulator
has no Prices: with `emulated` the subscription names the plan; real Stripe
gets the plan's id as the price.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
import stripe
from sqlalchemy.engine import Connection

from fundraiser.config import Campaign
from fundraiser.errors import NotFound
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.membership import admission, joining
from fundraiser.money import Money
from fundraiser.payments import fees as fee_kinds
from fundraiser.payments import intents, plans
from fundraiser.payments.client import as_dict, opts, stripe_errors
from fundraiser.payments.deferred import retry_deferred
from fundraiser.payments.events import Context, apply_intent, id_of, pledge_row
from fundraiser.pledges import HELD, Source, Status

log = logging.getLogger("fundraiser.payments")


def for_emulator(api_base: str | None) -> bool:
    """True when STRIPE_API_BASE points anywhere but Stripe itself (the emulator)."""
    return bool(api_base) and urlsplit(str(api_base)).hostname != "api.stripe.com"


def after_payment_hook(campaign: Campaign) -> Callable[[Tx, int], None] | None:
    """What the webhook runs in a card payment's write: admit a join paid on the site."""
    if campaign.membership is None:
        return None

    def admit(tx: Tx, pledge_id: int) -> None:
        if joining.join_of(tx.conn, pledge_id) is not None:
            joining.after_payment(tx, campaign)

    return admit


async def open_form(
    client: stripe.StripeClient,
    ctx: Context,
    admitted: intents.Admitted,
    method: joining.Method,
) -> tuple[intents.Started, intents.CardForm | None]:
    """The join's Customer and a SetupIntent saving its card or SEPA account (async).

    The browser confirms it (3-D Secure, or the SEPA mandate, shown there); `pay`
    then charges the shares on-session with that saved method, which the fee uses
    later. A repeated submit gets its recorded form back; a new one is returned
    to be recorded with intents.record_card_form.
    """
    row = admitted.row
    pledge_id = int(row.id)
    amount = Money(int(row.amount), row.currency)
    v1 = client.v1
    if row.stripe_intent:
        secret = await intents.reread_secret(
            client, str(row.stripe_intent), "the join's payment form"
        )
        return intents.Started(pledge_id, secret, "setup", amount, True), None
    keys = ctx.keys
    metadata = keys.metadata(pledge_id, purpose="join")
    tag = intents.request_tag(row)
    customer = row.stripe_customer
    if not customer:
        with stripe_errors("creating the Stripe customer"):
            made = await v1.customers.create_async(
                params={"name": row.name, "email": row.email, "metadata": metadata},
                options=opts(keys.key(pledge_id, f"customer-{tag}")),
            )
        customer = made.id
    params: Any = {
        "customer": customer,
        "usage": "off_session",
        "payment_method_types": [method.value],
        "metadata": metadata,
    }
    with stripe_errors("creating the payment form"):
        intent: Any = await v1.setup_intents.create_async(
            params=params, options=opts(keys.key(pledge_id, f"join-setup-{tag}"))
        )
    form = intents.CardForm(
        pledge_id, str(customer), str(intent.id), bool(intent.livemode), "setup"
    )
    started = intents.Started(
        pledge_id, str(intent.client_secret), "setup", amount, admitted.replayed
    )
    return started, form


def _ours(ctx: Context, intent: dict[str, Any], pledge_id: int) -> bool:
    metadata = intent.get("metadata") or {}
    return ctx.keys.owns(metadata) == pledge_id and metadata.get("purpose") == "join"


def find_payment(
    client: stripe.StripeClient, ctx: Context, customer: str, pledge_id: int
) -> dict[str, Any] | None:
    """The PaymentIntent an earlier, interrupted run made for this join, if any
    (found through the customer's charges: the emulator ignores idempotency keys)."""
    seen: set[str] = set()
    with stripe_errors("looking up the join's payment"):
        charges = client.v1.charges.list(params={"customer": customer, "limit": 100})
        for charge in charges.auto_paging_iter():
            intent_id = id_of(getattr(charge, "payment_intent", None))
            if not intent_id or intent_id in seen:
                continue
            seen.add(intent_id)
            intent = as_dict(client.v1.payment_intents.retrieve(intent_id))
            if _ours(ctx, intent, pledge_id):
                return intent
    return None


def _charge(
    ledger: Ledger, client: stripe.StripeClient, ctx: Context, row: Any, setup: dict[str, Any]
) -> dict[str, Any]:
    """The shares charged on-session with the saved method: found again, or made once."""
    pledge_id = int(row.id)
    found = find_payment(client, ctx, str(row.stripe_customer), pledge_id)
    if found is not None:
        return found
    method = id_of(setup.get("payment_method"))
    if method:
        _attach(client, ctx, method, str(row.stripe_customer), pledge_id)
    params: Any = {
        "customer": row.stripe_customer,
        "payment_method": method,
        "payment_method_types": list(setup.get("payment_method_types") or ["card"]),
        "amount": int(row.amount),
        "currency": row.currency.lower(),
        "confirm": True,
        "metadata": ctx.keys.metadata(pledge_id, purpose="join"),
    }
    with stripe_errors("charging the shares"):
        made = client.v1.payment_intents.create(
            params=params, options=opts(ctx.keys.key(pledge_id, f"join-payment-{row.attempts}"))
        )
    return as_dict(made)


def _attach(
    client: stripe.StripeClient, ctx: Context, method: str, customer: str, pledge_id: int
) -> None:
    """Keep the saved method on the customer (Stripe does when the SetupIntent succeeds;
    the emulator does not), so the shares and the fee can be charged to it."""
    with stripe_errors("saving the payment method on the customer"):
        saved = client.v1.payment_methods.retrieve(method)
        if id_of(getattr(saved, "customer", None)) != customer:
            client.v1.payment_methods.attach(
                method,
                params={"customer": customer},
                options=opts(ctx.keys.key(pledge_id, "join-attach")),
            )


def pay(
    ledger: Ledger, client: stripe.StripeClient, ctx: Context, campaign: Campaign, pledge_id: int
) -> str | None:
    """Charge a join whose card or account the browser saved, and record what Stripe says
    (admitting, in the same write, as the rules allow). Returns the PaymentIntent's
    client secret when the bank wants the person (3-D Secure), else None.

    A declined card raises CardError and leaves the pledge pending: nothing owed.
    """
    with ledger.read() as conn:
        row = pledge_row(conn, id=pledge_id)
        join = joining.join_of(conn, pledge_id)
    if row is None or join is None or row.source != Source.ONLINE:
        raise NotFound(f"join {pledge_id} does not exist")
    if Status(row.status) is not Status.PENDING or not row.stripe_intent:
        return None
    current = intents.retrieve_intent(client, row.stripe_intent)
    if not _ours(ctx, current, pledge_id):
        raise NotFound(f"join {pledge_id} has no such payment form")
    mandate = id_of(current.get("mandate"))
    if current.get("object") == "setup_intent":
        if current.get("status") != "succeeded":
            return None  # the browser has not saved the card yet
        current = _charge(ledger, client, ctx, row, current)
    with ledger.write() as tx:
        if current.get("id") != row.stripe_intent:
            tx.update(
                schema.pledges,
                {"id": pledge_id, "stripe_intent": row.stripe_intent},
                stripe_intent=current.get("id"),
                updated_at=tx.now,
            )
            tx.record("join.payment", f"pledge:{pledge_id}", {"id": pledge_id})
        if mandate:
            joining.record_mandate(tx, int(join.id), mandate)
        outcome = apply_intent(tx, ctx, current)
        if outcome.value == "applied":
            joining.after_payment(tx, campaign)
    if current.get("status") == "requires_action":
        return str(current.get("client_secret") or "") or None
    return None


def recover(ledger: Ledger, client: stripe.StripeClient, ctx: Context, campaign: Campaign) -> int:
    """Joins still pending whose payment Stripe took (a crash between Stripe's answer and
    our record): each recorded once. Returns how many were."""
    j, p = schema.joins.c, schema.pledges.c
    with ledger.read() as conn:
        waiting = conn.execute(
            sa.select(p.id, p.stripe_customer)
            .select_from(schema.joins.join(schema.pledges, p.id == j.pledge_id))
            .where(p.status == Status.PENDING.value, p.stripe_customer.is_not(None))
            .order_by(p.id)
        ).all()
    moved = 0
    for pledge_id, customer in waiting:
        intent = find_payment(client, ctx, str(customer), int(pledge_id))
        if intent is None:
            continue
        with ledger.write() as tx:
            if apply_intent(tx, ctx, intent).value == "applied":
                joining.after_payment(tx, campaign)
                moved += 1
    return moved


@dataclass
class Finished:
    """What `finish` did: members admitted, fees begun, and what could not be done yet."""

    admitted: list[int] = field(default_factory=list)  # applications
    fees_started: list[int] = field(default_factory=list)  # member numbers
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "admitted": self.admitted,
            "fees_started": self.fees_started,
            "notes": self.notes,
        }


def finish(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    campaign: Campaign,
    *,
    emulated: bool,
) -> Finished:
    """Admit what the rules allow, then begin the fee of every admitted join without one."""
    done = Finished()
    if campaign.membership is None:
        return done
    recover(ledger, client, ctx, campaign)
    with ledger.write() as tx:
        result = joining.after_payment(tx, campaign)
    if result is not None:
        done.admitted = result.applications
    with ledger.read() as conn:
        waiting = joining.fees_to_start(conn)
    for item in waiting:
        try:
            start_fee(ledger, client, ctx, campaign, item, emulated=emulated)
        except Exception as exc:  # one member's card or Stripe's answer: the others go on
            log.warning("member %s: the fee could not begin: %s", item.member_number, exc)
            done.notes.append(f"member {item.member_number}: the fee could not begin: {exc}")
            continue
        done.fees_started.append(item.member_number)
    return done


def _payment_method(client: stripe.StripeClient, item: joining.FeeToStart) -> tuple[str, Any]:
    """The method that paid for the shares, and the intent (re-read for its mandate)."""
    if not item.intent:
        raise ValueError("the share payment has no intent to read")
    with stripe_errors("re-reading the share payment"):
        intent = as_dict(client.v1.payment_intents.retrieve(item.intent))
    method = item.payment_method or id_of(intent.get("payment_method"))
    if not method:
        raise ValueError("the share payment names no payment method")
    return method, intent


def _mandate(client: stripe.StripeClient, intent: dict[str, Any]) -> str | None:
    """The SEPA mandate a payment was made under: on its charge at Stripe."""
    found = id_of(intent.get("mandate"))
    if found:
        return found
    charge: Any = intent.get("latest_charge")
    if isinstance(charge, str):
        with stripe_errors("re-reading the share payment's charge"):
            charge = as_dict(client.v1.charges.retrieve(charge))
    details = ((charge or {}).get("payment_method_details") or {}).get("sepa_debit") or {}
    return id_of(details.get("mandate"))


def _find_subscription(
    client: stripe.StripeClient, ctx: Context, customer: str, pledge_id: int
) -> dict[str, Any] | None:
    with stripe_errors("listing the member's subscriptions"):
        found = client.v1.subscriptions.list(params={"customer": customer, "limit": 100})
        for sub in found.auto_paging_iter():
            data = as_dict(sub)
            if ctx.keys.owns(data.get("metadata")) == pledge_id and data.get("status") not in (
                "canceled",
                "incomplete_expired",
            ):
                return data
    return None


def start_fee(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    campaign: Campaign,
    item: joining.FeeToStart,
    *,
    emulated: bool,
) -> str:
    """One admitted join's fee as a Stripe subscription, recorded with its first invoice."""
    membership = admission.membership_of(campaign)
    assert membership.fee is not None
    if not item.customer:
        raise ValueError("the share payment has no Stripe customer")
    plan = plans.ensure_plan(client, campaign.coop.name, membership.fee, item.rate)
    method, intent = _payment_method(client, item)
    keys = ctx.keys
    sub = _find_subscription(client, ctx, item.customer, item.pledge_id)
    if sub is None:
        _attach(client, ctx, method, item.customer, item.pledge_id)
        with stripe_errors("saving the payment method for the fee"):
            # The customer's default: what the emulator reads (it refuses the
            # subscription's own default_payment_method), and Stripe too.
            client.v1.customers.update(
                item.customer,
                params={"invoice_settings": {"default_payment_method": method}},
                options=opts(keys.key(item.pledge_id, "fee-method")),
            )
        params: Any = {
            "customer": item.customer,
            "items": [{"plan": plan} if emulated else {"price": plan}],
            "metadata": keys.metadata(item.pledge_id, purpose="fee"),
        }
        with stripe_errors("starting the membership fee"):
            sub = as_dict(
                client.v1.subscriptions.create(
                    params, opts(keys.key(item.pledge_id, "fee-subscription"))
                )
            )
    mandate = _mandate(client, intent) if item.method is joining.Method.SEPA else None
    invoice = _first_invoice(client, sub)
    today = joining.today_of(campaign, ledger.clock())
    with ledger.write() as tx:
        joining.fee_started(
            tx,
            campaign,
            item.join_id,
            item.member_number,
            item.rate,
            today=today,
            stripe_subscription=str(sub["id"]),
            stripe_customer=item.customer,
        )
        if mandate:
            joining.record_mandate(tx, item.join_id, mandate)
        if invoice is not None:  # the first fee, through the fee events as any other
            fee_kinds.apply_fee(tx, "invoice.paid", invoice, int(invoice.get("created") or 0))
        retry_deferred(tx, ctx)  # fee events that arrived before this record
    return str(sub["id"])


def _first_invoice(client: stripe.StripeClient, sub: dict[str, Any]) -> dict[str, Any] | None:
    found: Any = sub.get("latest_invoice")
    if isinstance(found, str):
        with stripe_errors("reading the first fee invoice"):
            found = as_dict(client.v1.invoices.retrieve(found))
    if not isinstance(found, dict) or found.get("status") != "paid":
        return None
    return found


def confirm(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    campaign: Campaign,
    pledge_id: int,
    *,
    emulated: bool,
) -> dict[str, Any]:
    """Re-read the join's payment from Stripe, admit and begin the fee: where it stands."""
    action = pay(ledger, client, ctx, campaign, pledge_id)
    finish(ledger, client, ctx, campaign, emulated=emulated)
    with ledger.read() as conn:
        answer = standing(conn, pledge_id)
    answer["action_secret"] = action  # 3-D Secure: the page hands it to Stripe.js
    return answer


def standing(conn: Connection, pledge_id: int) -> dict[str, Any]:
    """A join as its page is told: paid or not, admitted or waiting, the member number."""
    row = pledge_row(conn, id=pledge_id)
    assert row is not None
    join = joining.join_of(conn, pledge_id)
    app = conn.execute(
        sa.select(schema.applications).where(schema.applications.c.pledge_id == pledge_id)
    ).first()
    paid = Status(row.status) in HELD
    started = bool(join is not None and join.fee_subscription_id is not None)
    return {
        "pledge_id": pledge_id,
        "kind": None if join is None else join.kind,
        "paid": paid,
        "secured": paid,
        "application": None if app is None else app.status,
        "member_number": None if app is None else app.member_number,
        "fee_started": started,
        # Admitted on a paid rate, and the fee could not begin yet: the next sync retries.
        "fee_pending": bool(
            join is not None
            and join.rate is not None
            and app is not None
            and app.member_number is not None
            and not started
        ),
    }
