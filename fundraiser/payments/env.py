"""What a payments command needs, from the environment: the client and the context."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import stripe

from fundraiser.config import Campaign
from fundraiser.errors import NotConfigured
from fundraiser.ledger import Ledger
from fundraiser.links import ServiceLinks, Signer
from fundraiser.payments import joining
from fundraiser.payments.client import as_dict, client_from_env, stripe_errors
from fundraiser.payments.events import Context
from fundraiser.stripekeys import ledger_keys


@dataclass(frozen=True)
class Payments:
    client: stripe.StripeClient
    ctx: Context
    emulated: bool = False  # STRIPE_API_BASE names the emulator (payments/joining.py)


def payments_from_env(
    environ: Mapping[str, str],
    ledger: Ledger,
    campaign: Campaign,
    *,
    fix_days: int = 7,
    need_links: bool = False,
) -> Payments:
    client = client_from_env(environ)
    secret = environ.get("FUNDRAISER_SECRET", "")
    base = (environ.get("PLEDGE_API") or environ.get("SITE_ORIGIN") or "").rstrip("/")
    links = None
    if secret and base:
        links = ServiceLinks(Signer(secret), base, campaign.campaign.deadline)
    elif need_links:
        raise NotConfigured(
            "FUNDRAISER_SECRET and PLEDGE_API (the pledge service's address) are needed "
            "to mail backers a link to fix a failed payment: export both"
        )

    def fetch_charge(charge_id: str) -> dict[str, Any]:
        with stripe_errors("re-reading a charge"):
            return as_dict(client.v1.charges.retrieve(charge_id))

    ctx = Context(
        keys=ledger_keys(ledger),
        fix_window=timedelta(days=fix_days),
        links=links,
        fetch_charge=fetch_charge,
        after_payment=joining.after_payment_hook(campaign),
        grace_days=campaign.membership.grace_days if campaign.membership else 0,
    )
    return Payments(client, ctx, joining.for_emulator(environ.get("STRIPE_API_BASE")))
