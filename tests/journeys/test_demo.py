"""`fundraiser demo` as a newcomer runs it: start, pledge in a browser, Ctrl-C, nothing left."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from fundraiser.cli import main
from tests.browser import fill_test_card, launch, needs_chromium
from tests.conftest import ROOT, free_port


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


def start_demo(state: Path, port: int) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "fundraiser", "demo", "--dir", str(state), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FUNDRAISER_NOW")},
    )
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if "Press Ctrl-C" in line:
            return process, "".join(lines)
    process.kill()
    raise AssertionError("the demo did not start:\n" + "".join(lines))


def tracked_screenshots() -> dict[str, str]:
    """docs/'s images as they are in the checkout: a test run must leave them alone."""
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in (ROOT / "docs").glob("*")}


def organizer(state: Path, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "fundraiser", "--campaign", str(state / "campaign.toml"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "FUNDRAISER_NOW")},
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@needs_chromium
def test_demo_pledge_in_the_browser_then_ctrl_c_leaves_nothing(tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    state, port = tmp_path / "demo", free_port()
    docs_before = tracked_screenshots()
    process, banner = start_demo(state, port)
    ports = [int(p) for p in re.findall(r"http://127\.0\.0\.1:(\d+)", banner)]
    assert port in ports and len(set(ports)) == 3, banner
    try:
        with sync_playwright() as pw:
            browser = launch(pw)
            try:
                page = browser.new_page(viewport={"width": 1200, "height": 900})
                page.goto(f"http://127.0.0.1:{port}/")
                assert "Hearth" in page.title()
                # Screenshots go to the test's own folder: scripts/screenshots.py refreshes docs/.
                page.screenshot(path=str(tmp_path / "home.png"))
                page.goto(f"http://127.0.0.1:{port}/pledge.html")
                page.check("#tier-neighbour")
                page.fill("#name", "Ada Lovelace")
                page.fill("#email", "ada@example.org")
                page.fill("#address", "12 St James's Square, London")
                fill_test_card(page, "4242424242424242", "SW1Y 4")
                page.check("#consent")
                page.screenshot(path=str(tmp_path / "pledge.png"), full_page=True)
                page.click("#pledge-form button[type=submit]")
                page.wait_for_selector("#pledge-thanks:not([hidden])", timeout=20000)
            finally:
                browser.close()
        pledges = json.loads(organizer(state, "pledges", "list", "--json"))
        assert [(p["name"], p["status"], p["amount"]) for p in pledges] == [
            ("Ada Lovelace", "authorized", 20000)
        ]
        assert json.loads(organizer(state, "status", "--json"))["pledged"] == 20000
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
    assert (tmp_path / "home.png").stat().st_size > 0
    assert (tmp_path / "pledge.png").stat().st_size > 0
    assert tracked_screenshots() == docs_before
    for p in ports:
        assert not listening(p), f"port {p} is still open"
    assert processes_mentioning(str(state)) == []
    for p in set(ports):  # the emulator is started with its port on its command line
        assert [c for c in processes_mentioning(str(p)) if "localstripe" in c] == []


def test_demo_refuses_a_busy_port(tmp_path: Path) -> None:
    from click.testing import CliRunner

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(main, ["demo", "--dir", str(tmp_path), "--port", str(port)])
    assert result.exit_code == 2
    assert f"--port {port}" in result.output and "Traceback" not in result.output


def test_demo_refuses_a_folder_it_cannot_write(tmp_path: Path) -> None:
    from click.testing import CliRunner

    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    result = CliRunner().invoke(
        main, ["demo", "--dir", str(blocker / "inside"), "--port", str(free_port())]
    )
    assert result.exit_code == 2
    assert "--dir" in result.output and "Traceback" not in result.output


def test_demo_campaign_is_open_now(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from fundraiser.config import load_campaign
    from fundraiser.demo import shifted_campaign

    now = datetime.now(UTC)
    text = shifted_campaign((ROOT / "campaign.toml").read_text(), now)
    path = tmp_path / "campaign.toml"
    path.write_text(text)
    campaign = load_campaign(path)
    crowd = campaign.round("crowd")
    assert crowd is not None and crowd.is_open(now)
    assert campaign.campaign.opens < now < campaign.campaign.deadline
    assert campaign.campaign.goal.amount == 100000
