"""`fundraiser demo` run as people run it: pledges arrive, the site follows, Ctrl-C, run again."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import stripe

from fundraiser.emulator import SECRET_KEY
from tests.conftest import free_port

CLEAN_ENV = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FUNDRAISER_NOW")}


class Running:
    """One `fundraiser demo` process and the addresses its banner gave."""

    def __init__(self, state: Path, port: int) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "fundraiser", "demo", "--dir", str(state), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=CLEAN_ENV,
        )
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Press Ctrl-C" in line:
                break
        self.banner = "".join(lines)
        if "Press Ctrl-C" not in self.banner:
            self.process.kill()
            raise AssertionError("the demo did not start:\n" + self.banner)
        self.site = f"http://127.0.0.1:{port}"
        self.api = _found(r"Pledge service\s+(http://127\.0\.0\.1:\d+)", self.banner)
        self.emulator = _found(r"Stripe emulator\s+(http://127\.0\.0\.1:\d+)", self.banner)

    def stop(self) -> str:
        """Ctrl-C, as a person presses it; the rest of what it printed."""
        self.process.send_signal(signal.SIGINT)
        try:
            rest, _ = self.process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        assert self.process.returncode == 0, rest
        return rest

    def pledge(self, tier: str, name: str, display_name: str = "") -> int:
        """What the pledge page does: ask for a card form, confirm the card at Stripe, report."""
        answer = self.open_card_form(tier, name, display_name)
        return self.save_card(answer["pledge_id"], answer["client_secret"], answer["confirm_token"])

    def open_card_form(self, tier: str, name: str, display_name: str = "") -> Any:
        body: dict[str, Any] = {
            "tier": tier,
            "name": name,
            "email": f"{name.split()[0].lower()}@example.org",
            "address": "1 High Street, London",
            "consent": True,
        }
        if display_name:
            body["display_name"] = display_name
        return self.post("/api/pledges", body)

    def save_card(self, pledge_id: int, client_secret: str, confirm_token: str) -> int:
        stripe.StripeClient(
            SECRET_KEY, base_addresses={"api": self.emulator}, max_network_retries=0
        ).v1.setup_intents.confirm(
            client_secret.split("_secret_")[0], params={"payment_method": "pm_card_visa"}
        )
        confirmed = self.post(f"/api/pledges/{pledge_id}/confirm", {"confirm_token": confirm_token})
        assert confirmed["status"] == "authorized", confirmed
        return int(pledge_id)

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(
            self.api + path,
            data=json.dumps(body).encode() if body is not None else b"",
            method="POST",
            headers={
                "Content-Type": "application/json",
                "Origin": self.site,
                "Idempotency-Key": uuid.uuid4().hex,
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def page(self, path: str) -> str:
        with urllib.request.urlopen(self.site + path, timeout=10) as response:
            return str(response.read().decode("utf-8"))


def _found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in the banner:\n{text}"
    return match.group(1)


def organizer(state: Path, *args: str, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "fundraiser", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**CLEAN_ENV, "FUNDRAISER_CAMPAIGN": str(state / "campaign.toml"), **(env or {})},
        cwd=state.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def eventually(check: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"not within {seconds} s: {what}")


def time_wait_on(port: int) -> bool:
    """Whether connections to 127.0.0.1:port linger in TIME-WAIT (as after a stopped server)."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return any(r.split()[1] == local and r.split()[3] == "06" for r in rows)


def test_pledges_reach_the_demo_site_and_it_runs_again_at_once_with_its_state(
    tmp_path: Path,
) -> None:
    state, port = tmp_path / "demo", free_port()
    demo = Running(state, port)
    try:
        # Three pledges that meet the demo's goal (1,000.00): 200 + 200 + 1,000.
        first = demo.pledge("neighbour", "Ada Lovelace")
        demo.pledge("neighbour", "Alan Turing")
        demo.pledge("founder", "Grace Hopper", display_name="Grace H.")
        # A fourth backer opens the card form, and has not given a card when the demo stops.
        unfinished = demo.open_card_form("member", "Mary Somerville")

        def campaign() -> Any:
            return json.loads(demo.page("/campaign.json"))

        eventually(lambda: campaign()["backers"] == 3, "campaign.json counts three backers")
        assert campaign()["pledged"] == 140000 and campaign()["goal_met"] is True
        # The pages themselves, as built (no JavaScript needed), and the named backer.
        eventually(
            lambda: (
                'data-figure="backers">3<' in demo.page("/index.html")
                and "Grace H." in demo.page("/transparency.html")
            ),
            "the home and transparency pages show the pledges",
        )
        home = demo.page("/index.html")
        assert re.search(r'data-figure="pledged"[^>]*>£1,400<', home), "the home page's total"
        transparency = demo.page("/transparency.html")
        assert 'data-figure="backers">3<' in transparency
        # The organizer's refresh finds the demo's built site from its settings.
        refreshed = organizer(state, "site", "figures")
        assert f"Refreshed {state / 'site' / 'output' / 'campaign.json'}" in refreshed
        assert "£1,400.00 of £1,000.00 pledged, 3 backers" in refreshed
    finally:
        demo.stop()
    stopped = time.monotonic()
    # The pages fetched above leave the site's port in TIME-WAIT: what used to
    # make a rerun fail for a minute with "something else is listening there".
    assert time_wait_on(port)

    assert time.monotonic() - stopped < 5
    again = Running(state, port)
    try:
        # The emulator kept its objects: a sync re-reads every pledge's card form.
        organizer(
            state,
            "stripe",
            "sync",
            env={"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_API_BASE": again.emulator},
        )
        pledges = json.loads(organizer(state, "pledges", "list", "--json"))
        assert sorted((p["name"], p["status"]) for p in pledges) == [
            ("Ada Lovelace", "authorized"),
            ("Alan Turing", "authorized"),
            ("Grace Hopper", "authorized"),
            ("Mary Somerville", "pending"),
        ]
        # The sync moved the journal, so the demo rebuilds its site in place: a page
        # fetched while Pelican rewrites it can come back empty (a local preview only).
        eventually(
            lambda: 'data-figure="backers">3<' in again.page("/index.html"),
            "the home page's 3 backers",
        )
        # The card form opened before the stop still works, and pledging goes on.
        again.save_card(
            unfinished["pledge_id"], unfinished["client_secret"], unfinished["confirm_token"]
        )
        assert again.pledge("member", "Charles Babbage") > first
        eventually(lambda: json.loads(again.page("/campaign.json"))["backers"] == 5, "5 backers")
    finally:
        again.stop()


def test_a_second_demo_on_a_port_in_use_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    state, port = tmp_path / "demo", free_port()
    demo = Running(state, port)
    try:
        before = sorted(p.name for p in (state / "var").iterdir())
        other = ["--dir", str(tmp_path / "other"), "--port", str(port)]
        result = subprocess.run(
            [sys.executable, "-m", "fundraiser", "demo", *other],
            capture_output=True,
            text=True,
            timeout=60,
            env=CLEAN_ENV,
        )
        assert result.returncode == 2
        assert f"--port {port}: something else is listening there" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "other").exists()
        assert sorted(p.name for p in (state / "var").iterdir()) == before
    finally:
        demo.stop()
