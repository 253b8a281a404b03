"""A pledge's Stripe objects: Customer and SetupIntent/PaymentIntent, and confirming.

All-or-nothing saves the card (SetupIntent, off-session use); keep-it-all charges
at once (PaymentIntent). A pledge is recorded first (`admit`), its Stripe objects
made with our ids in their idempotency keys and metadata (`open_card_form`), then
recorded (`record_card_form`). The intent's metadata holds our pledge id and ledger
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
from fundraiser.ledger import Ledger, Tx, schema
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


@dataclass(frozen=True)
class Admitted:
    """A pledge recorded by `admit`, or found again (`replayed`): its row."""

    row: Any
    replayed: bool


def admit(
    tx: Tx, check: Callable[[Connection, bool], NewPledge], request_key: str | None
) -> Admitted:
    """Record a pending online pledge in the caller's transaction, or find the one
    this request made before.

    The pledge `request_key` made before is looked up once, here; `check` is told
    whether there is one (a repeat keeps its place: no limit is counted again),
    validates the request in the transaction (so the last place in a tier cannot
    be taken twice) and returns the pledge to record. Every refusal (`check`'s,
    IdempotencyConflict, PledgeClosed) is raised before anything is written, so
    a writer that groups pledges into one transaction can refuse one and keep
    the others.
    """
    row = pledge_row(tx.conn, request_key=request_key) if request_key else None
    item = replace(check(tx.conn, row is not None), source=Source.ONLINE, status=Status.PENDING)
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
        return Admitted(row, replayed=True)
    pledge_id = pledges.create(tx, item)
    row = pledge_row(tx.conn, id=pledge_id)
    assert row is not None
    return Admitted(row, replayed=False)


@dataclass(frozen=True)
class CardForm:
    """What Stripe made for a pledge: its customer and its intent (not yet recorded)."""

    pledge_id: int
    customer: str
    intent_id: str
    livemode: bool
    kind: str  # "setup" or "payment"


async def open_card_form(
    client: stripe.StripeClient, ctx: Context, mode: Mode, admitted: Admitted
) -> tuple[Started, CardForm | None]:
    """The pledge's Stripe customer and card form, through the SDK's async calls (no
    thread waits on Stripe). A repeated submit gets its recorded form back; a new
    form is returned to be recorded with `record_card_form`."""
    row = admitted.row
    pledge_id = int(row.id)
    kind = intent_mode(mode)
    amount = Money(int(row.amount), row.currency)
    v1 = client.v1
    if row.stripe_intent:
        # A repeated submit: hand back the same intent (we never store its secret).
        secret = await reread_secret(client, str(row.stripe_intent), "the pledge's intent")
        return Started(pledge_id, secret, kind, amount, True), None
    keys = ctx.keys
    metadata = keys.metadata(pledge_id)
    tag = request_tag(row)
    customer = row.stripe_customer
    if not customer:
        with stripe_errors("creating the Stripe customer"):
            made = await v1.customers.create_async(
                params={"name": row.name, "email": row.email, "metadata": metadata},
                options=opts(keys.key(pledge_id, f"customer-{tag}")),
            )
        customer = made.id
    params: Any = {"customer": customer, "payment_method_types": ["card"], "metadata": metadata}
    with stripe_errors("creating the card form"):
        intent: Any
        if kind == "setup":
            params["usage"] = "off_session"
            intent = await v1.setup_intents.create_async(
                params=params, options=opts(keys.key(pledge_id, f"setup-{tag}"))
            )
        else:
            params.update(amount=int(row.amount), currency=row.currency.lower())
            intent = await v1.payment_intents.create_async(
                params=params, options=opts(keys.key(pledge_id, f"payment-{tag}"))
            )
    form = CardForm(pledge_id, str(customer), str(intent.id), bool(intent.livemode), kind)
    started = Started(pledge_id, str(intent.client_secret), kind, amount, admitted.replayed)
    return started, form


def record_card_form(tx: Tx, form: CardForm) -> None:
    """Record a pledge's customer and card form, in the caller's transaction."""
    tx.update(
        schema.pledges,
        {"id": form.pledge_id, "stripe_intent": None},
        stripe_customer=form.customer,
        stripe_intent=form.intent_id,
        livemode=form.livemode,
        updated_at=tx.now,
    )
    tx.record(
        "pledge.stripe", f"pledge:{form.pledge_id}", {"id": form.pledge_id, "intent": form.kind}
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


async def reread_secret(client: stripe.StripeClient, intent_id: str, what: str) -> str:
    """The client secret of an intent made before (a repeated submit gets the same
    form back; its secret is never stored)."""
    v1 = client.v1
    with stripe_errors(f"re-reading {what}"):
        found: Any = await (
            v1.setup_intents.retrieve_async(intent_id)
            if intent_id.startswith("seti_")
            else v1.payment_intents.retrieve_async(intent_id)
        )
    return str(found.client_secret)


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
