"""`fundraiser demo`: the whole kit on one machine, with no Stripe account.

Starts the Stripe emulator and the pledge service on loopback, builds the
example site against them, serves it, and stops every process it started
when interrupted. The campaign's dates are moved so that it is open now.

The --dir is a co-op folder like the one `fundraiser init` makes (campaign.toml,
site/pelicanconf.py, var/), showing the kit's example pages, so the
organizer's commands (`site figures`, `stripe sync`...) work on it as they
would on a real one. It can be run again: the emulator keeps its objects in
var/, and the site's port is taken again at once after a stop. While it runs,
each change in the ledger (a pledge, a webhook, a sync) rebuilds the site, so
its figures, charts and named backers are always current.
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

from fundraiser import kit, starter
from fundraiser.emulator import (
    PUBLISHABLE_KEY,
    SECRET_KEY,
    Emulator,
    free_port,
    wait_for_port,
)
from fundraiser.errors import FundraiserError, UserInputError
from fundraiser.ledger import Ledger, open_ledger

#: Events the emulator can send; the rest arrive through `fundraiser stripe sync`.
WEBHOOK_EVENTS = [
    "payment_intent.succeeded",
    "payment_intent.payment_failed",
    "payment_intent.canceled",
    "payment_method.attached",
]


#: The demo's goal, small so that a few pledges meet it and collection charges them.
DEMO_GOAL = "1000.00"
#: How often the demo looks for a change in the ledger to rebuild the site (seconds).
WATCH_EVERY = 0.5
#: The emulator's objects and the key of backers' links, kept between runs (under --dir).
EMULATOR_STATE = Path("var") / "stripe-emulator.pickle"
LINK_SECRET = Path("var") / "demo-link-secret"


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
    serving: bool = False
    stopping: threading.Event = field(default_factory=threading.Event)
    #: Signs backers' private links; kept under --dir so links outlive a restart.
    link_secret: str = ""
    #: What the site was last built from: the ledger's journal (entries, head).
    built_from: tuple[int, str] | None = None
    ledger: Ledger | None = None
    api: str = ""

    @property
    def campaign_path(self) -> Path:
        return self.directory / "campaign.toml"

    @property
    def settings_path(self) -> Path:
        return self.directory / "site" / "pelicanconf.py"

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
            example = kit.example_campaign().read_text(encoding="utf-8")
            self.campaign_path.write_text(shifted_campaign(example, now), encoding="utf-8")
        if not self.settings_path.exists():  # a folder from `init` keeps its own site
            starter.write_settings(self.directory, own_content=False)
        self.link_secret = _kept_secret(self.directory / LINK_SECRET)

    def bind_site(self) -> None:
        """Take the site's port first: a busy port is refused before anything starts.

        The server binds with SO_REUSEADDR, so connections left in TIME-WAIT by a
        demo stopped a moment ago do not hold the port; a listening socket does.
        """
        handler = functools.partial(_QuietHandler, directory=str(self.output))
        try:
            self.site_server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        except OSError as exc:
            raise UserInputError(
                f"--port {self.port}: something else is listening there ({exc.strerror}); "
                "stop it or choose another port, e.g. --port 8080"
            ) from None

    @property
    def output(self) -> Path:
        return self.directory / "site" / "output"

    def start(self, now: datetime) -> None:
        self.bind_site()
        self.prepare(now)
        self.emulator = Emulator.start(state=self.directory / EMULATOR_STATE)
        service_port = free_port()
        site_origin = f"http://127.0.0.1:{self.port}"
        self.api = api = f"http://127.0.0.1:{service_port}"
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
            # The service's private pages load the Stripe.js the site is built with.
            "STRIPE_JS_URL": self.emulator.stripe_js,
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
        from fundraiser.config import load_campaign

        self.ledger = open_ledger(load_campaign(self.campaign_path).default_database_url())
        self.rebuild(now)
        assert self.site_server is not None
        threading.Thread(target=self.site_server.serve_forever, daemon=True).start()
        self.serving = True
        self._explain(site_origin, api)

    def rebuild(self, now: datetime) -> None:
        """Build the site from the ledger as it is now, noting which journal entry that was."""
        from fundraiser.sitegen.build import build_site

        assert self.emulator is not None and self.ledger is not None
        journal = self.ledger.head()
        report = build_site(
            self.settings_path,
            campaign_path=self.campaign_path,
            database_url=None,
            now=now,
            extra={
                "STRIPE_JS_URL": self.emulator.stripe_js,
                "PLEDGE_API": self.api,
                "STRIPE_PUBLISHABLE_KEY": PUBLISHABLE_KEY,
            },
            staged=True,  # served meanwhile: no page read half written
        )
        first = self.built_from is None
        self.built_from = journal
        if first:
            self.say(f"Built {report.pages} pages into {report.output}")
        else:
            figures = report.data.figures
            self.say(
                f"Ledger changed: site rebuilt ({figures.pledged.format()} of "
                f"{figures.goal.format()} pledged, {figures.backers} "
                f"{'backer' if figures.backers == 1 else 'backers'})"
            )

    def keep_figures_live(self) -> None:
        """Rebuild the site when the ledger's journal has moved since the last build."""
        if self.ledger is None:
            return
        if self.ledger.head() == self.built_from:
            return
        try:
            self.rebuild(datetime.now(UTC))
        except FundraiserError as exc:  # keep serving the last good build; say what broke
            self.say(f"Site not rebuilt: {exc}")

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
  State           {self.directory}   (`fundraiser demo --dir` it again to carry on)

The demo campaign's goal is {DEMO_GOAL} so that a few pledges meet it. The site is
rebuilt whenever the ledger changes, so its figures follow the pledges.
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
  fundraiser site figures
  # close the campaign by pretending it is after the deadline, then collect:
  FUNDRAISER_NOW={after} fundraiser collect
  fundraiser shares allocate
  fundraiser shares issue
  fundraiser members list

Press Ctrl-C to stop everything."""
        )

    def wait(self) -> None:
        """Block until interrupted, or until a child process dies; keep the site current."""
        while not self.stopping.wait(WATCH_EVERY):
            children = {"pledge service": self.service}
            if self.emulator is not None:
                children["Stripe emulator"] = self.emulator.process
            for what, process in children.items():
                if process is not None and process.poll() is not None:
                    raise FundraiserError(f"the {what} stopped (exit {process.returncode})")
            self.keep_figures_live()

    def stop(self) -> None:
        if self.site_server is not None:
            if self.serving:
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
        if self.ledger is not None:
            self.ledger.dispose()


def _kept_secret(path: Path) -> str:
    """A random secret made once and kept in a file only its owner can read."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        text = ""
    if len(text) >= 32:
        return text
    text = secrets.token_urlsafe(32)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(handle, "w", encoding="utf-8") as stream:
        stream.write(text + "\n")
    return text


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
