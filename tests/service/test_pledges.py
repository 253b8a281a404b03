"""The pledge service end to end against the Stripe emulator (no browser)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import stripe

from fundraiser.ledger import open_ledger, schema
from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.stripe_fixtures import (
    AFTER_DEADLINE,
    TestClient,
    make_settings,
)

# pytest finds fixtures by name in the module: bind the shared ones here.
localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

PLEDGE = {
    "tier": "neighbour",
    "name": "Ada Lovelace",
    "email": "ada@example.org",
    "address": "1 High Street, London",
    "consent": True,
}


def post(client: TestClient, body: Any, **headers: str) -> Any:
    return client.post("/api/pledges", json=body, headers=headers)


def confirm(client: TestClient, body: dict[str, Any]) -> Any:
    """What the page does once Stripe.js is done: ask the service to check, with the
    pledge's own confirm token from the answer that created it."""
    return client.post(
        f"/api/pledges/{body['pledge_id']}/confirm",
        json={"confirm_token": body["confirm_token"]},
    )


def sdk(env: dict[str, str]) -> stripe.StripeClient:
    return stripe.StripeClient(
        env["STRIPE_SECRET_KEY"],
        base_addresses={"api": env["STRIPE_API_BASE"]},
        max_network_retries=0,
    )


def save_card(env: dict[str, str], client_secret: str, card: str = "pm_card_visa") -> None:
    """What Stripe.js does in the browser: confirm the SetupIntent with a card."""
    seti = client_secret.split("_secret_")[0]
    sdk(env).v1.setup_intents.confirm(seti, params={"payment_method": card})


def test_pledge_save_card_confirm_and_view(service: TestClient, stripe_env: dict[str, str]) -> None:
    answer = post(service, PLEDGE, **{"Idempotency-Key": "k-1"})
    assert answer.status_code == 201, answer.text
    body = answer.json()
    assert body["mode"] == "setup"
    assert body["amount"] == 20000 and body["currency"] == "GBP"
    assert body["publishable_key"] == "pk_test_fundraiser"
    assert body["client_secret"].startswith("seti_")
    # The same submit again: the same pledge and card form.
    again = post(service, PLEDGE, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 200
    assert again.json()["pledge_id"] == body["pledge_id"]
    assert again.json()["client_secret"] == body["client_secret"]
    # Not confirmed by the browser yet: the service asks Stripe, which says not yet.
    not_yet = confirm(service, body).json()
    assert not_yet["status"] == "pending" and not_yet["secured"] is False
    save_card(stripe_env, body["client_secret"])
    saved = confirm(service, body).json()
    assert saved["status"] == "authorized" and saved["secured"] is True
    token = body["manage_url"].rsplit("/", 1)[1]
    view = service.get(f"/api/manage/{token}").json()
    assert view["status"] == "authorized" and view["can_cancel"] is True
    assert service.get(f"/api/manage/{token}x").status_code == 403
    # The private-link page's favicon request gets "nothing", not a 404.
    icon = service.get("/favicon.ico")
    assert (icon.status_code, icon.content) == (204, b"")
    figures = service.get("/api/campaign").json()
    assert figures["pledged"] == 20000
    text = json.dumps(figures)
    assert "ada" not in text.lower() and "cus_" not in text and "seti_" not in text


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        ({**PLEDGE, "colour": "red"}, "colour", 400),
        ({**PLEDGE, "tier": None, "shares": 0}, "shares", 400),
        ({**PLEDGE, "tier": None, "shares": 201}, "shares", 400),
        ({**PLEDGE, "tier": None, "shares": True}, "shares", 400),
        ({**PLEDGE, "shares": 3}, "tier", 400),
        ({**PLEDGE, "tier": "emperor"}, "tier", 400),
        ({**PLEDGE, "email": "nope"}, "email", 400),
        ({**PLEDGE, "consent": False}, "consent", 400),
        ({**PLEDGE, "round": "seed"}, "round", 422),
        ({**PLEDGE, "name": "x" * 201}, "name", 400),
    ],
)
def test_bad_requests_name_the_field(
    service: TestClient, body: dict[str, Any], field: str, status: int
) -> None:
    answer = post(service, body)
    assert answer.status_code == status, answer.text
    assert answer.json()["field"] == field


def test_content_type_size_and_rate_limit(
    service: TestClient, campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> None:
    answer = service.post("/api/pledges", content=b"{}", headers={"content-type": "text/plain"})
    assert answer.status_code == 415 and answer.json()["field"] == "content-type"
    big = json.dumps({**PLEDGE, "address": "x" * 20000})
    answer = service.post("/api/pledges", content=big, headers={"content-type": "application/json"})
    assert answer.status_code == 413
    with TestClient(create_app(make_settings(campaign_dir, sqlite_url, stripe_env))) as strict:
        codes = [
            post(strict, {**PLEDGE, "email": f"b{n}@example.org"}).status_code for n in range(6)
        ]
    assert codes == [201] * 5 + [429]
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["cache-control"] == "no-store"


def test_cors_only_for_the_site(service: TestClient) -> None:
    ok = service.options(
        "/api/pledges",
        headers={
            "Origin": "http://127.0.0.1:9",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,idempotency-key",
        },
    )
    assert ok.status_code == 200
    assert ok.headers["access-control-allow-origin"] == "http://127.0.0.1:9"
    bad = service.options(
        "/api/pledges",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in bad.headers


def test_cancel_before_paid_but_never_after(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli
) -> None:
    first = post(service, PLEDGE).json()
    token = first["manage_url"].rsplit("/", 1)[1]
    assert service.post(f"/api/manage/{token}/cancel").json()["status"] == "cancelled"
    # The card form was cancelled at Stripe too: it can no longer save a card.
    seti = first["client_secret"].split("_secret_")[0]
    assert sdk(stripe_env).v1.setup_intents.retrieve(seti).status == "canceled"

    second = post(service, {**PLEDGE, "email": "bob@example.org"}).json()
    save_card(stripe_env, second["client_secret"])
    confirm(service, second)
    sqlite_cli.ok("collect", env={**stripe_env, "FUNDRAISER_NOW": AFTER_DEADLINE})
    token = second["manage_url"].rsplit("/", 1)[1]
    # After the deadline the link has expired; a paid pledge cannot be cancelled anyway.
    assert service.post(f"/api/manage/{token}/cancel").status_code in (403, 409)
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.read() as conn:
        row = conn.execute(
            schema.pledges.select().where(schema.pledges.c.id == second["pledge_id"])
        ).one()
    assert row.status == "paid"


def test_missing_settings_stop_serve(sqlite_cli: Cli) -> None:
    result = sqlite_cli("serve", env={"STRIPE_SECRET_KEY": "sk_test_x"})
    assert result.exit_code != 0
    for name in ("STRIPE_PUBLISHABLE_KEY", "STRIPE_WEBHOOK_SECRET", "FUNDRAISER_SECRET"):
        assert name in result.output
