"""Joining after the campaign, for tests: the example campaign with automatic admission,
the pledge service on its clock after the deadline, and what the join page's script does.

Bind the fixtures by name in a test module, as with tests/stripe_fixtures.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import stripe

from fundraiser.service.app import create_app
from tests.stripe_fixtures import TestClient, copy_campaign, make_settings

#: After the example campaign's deadline (28 February 2027): joining is open.
JOIN_NOW = datetime(2027, 3, 1, 9, tzinfo=UTC)

JOIN = {
    "name": "Grace Hopper",
    "email": "grace@example.org",
    "address": "9 Navy Yard, Arlington",
    "display_name": "Grace",
    "shares": 2,
    "rate": "standard",
    "method": "card",
    "consent": True,
}


def automatic(campaign_dir: Path) -> Path:
    copy_campaign(campaign_dir, 'admission = "board"', 'admission = "automatic"')
    return campaign_dir


@pytest.fixture
def join_service(
    campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> Iterator[TestClient]:
    """The pledge service in-process after the deadline, admission automatic."""
    automatic(campaign_dir)
    with join_client(campaign_dir, sqlite_url, stripe_env) as client:
        yield client


@contextmanager
def join_client(campaign_dir: Path, sqlite_url: str, env: dict[str, str]) -> Iterator[TestClient]:
    """The service on campaign_dir's campaign.toml as it is now, on the clock after the close."""
    settings = replace(
        make_settings(campaign_dir, sqlite_url, env, now=JOIN_NOW),
        pledges_per_minute=6000,
        pledge_burst=500,
    )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def sdk(env: dict[str, str]) -> stripe.StripeClient:
    return stripe.StripeClient(
        env["STRIPE_SECRET_KEY"],
        base_addresses={"api": env["STRIPE_API_BASE"]},
        max_network_retries=0,
    )


def post_join(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post("/api/join", json=body, headers=headers)


def save_card(env: dict[str, str], client_secret: str, method: str = "pm_card_visa") -> Any:
    """What Stripe.js does in the browser: confirm the join's SetupIntent with a card."""
    intent = client_secret.split("_secret_")[0]
    return sdk(env).v1.setup_intents.confirm(intent, params={"payment_method": method})


def confirm_join(client: TestClient, body: dict[str, Any]) -> Any:
    return client.post(
        f"/api/join/{body['pledge_id']}/confirm", json={"confirm_token": body["confirm_token"]}
    )
