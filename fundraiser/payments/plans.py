"""The membership fee as Stripe objects: one Product for the co-op's membership and
one Plan for each rate at each amount.

A Plan's amount and interval cannot change at Stripe, so the id names both: when
the rules change the fee, the new amount gets a new Plan and members on the old
one keep it until moved. Ids come from the co-op's name and the rate, so every
process (and a rerun after a crash) finds the same objects instead of making
twins. The emulator implements Plans, not Prices; Stripe accepts a plan's id
wherever a subscription item asks for a price.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import stripe

from fundraiser.config.model import Fee, Rate
from fundraiser.errors import UserInputError
from fundraiser.payments.client import as_dict, opts, stripe_errors


def _tag(coop_name: str) -> str:
    """A short, stable, ASCII tag for the co-op (names may carry any letters)."""
    plain = re.sub(r"[^a-z0-9]+", "-", coop_name.lower()).strip("-")[:24] or "coop"
    digest = hashlib.sha256(coop_name.encode()).hexdigest()[:8]
    return f"{plain}-{digest}"


def product_id(coop_name: str) -> str:
    return f"membership-{_tag(coop_name)}"


def plan_id(coop_name: str, fee: Fee, rate: Rate) -> str:
    """The Plan for one rate, named by its amount and interval (a new amount, a new plan)."""
    amount = fee.rates().get(rate)
    if amount is None or amount.amount <= 0:
        raise UserInputError(f"the fee has no paid {rate.value} rate: choose one of {_paid(fee)}")
    return (
        f"fee-{_tag(coop_name)}-{rate.value}-"
        f"{amount.amount}{amount.currency.lower()}-{fee.interval.value}"
    )


_OURS = re.compile(r"^fee-.+-(standard|reduced|supporter)-\d+[a-z]{3}-(?:month|year)$")


def rate_of(plan: str) -> str | None:
    """The rate one of our plans bills (None: a plan or price made elsewhere)."""
    found = _OURS.match(plan)
    return found.group(1) if found else None


def _paid(fee: Fee) -> str:
    return ", ".join(r.value for r, m in fee.rates().items() if m.amount > 0)


def _exists(retrieve: Any, object_id: str, what: str) -> bool:
    """Whether Stripe has the object; any answer but "no such object" is an error."""
    with stripe_errors(what):
        try:
            retrieve(object_id)
        except stripe.InvalidRequestError as exc:
            if exc.http_status == 404 or exc.code == "resource_missing":
                return False
            raise
    return True


def ensure_product(client: stripe.StripeClient, coop_name: str) -> str:
    found = product_id(coop_name)
    if not _exists(client.v1.products.retrieve, found, "reading the membership product"):
        with stripe_errors("creating the membership product"):
            client.v1.products.create(
                {"id": found, "name": f"Membership of {coop_name}", "type": "service"},
                opts(f"product-{found}"),
            )
    return found


def ensure_plan(client: stripe.StripeClient, coop_name: str, fee: Fee, rate: Rate) -> str:
    """The Plan's id for `rate`, made at Stripe (with its product) when it is not there."""
    found = plan_id(coop_name, fee, rate)
    if _exists(client.v1.plans.retrieve, found, "reading the fee's plan"):
        return found
    amount = fee.rates()[rate]
    product = ensure_product(client, coop_name)
    params: Any = {
        "id": found,
        "amount": amount.amount,
        "currency": amount.currency.lower(),
        "interval": fee.interval.value,
        "product": product,
        "nickname": f"{rate.value} membership fee",
    }
    with stripe_errors("creating the fee's plan"):
        as_dict(client.v1.plans.create(params, opts(f"plan-{found}")))
    return found
