"""`fundraiser demo`: the whole kit on one machine, with no Stripe account.

Starts the Stripe emulator and the pledge service on loopback, builds the
example site against them, serves it, and stops every process it started
when interrupted. The campaign's dates are moved so that it is open now.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

from fundraiser.emulator import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    Emulator,
    free_port,
    port_is_free,
    wait_for_port,
)
from fundraiser.errors import FundraiserError, UserInputError

#: Events the emulator can send; the rest arrive through `fundraiser stripe sync`.
WEBHOOK_EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_method.attached",
]


#: The demo's goal, small so that a few pledges meet it and collection charges them.
DEMO_GOAL = "1000.00"


def kit_root() -> Path:
    return Path(__file__).resolve().parent.parent


def shifted_campaign(text: str, now: datetime) -> str:
    """The example campaign with its dates moved so the crowd round is open now."""
    start = (now - timedelta(days=14)).replace(microsecond=0)
    crowd = (now - timedelta(days=1)).replace(microsecond=0)
    deadline = (now + timedelta(days=30)).replace(second=0, microsecond=0)
    dates = {
        ("campaign", "opens"): start,
        ("campaign", "deadline"): deadline,
        ("rounds.seed", "opens"): start,
        ("rounds.seed", "closes"): crowd,
        ("rounds.crowd", "opens"): crowd,
        ("rounds.crowd", "closes"): deadline,
    }
    section, lines = "", []
    for line in text.splitlines():
        header = re.match(r"^\[([^\[\]]+)\]\s*$", line)
        if header:
            section = header.group(1)
        key = re.match(r"^(opens|closes|deadline)\s*=", line)
        if key and (section, key.group(1)) in dates:
            line = f"{key.group(1)} = {dates[(section, key.group(1))].isoformat()}"
        if section == "campaign" and re.match(r"^goal\s*=", line):
            line = f'goal = "{DEMO_GOAL}"'  # a few test pledges can meet it
        lines.append(line)
    return "\n".join(lines) + "\n"


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Demo:
    directory: Path
    port: int
    say: Callable[[str], None]
    emulator: Emulator | None = None
    service: subprocess.Popen[bytes] | None = None
    site_server: http.server.ThreadingHTTPServer | None = None
    stopping: threading.Event = field(default_factory=threading.Event)
    #: Signs backers' private links in this demo only.
    link_secret: str = field(default_factory=lambda: secrets.token_urlsafe(32))

    @property
    def campaign_path(self) -> Path:
        return self.directory / "campaign.toml"

    def prepare(self, now: datetime) -> None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            probe = self.directory / ".write-test"
            probe.write_text("ok")
            probe.unlink()
        except OSError as exc:
            raise UserInputError(
                f"--dir {self.directory}: cannot write there ({exc.strerror}); "
                "choose a folder you can write to"
            ) from None
        if not self.campaign_path.exists():
            example = (kit_root() / "campaign.toml").read_text(encoding="utf-8")
            self.campaign_path.write_text(shifted_campaign(example, now), encoding="utf-8")

    def start(self, now: datetime) -> None:
        if not port_is_free(self.port):
            raise UserInputError(
                f"--port {self.port}: something else is listening there; "
                "stop it or choose another port, e.g. --port 8080"
            )
        self.prepare(now)
        self.emulator = Emulator.start()
        service_port = free_port()
        site_origin = f"http://127.0.0.1:{self.port}"
        api = f"http://127.0.0.1:{service_port}"
        webhook_secret = "whsec_demo_" + secrets.token_hex(16)
        env = {
            **os.environ,
            "STRIPE_SECRET_KEY": SECRET_KEY,
            "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            "STRIPE_WEBHOOK_SECRET": webhook_secret,
            "STRIPE_API_BASE": self.emulator.url,
            "FUNDRAISER_SECRET": self.link_secret,
            "SITE_ORIGIN": site_origin,
            "PLEDGE_API": api,
        }
        env.pop("DATABASE_URL", None)
        env.pop("FUNDRAISER_NOW", None)
        self.service = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "fundraiser",
                "--campaign",
                str(self.campaign_path),
                "serve",
                "--port",
                str(service_port),
            ],
            env=env,
            stdout=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(service_port, self.service, "the pledge service")
        self.emulator.send_webhooks_to(f"{api}/api/stripe/webhook", webhook_secret, WEBHOOK_EVENTS)
        output = self.directory / "site"
        self._build(output, now, api)
        handler = functools.partial(_QuietHandler, directory=str(output))
        self.site_server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        threading.Thread(target=self.site_server.serve_forever, daemon=True).start()
        self._explain(site_origin, api)

    def _build(self, output: Path, now: datetime, api: str) -> None:
        from fundraiser.sitegen.build import build_site

        assert self.emulator is not None
        report = build_site(
            kit_root() / "site" / "pelicanconf.py",
            campaign_path=self.campaign_path,
            database_url=None,
            now=now,
            output=output,
            extra={
                "STRIPE_JS_URL": self.emulator.stripe_js,
                "PLEDGE_API": api,
                "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            },
        )
        self.say(f"Built {report.pages} pages into {output}")

    def _explain(self, site: str, api: str) -> None:
        assert self.emulator is not None
        campaign = self.campaign_path
        from fundraiser.config import load_campaign

        deadline = load_campaign(campaign).campaign.deadline
        after = (deadline + timedelta(hours=1)).isoformat()
        self.say(
            f"""
