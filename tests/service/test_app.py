"""The service's own routes: the public figures as a page that polls them sees them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.stripe_fixtures import TestClient, make_settings

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env


def figures_service(
    campaign_dir: Path, sqlite_url: str, env: dict[str, str], seconds: float
) -> Iterator[TestClient]:
    settings = replace(make_settings(campaign_dir, sqlite_url, env), figures_seconds=seconds)
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


@pytest.fixture
def fresh(campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]) -> Iterator[TestClient]:
    """Figures computed again for every request (no caching)."""
    yield from figures_service(campaign_dir, sqlite_url, stripe_env, 0)


@pytest.fixture
def kept(campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]) -> Iterator[TestClient]:
    """Figures kept for a minute: longer than any test here takes."""
    yield from figures_service(campaign_dir, sqlite_url, stripe_env, 60)


def add_paid_pledge(cli: Cli, amount: str) -> None:
    cli.ok(
        "pledges", "add", "--name", "Grace Hopper", "--email", "grace@example.org",
        "--address", "9 Navy Yard, Arlington", "--amount", amount, "--round", "seed",
        "--status", "paid", "--reference", "BT-0042",
    )  # fmt: skip


def test_the_figures_carry_an_etag_and_a_poll_with_it_gets_304_until_they_change(
    fresh: TestClient, sqlite_cli: Cli
) -> None:
    first = fresh.get("/api/campaign")
    assert first.status_code == 200
    assert first.headers["content-type"] == "application/json"
    assert first.json()["pledged"] == 0 and first.json()["currency"] == "GBP"
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 10
    # A page polling with what it has: nothing new, nothing sent.
    same = fresh.get("/api/campaign", headers={"if-none-match": etag})
    assert (same.status_code, same.content, same.headers["etag"]) == (304, b"", etag)
    assert same.headers["cache-control"] == first.headers["cache-control"]
    # Security headers still on a 304 (the middleware sees every answer).
    assert same.headers["x-content-type-options"] == "nosniff"
    weak_among_others = fresh.get("/api/campaign", headers={"if-none-match": f'"x", W/{etag}'})
    assert weak_among_others.status_code == 304
    # A pledge arrives: the same poll now gets the new figures and a new tag.
    add_paid_pledge(sqlite_cli, "5000.00")
    changed = fresh.get("/api/campaign", headers={"if-none-match": etag})
    assert changed.status_code == 200
    assert changed.json()["pledged"] == 500000 and changed.json()["backers"] == 1
    assert changed.headers["etag"] != etag
    # The bytes are JSON as any client reads it, with no person in them.
    text = changed.content.decode("utf-8")
    assert json.loads(text) == changed.json()
    assert "Grace" not in text and "grace@" not in text and "Navy Yard" not in text


def test_kept_figures_are_served_from_memory_until_they_expire(
    kept: TestClient, sqlite_cli: Cli
) -> None:
    first = kept.get("/api/campaign")
    assert first.headers["cache-control"] == "public, max-age=60"
    add_paid_pledge(sqlite_cli, "5000.00")
    # Within the minute: the figures in memory, the same bytes and tag.
    again = kept.get("/api/campaign")
    assert again.content == first.content and again.headers["etag"] == first.headers["etag"]
    assert again.json()["pledged"] == 0
