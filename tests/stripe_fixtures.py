"""Stripe for tests: localstripe as a real process on loopback, the real SDK pointed at it.

Bind the fixtures you use in a test module by name (an import would be flagged by
ruff as unused, then as redefined by the test's parameter):
    from tests import stripe_fixtures
    localstripe = stripe_fixtures.localstripe
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # Starlette suggests httpx2 for its test client; httpx is what we have.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from fundraiser.config import load_campaign
from fundraiser.service.app import create_app
from fundraiser.service.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
#: Inside the crowd round of the example campaign (as the CLI tests use).
NOW = datetime(2026, 12, 10, 12, tzinfo=UTC)
AFTER_DEADLINE = "2027-03-01T09:00:00+00:00"
WEBHOOK_SECRET = "whsec_test_fundraiser"
LINK_SECRET = "test-secret-for-private-links-0123456789"

_SERVER = """
import sys
import aiohttp.web
from localstripe.resources import store
store.dump_to_disk = lambda: None  # in memory only
from localstripe.server import app
aiohttp.web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LocalStripe:
    url: str
    process: subprocess.Popen[bytes]

    def request(self, method: str, path: str, data: Any = None) -> Any:
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Authorization": "Bearer sk_test_fixture", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as answer:
            text = answer.read()
        return json.loads(text) if text.strip() else None

    def reset(self) -> None:
        self.request("DELETE", "/_config/data")

    def all(self, kind: str, **query: str) -> list[dict[str, Any]]:
        """Every object of a kind (charges, payment_intents, refunds...), paging through."""
        found: list[dict[str, Any]] = []
        after = None
        while True:
            params = {"limit": "100", **query, **({"starting_after": after} if after else {})}
            qs = "&".join(f"{k}={v}" for k, v in params.items())
            page = self.request("GET", f"/v1/{kind}?{qs}")
            found.extend(page["data"])
            if not page["has_more"] or not page["data"]:
                return found
            after = page["data"][-1]["id"]

    def succeeded_charges(self) -> list[dict[str, Any]]:
        return [c for c in self.all("charges") if c["status"] == "succeeded"]


def start_localstripe() -> LocalStripe:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return LocalStripe(f"http://127.0.0.1:{port}", process)
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("localstripe did not start")


@pytest.fixture(scope="session")
def localstripe() -> Iterator[LocalStripe]:
    server = start_localstripe()
    yield server
    server.process.terminate()
    try:
        server.process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        server.process.kill()


@pytest.fixture
def stripe_env(localstripe: LocalStripe) -> dict[str, str]:
    """The environment a payments command or the service reads; the emulator emptied."""
    localstripe.reset()
    return {
        "STRIPE_SECRET_KEY": "sk_test_fundraiser",
        "STRIPE_PUBLISHABLE_KEY": "pk_test_fundraiser",
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "STRIPE_API_BASE": localstripe.url,
        "FUNDRAISER_SECRET": LINK_SECRET,
        "SITE_ORIGIN": "http://127.0.0.1:9",
        "PLEDGE_API": "http://testserver",
    }


def make_settings(
    campaign_dir: Path, db_url: str, env: dict[str, str], now: datetime = NOW
) -> Settings:
    return Settings.from_env(
        env,
        campaign=load_campaign(campaign_dir / "campaign.toml"),
        database_url=db_url,
        now=lambda: now,
    )


GOAL_LINE = 'goal = "250000.00"'


@pytest.fixture
def small_goal(campaign_dir: Path) -> Path:
    """The example campaign with a goal of GBP 100, so a test's few pledges meet it."""
    copy_campaign(campaign_dir, GOAL_LINE, 'goal = "100.00"')
    return campaign_dir


@pytest.fixture
def service(
    small_goal: Path, campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> Iterator[TestClient]:
    """The pledge service in-process (real ledger, real emulator), via Starlette's client."""
    # Tests make many pledges from one address: the per-address limit is tested on its own.
    settings = replace(
        make_settings(campaign_dir, sqlite_url, stripe_env),
        pledges_per_minute=6000,
        pledge_burst=500,
    )
    app = create_app(settings)
    with TestClient(app, base_url="http://testserver") as client:
        yield client


def copy_campaign(campaign_dir: Path, old: str, new: str) -> None:
    path = campaign_dir / "campaign.toml"
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