The demo is running. Open {site}/ in a browser.

  Site            {site}/            (pledge page: {site}/pledge.html)
  Pledge service  {api}
  Stripe emulator {self.emulator.url}   (no real money, no account)
  State           {self.directory}

The demo campaign's goal is {DEMO_GOAL} so that a few pledges meet it.
Try a pledge with a test card (any future expiry, any CVC):
  4242424242424242   succeeds
  4000002500003155   asks for 3-D Secure (press "Complete authentication")
  4000000000000341   is saved, then declined when the campaign collects

In another terminal, as an organizer (the emulator keys are for this demo only):
  export FUNDRAISER_CAMPAIGN={campaign}
  export STRIPE_SECRET_KEY={SECRET_KEY} STRIPE_API_BASE={self.emulator.url}
  export FUNDRAISER_SECRET={self.link_secret} PLEDGE_API={api}
  fundraiser status
  fundraiser pledges list
  fundraiser stripe sync
  # close the campaign by pretending it is after the deadline, then collect:
  FUNDRAISER_NOW={after} fundraiser collect
  fundraiser shares allocate
  fundraiser shares issue
  fundraiser members list

Press Ctrl-C to stop everything."""
        )

    def wait(self) -> None:
        """Block until interrupted, or until a child process dies."""
        while not self.stopping.wait(0.5):
            children = {"pledge service": self.service}
            if self.emulator is not None:
                children["Stripe emulator"] = self.emulator.process
            for what, process in children.items():
                if process is not None and process.poll() is not None:
                    raise FundraiserError(f"the {what} stopped (exit {process.returncode})")

    def stop(self) -> None:
        if self.site_server is not None:
            self.site_server.shutdown()
            self.site_server.server_close()
        if self.service is not None and self.service.poll() is None:
            self.service.terminate()
            try:
                self.service.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.service.kill()
                self.service.wait(timeout=5)
        if self.emulator is not None:
            self.emulator.stop()


def run(directory: Path | None, port: int, say: Callable[[str], None]) -> None:
    """Run the demo until Ctrl-C (SIGINT) or SIGTERM; always stop what was started."""
    with tempfile.TemporaryDirectory(prefix="fundraiser-demo-") as tmp:
        demo = Demo(directory or Path(tmp), port, say)

        def _stop(signum: int, frame: FrameType | None) -> None:
            demo.stopping.set()

        previous = {sig: signal.signal(sig, _stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            demo.start(datetime.now(UTC))
            demo.wait()
            say("\nStopping…")
        finally:
            demo.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
