"""Stripe's deliveries answered beside the middleware stack (service/webhook.py):
the same answers, headers and refusals as through it, and nothing stored when refused."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from fundraiser.payments.webhooks import signature_header
from fundraiser.service.webhook import BODY_LIMIT
from tests import stripe_fixtures
from tests.payments.test_webhooks import count_events, event
from tests.service.test_hardening import raw_exchange
from tests.service_process import Served
from tests.stripe_fixtures import WEBHOOK_SECRET, TestClient

localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

URL = "/api/stripe/webhook"
ELSEWHERE = "https://elsewhere.example"  # an Origin the service does not allow


def signed(body: bytes, **more: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "stripe-signature": signature_header(body, WEBHOOK_SECRET),
        **more,
    }


def customer_event(n: int) -> bytes:
    # An event the ledger stores and ignores: the same answer for every n.
    found = event("customer.created", {"id": f"cus_{n}", "object": "customer"}, n)
    return json.dumps(found).encode()


def answer_of(response: httpx.Response) -> tuple[int, list[tuple[str, str]], bytes]:
    """Status, headers (names lowercased, in order) and body, as a client sees them."""
    return (
        response.status_code,
        [(k.lower(), v) for k, v in response.headers.multi_items()],
        (response.content),
    )


def test_a_delivery_is_answered_as_the_stack_answers_it(
    service: TestClient, sqlite_url: str
) -> None:
    # Without an Origin header a delivery is answered beside the stack; with one (the
    # service does not allow) it goes through the stack, CORS included: the same answer.
    for n, duplicate in ((1, False), (1, True)):
        body = customer_event(n)
        plain = answer_of(service.post(URL, content=body, headers=signed(body)))
        other = customer_event(n + 100 * (not duplicate))
        headers = signed(other, origin=ELSEWHERE)
        through = answer_of(service.post(URL, content=other, headers=headers))
        assert plain == through
        status, headers, content = plain
        assert status == 200
        assert json.loads(content) == {"received": True, "duplicate": duplicate}
        names = dict(headers)
        assert names["content-security-policy"] == "default-src 'none'; frame-ancestors 'none'"
        assert names["cache-control"] == "no-store"
        assert names["x-content-type-options"] == "nosniff"
        assert names["x-frame-options"] == "DENY"
        assert names["vary"] == "Origin"
        assert names["content-type"] == "application/json"
    assert count_events(sqlite_url) == 2  # evt 1 once, evt 101 once


def test_refusals_match_the_stack_and_store_nothing(service: TestClient, sqlite_url: str) -> None:
    body = customer_event(7)
    bad = {**signed(body), "stripe-signature": signature_header(body, "whsec_wrong")}
    cases: list[tuple[dict[str, str], bytes, int, str]] = [
        (bad, body, 400, "Stripe-Signature"),
        (
            {k: v for k, v in signed(body).items() if k != "stripe-signature"},
            body,
            400,
            "Stripe-Signature",
        ),
        (signed(body, **{"content-length": str(BODY_LIMIT + 1)}), body, 413, "body"),
    ]
    for headers, content, status, field in cases:
        plain = answer_of(service.post(URL, content=content, headers=headers))
        through = answer_of(
            service.post(URL, content=content, headers={**headers, "origin": ELSEWHERE})
        )
        assert plain == through, field
        assert plain[0] == status and json.loads(plain[2])["field"] == field
    # A body over the limit that does not say its length: counted as it arrives.
    big = b'{"id": "evt_big", "pad": "' + b"x" * BODY_LIMIT + b'"}'

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start : start + 65536]

    answer = service.post(URL, content=chunks(), headers=signed(big))
    assert answer.status_code == 413 and answer.json()["field"] == "body"
    # Another host name is refused in the stack's words, whatever the delivery.
    answer = service.post(URL, content=body, headers={**signed(body), "host": "evil.example"})
    assert answer.status_code == 400 and answer.json()["field"] == "Host"
    assert count_events(sqlite_url) == 0
    # And a good delivery after all that is stored.
    assert service.post(URL, content=body, headers=signed(body)).json()["duplicate"] is False
    assert count_events(sqlite_url) == 1


@pytest.fixture
def served(
    small_goal: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[Served]:
    server = Served(campaign_dir / "campaign.toml", sqlite_url, stripe_env, tmp_path / "serve.log")
    yield server
    server.stop()


def test_deliveries_to_serve_and_one_that_leaves_mid_body(served: Served, sqlite_url: str) -> None:
    # Through `fundraiser serve` (httptools): a delivery that never finishes its body
    # costs one log line; kept-alive deliveries after it are answered and stored.
    body = customer_event(3)
    head = (
        f"POST {URL} HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body) + 500}\r\n"
        f"Stripe-Signature: {signature_header(body, WEBHOOK_SECRET)}\r\n\r\n"
    ).encode()
    raw_exchange(served.port, head + body, read=False)
    text = served.wait_for_log("went away")
    time.sleep(0.3)
    assert "Traceback" not in served.text(), text
    answers: list[Any] = []
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for n in (3, 4, 3):
            one = customer_event(n)
            answers.append(client.post(URL, content=one, headers=signed(one)).json())
    assert [a["duplicate"] for a in answers] == [False, False, True]
    assert count_events(sqlite_url) == 2
    assert "Traceback" not in served.text()
