"""The local Stripe emulator (localstripe) as a child process on 127.0.0.1.

localstripe's own console script listens on every interface and writes its
state to /tmp; we start its app ourselves, on loopback, in memory only.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from fundraiser.errors import FundraiserError, UserInputError

_SERVER = """
import sys
import aiohttp.web
from localstripe.resources import store
store.dump_to_disk = lambda: None
from localstripe.server import app
aiohttp.web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""

#: The emulator accepts any key that looks like a test key.
SECRET_KEY = "sk_test_demo_emulator"
PUBLISHABLE_KEY = "pk_test_demo_emulator"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def wait_for_port(
    port: int, process: subprocess.Popen[bytes], what: str, timeout: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise FundraiserError(f"{what} stopped while starting (exit {process.returncode})")
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise FundraiserError(f"{what} did not start listening on 127.0.0.1:{port}")


def check_installed() -> None:
    if importlib.util.find_spec("localstripe") is None:
        raise UserInputError(
            "the Stripe emulator (localstripe) is not installed: run "
            "pip install -e '.[demo]' (or '.[test]') and try again"
        )


@dataclass
class Emulator:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stripe_js(self) -> str:
        return f"{self.url}/js.stripe.com/v3/"

    @classmethod
    def start(cls, port: int | None = None) -> Emulator:
        check_installed()
        port = port or free_port()
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # our Ctrl-C handling stops it, not the terminal's
        )
        emulator = cls(port, process)
        try:
            wait_for_port(port, process, "the Stripe emulator")
        except FundraiserError:
            emulator.stop()
            raise
        return emulator

    def request(self, method: str, path: str, data: Any = None) -> Any:
        body = None if data is None else json.dumps(data).encode()
        req = urllib.request.Request(
            self.url + path,
            data=body,
            method=method,
            headers={"Authorization": f"Bearer {SECRET_KEY}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def send_webhooks_to(self, url: str, secret: str, events: list[str]) -> None:
        """Ask the emulator to deliver these events, signed with `secret`, to `url`."""
        self.request(
            "POST", "/_config/webhooks/demo", {"url": url, "secret": secret, "events": events}
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
