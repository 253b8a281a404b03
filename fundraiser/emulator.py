"""The local Stripe emulator (localstripe) as a child process on 127.0.0.1.

localstripe's own console script listens on every interface and writes its
state to /tmp; we start its app ourselves, on loopback. Its objects live in
memory, or, given a state file, are kept there after every change and read
back at the next start: the demo's customers and card forms then outlive a
restart, as they would at Stripe, and `stripe sync` finds them again.
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
from pathlib import Path
from typing import Any

from fundraiser.errors import FundraiserError, UserInputError

_SERVER = """
import os
import pickle
import sys
import tempfile

import aiohttp.web
from localstripe.resources import store

state = sys.argv[2] if len(sys.argv) > 2 else ""


def keep():
    # Written whole to a private file, then renamed: a stop mid-write loses nothing.
    if not state:
        return
    handle, part = tempfile.mkstemp(dir=os.path.dirname(state), prefix=".emulator-")
    with os.fdopen(handle, "wb") as stream:
        pickle.dump(dict(store), stream, protocol=pickle.HIGHEST_PROTOCOL)
    os.replace(part, state)


store.dump_to_disk = keep
if state and os.path.exists(state):
    with open(state, "rb") as stream:
        dict.update(store, pickle.load(stream))
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
    """Whether a server could listen on host:port now.

    With SO_REUSEADDR, as servers bind: connections of a server stopped a moment
    ago (TIME-WAIT) do not count, a socket still listening there does.
    """
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
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
    def start(cls, port: int | None = None, state: Path | None = None) -> Emulator:
        """Start it on `port` (a free one if None), keeping its objects in `state` if given.

        The state file is the emulator's own pickle: give only a file this
        program wrote (the demo's, under its --dir), never one from elsewhere.
        """
        check_installed()
        port = port or free_port()
        extra = []
        if state is not None:
            state.parent.mkdir(parents=True, exist_ok=True)
            extra = [str(state)]
        process = subprocess.Popen(
            [sys.executable, "-c", _SERVER, str(port), *extra],
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
