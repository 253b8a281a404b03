"""A pledge's Stripe objects: Customer and SetupIntent/PaymentIntent, and confirming.

All-or-nothing saves the card (SetupIntent, off-session use); keep-it-all charges
at once (PaymentIntent). The intent's metadata holds our pledge id and ledger
namespace, so any event or re-read can be matched back to the pledge.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import stripe
from sqlalchemy.engine import Connection

from fundraiser import pledges
from fundraiser.config import Mode
from fundraiser.errors import NotFound, PaymentError, UserInputError
from fundraiser.ledger import Ledger, schema
from fundraiser.money import Money
from fundraiser.payments.client import CardError, as_dict, opts, stripe_errors
from fundraiser.payments.events import Context, apply_intent, id_of, pledge_row
from fundraiser.people import person_key
from fundraiser.pledges import NewPledge, Pledge, Source, Status


class IdempotencyConflict(UserInputError):
    """An Idempotency-Key sent again with a different pledge."""


class PledgeClosed(IdempotencyConflict):
    """An Idempotency-Key sent again after its pledge was cancelled."""


@dataclass(frozen=True)
class Started:
    pledge_id: int
    client_secret: str
    mode: str  # "setup" or "payment"
    amount: Money
    replayed: bool


def intent_mode(mode: Mode) -> str:
    return "setup" if mode is Mode.ALL_OR_NOTHING else "payment"


def start(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    mode: Mode,
    check: Callable[[Connection], NewPledge],
) -> Started:
    """Record a pending online pledge and make its Stripe Customer and intent.

    `check` validates the request inside the write transaction (so the last
    place in a tier cannot be taken twice) and returns the pledge to record;
    a pledge with the same request key is returned again instead.
    """
    replayed = False
    with ledger.write() as tx:
        item = replace(check(tx.conn), source=Source.ONLINE, status=Status.PENDING)
        row = pledge_row(tx.conn, request_key=item.request_key) if item.request_key else None
        if row is not None:
            if _as_sent(row) != _as_sent(item):
                # As Stripe does: a key names one request; another body is an error,
                # never the first pledge handed back under the new details.
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with different details: "
                    "send a new key (reload the page) to pledge with these"
                )
            if Status(row.status) is Status.CANCELLED:
                # Its card form is closed at Stripe: a new pledge needs a new form.
                raise PledgeClosed(
                    "the pledge sent from this form was cancelled (its card form was "
                    "left unfinished, or it was withdrawn): reload the page to pledge again"
                )
            pledge_id, replayed = int(row.id), True
        else:
            pledge_id = pledges.create(tx, item)
    with ledger.read() as conn:
        row = pledge_row(conn, id=pledge_id)
    assert row is not None
    kind = intent_mode(mode)
    v1 = client.v1
    if row.stripe_intent:
        # A repeated submit: hand back the same intent (we never store its secret).
        with stripe_errors("re-reading the pledge's intent"):
            found: Any = (
                v1.setup_intents.retrieve(row.stripe_intent)
                if row.stripe_intent.startswith("seti_")
                else v1.payment_intents.retrieve(row.stripe_intent)
            )
        return Started(
            pledge_id, str(found.client_secret), kind, Money(int(row.amount), row.currency), True
        )
    keys = ctx.keys
    metadata = keys.metadata(pledge_id)
    tag = request_tag(row)
    with stripe_errors("creating the Stripe customer"):
        customer = (
            row.stripe_customer
            or v1.customers.create(
                params={"name": row.name, "email": row.email, "metadata": metadata},
                options=opts(keys.key(pledge_id, f"customer-{tag}")),
            ).id
        )
    params: Any = {"customer": customer, "payment_method_types": ["card"], "metadata": metadata}
    with stripe_errors("creating the card form"):
        intent: Any
        if kind == "setup":
            params["usage"] = "off_session"
            intent = v1.setup_intents.create(
                params=params, options=opts(keys.key(pledge_id, f"setup-{tag}"))
            )
        else:
            params.update(amount=int(row.amount), currency=row.currency.lower())
            intent = v1.payment_intents.create(
                params=params, options=opts(keys.key(pledge_id, f"payment-{tag}"))
            )
    with ledger.write() as tx:
        tx.update(
            schema.pledges,
            {"id": pledge_id, "stripe_intent": None},
            stripe_customer=customer,
            stripe_intent=intent.id,
            livemode=bool(intent.livemode),
            updated_at=tx.now,
        )
        tx.record("pledge.stripe", f"pledge:{pledge_id}", {"id": pledge_id, "intent": kind})
    return Started(
        pledge_id,
        str(intent.client_secret),
        kind,
        Money(int(row.amount), row.currency),
        replayed,
    )


def _as_sent(pledge: Any) -> tuple[Any, ...]:
    """What a backer sent, as a stored pledge row or a new pledge carries it."""
    amount = pledge.amount.amount if isinstance(pledge.amount, Money) else int(pledge.amount)
    return (
        pledge.name.strip(),
        person_key(pledge.email),  # one person, however the email was typed
        pledge.address.strip(),
        (pledge.display_name or "").strip() or None,
        pledge.round,
        pledge.tier,
        pledge.shares,
        amount,
    )


def request_tag(row: Any) -> str:
    """A short tag for the request that made this pledge, for Stripe's idempotency keys.

    The same request sent again finds the same pledge, so a retry after a crash
    between Stripe's answer and our record gets Stripe's first customer and card
    form back (Stripe keeps the answer for 24 hours). The tag is the request's own
    key (or, without one, the pledge's moment and person), so a pledge id used again
    after a ledger is restored from a backup never reaches another backer's objects.
    """
    material = row.request_key or f"{row.id}|{row.created_at}|{row.person_key}"
    return hashlib.sha256(str(material).encode()).hexdigest()[:16]


def retrieve_intent(client: stripe.StripeClient, intent_id: str) -> dict[str, Any]:
    with stripe_errors("re-reading the intent from Stripe"):
        if intent_id.startswith("seti_"):
            return as_dict(client.v1.setup_intents.retrieve(intent_id))
        return as_dict(client.v1.payment_intents.retrieve(intent_id))


def ensure_attached(client: stripe.StripeClient, intent: dict[str, Any]) -> None:
    """Attach a saved card to its customer.

    Stripe attaches it when a SetupIntent with a customer succeeds; the
    emulator does not, and an unattached card cannot be charged off-session.
    """
    if intent.get("object") != "setup_intent" or intent.get("status") != "succeeded":
        return
    method, customer = id_of(intent.get("payment_method")), id_of(intent.get("customer"))
    if not method or not customer:
        return
    with stripe_errors("saving the card on the customer"):
        found = client.v1.payment_methods.retrieve(method)
        if id_of(getattr(found, "customer", None)) != customer:
            client.v1.payment_methods.attach(method, params={"customer": customer})


def confirm(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    pledge_id: int,
    intent_id: str | None = None,
) -> Pledge:
    """Re-read the pledge's intent from Stripe and move the pledge to match.

    Never trusts the browser: the outcome comes from Stripe. `intent_id` names
    a fix-your-card SetupIntent; its metadata must say it is this pledge's.
    """
    with ledger.read() as conn:
        row = pledge_row(conn, id=pledge_id)
    if row is None or row.source != Source.ONLINE:
        raise NotFound(f"pledge {pledge_id} does not exist")
    wanted = intent_id or row.stripe_intent
    if wanted:
        intent: dict[str, Any] | None = retrieve_intent(client, wanted)
        assert intent is not None
        if ctx.keys.owns(intent.get("metadata")) != pledge_id:
            raise NotFound(f"pledge {pledge_id} has no such card form")
        try:
            ensure_attached(client, intent)
        except CardError:
            intent = None  # the bank refused to save the card: the pledge stays as it is
        if intent is not None:
            with ledger.write() as tx:
                apply_intent(tx, ctx, intent)
    with ledger.read() as conn:
        return pledges.get(conn, pledge_id)


def start_fix(ledger: Ledger, client: stripe.StripeClient, ctx: Context, pledge_id: int) -> str:
    """A SetupIntent for a backer fixing their card on-session; returns its client secret."""
    with ledger.read() as conn:
        row = pledge_row(conn, id=pledge_id)
    if row is None or Status(row.status) is not Status.PAYMENT_FAILED or not row.stripe_customer:
        raise UserInputError("this pledge has no payment to fix")
    with stripe_errors("creating the card form"):
        params: Any = {
            "customer": row.stripe_customer,
            "usage": "off_session",
            "payment_method_types": ["card"],
            "metadata": ctx.keys.metadata(pledge_id, purpose="fix"),
        }
        intent = client.v1.setup_intents.create(
            params=params,
            options=opts(ctx.keys.key(pledge_id, f"fix-{int(row.attempts)}")),
        )
    if not intent.client_secret:
        raise PaymentError("Stripe returned a card form without a client secret")
    return str(intent.client_secret)
