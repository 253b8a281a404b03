"""A member's fee at Stripe, changed from their own page: the card, the rate, the end.

Every write carries an idempotency key from our ids (the fee subscription's id
and the member's count of such changes), so a retried request is the same
request. What the ledger records of each is in fundraiser.membership.account
and fees; the service calls these, then records.

Real Stripe takes a subscription's `default_payment_method` and
`proration_behavior`; the emulator (localstripe) answers 500 to both, and knows
only the older `prorate`. The card is also made the customer's default for
invoices, which Stripe uses when the subscription names none; a rate change
falls back to `prorate=false` only when Stripe answers 500 to the newer name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import stripe

from fundraiser.config.model import Fee, Rate
from fundraiser.errors import NotFound, PaymentError
from fundraiser.payments.client import as_dict, opts, stripe_errors
from fundraiser.payments.events import id_of
from fundraiser.payments.intents import ensure_attached
from fundraiser.payments.plans import ensure_plan
from fundraiser.stripekeys import Keys


def _key(keys: Keys, subscription_id: int, what: str) -> str:
    return f"{keys.namespace}-fee-{subscription_id}-{what}"


def card_form(
    client: stripe.StripeClient, keys: Keys, subscription_id: int, customer: str, attempt: int
) -> tuple[str, str]:
    """A SetupIntent on the member's customer: (its id, its client secret)."""
    params: Any = {
        "customer": customer,
        "usage": "off_session",
        "payment_method_types": ["card"],
        "metadata": {"fee_subscription": str(subscription_id), "ledger": keys.namespace},
    }
    with stripe_errors("preparing the card form"):
        intent = as_dict(
            client.v1.setup_intents.create(
                params, opts(_key(keys, subscription_id, f"card-{attempt}"))
            )
        )
    return str(intent["id"]), str(intent["client_secret"])


@dataclass(frozen=True)
class CardSaved:
    payment_method: str
    last4: str | None


def use_card(
    client: stripe.StripeClient, setup_intent: str, customer: str, subscription: str | None
) -> CardSaved:
    """The card a finished SetupIntent saved becomes the fee's card (read from Stripe,
    never from the browser)."""
    with stripe_errors("reading the card form"):
        intent = as_dict(client.v1.setup_intents.retrieve(setup_intent))
    if id_of(intent.get("customer")) != customer:
        raise NotFound("no such card form for this member")
    if intent.get("status") != "succeeded":
        raise PaymentError(f"the card was not saved (the form is {intent.get('status')})")
    method = id_of(intent.get("payment_method"))
    if not method:
        raise PaymentError("the card form holds no card")
    ensure_attached(client, intent)
    with stripe_errors("making the card the fee's card"):
        client.v1.customers.update(
            customer,
            {"invoice_settings": {"default_payment_method": method}},
            opts(f"customer-{customer}-default-{method}"),
        )
        if subscription:
            try:
                client.v1.subscriptions.update(
                    subscription,
                    {"default_payment_method": method},
                    opts(f"subscription-{subscription}-default-{method}"),
                )
            except stripe.APIError as exc:
                if exc.http_status != 500:  # the emulator's answer to the parameter
                    raise
        found = as_dict(client.v1.payment_methods.retrieve(method))
    return CardSaved(method, (found.get("card") or {}).get("last4"))


def move_rate(
    client: stripe.StripeClient,
    keys: Keys,
    *,
    coop_name: str,
    fee: Fee,
    rate: Rate,
    subscription_id: int,
    subscription: str,
    attempt: int,
) -> str:
    """The subscription moved to `rate`'s Plan from its next period (no proration); the plan."""
    plan = ensure_plan(client, coop_name, fee, rate)
    with stripe_errors("reading the fee's subscription"):
        sub = as_dict(client.v1.subscriptions.retrieve(subscription))
    items = (sub.get("items") or {}).get("data") or []
    if not items:
        raise PaymentError(f"the subscription {subscription} has no item to move")
    item = str(items[0]["id"])
    key = _key(keys, subscription_id, f"rate-{attempt}-{rate.value}")
    with stripe_errors("moving the fee to its new rate"):
        try:
            client.v1.subscriptions.update(
                subscription,
                {"items": [{"id": item, "plan": plan}], "proration_behavior": "none"},
                opts(key),
            )
        except stripe.APIError as exc:
            if exc.http_status != 500:
                raise
            params: Any = {"items": [{"id": item, "plan": plan}], "prorate": False}
            client.v1.subscriptions.update(subscription, params, opts(f"{key}-legacy"))
    return plan


def end(client: stripe.StripeClient, keys: Keys, subscription_id: int, subscription: str) -> None:
    """Cancel the fee's subscription at Stripe (no further invoices); once."""
    with stripe_errors("ending the fee's subscription"):
        try:
            client.v1.subscriptions.cancel(
                subscription, options=opts(_key(keys, subscription_id, "end"))
            )
        except stripe.InvalidRequestError as exc:
            # Ended already (by Stripe, or a request that timed out after succeeding).
            if exc.code != "resource_missing" and "canceled" not in str(exc):
                raise
