"""`fundraiser serve` as a real process on 127.0.0.1, for tests that need its log,
its HTTP limits, or to kill it."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.stripe_fixtures import NOW, free_port


class Served:
    """`fundraiser serve` on 127.0.0.1, its log (stderr) kept in a file.

    `now` is the service's clock (FUNDRAISER_NOW); None runs it on the real one.
    Without `pledge_api`, PLEDGE_API is left unset.
    """

    def __init__(
        self,
        campaign: Path,
        db_url: str,
        env: dict[str, str],
        log: Path,
        *,
        now: str | None = NOW.isoformat(),
        pledge_api: bool = True,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        environment = {**os.environ, **env, "PLEDGE_API": self.url}
        if not pledge_api:  # serve on loopback is its own address by default
            del environment["PLEDGE_API"]
        environment.pop("DATABASE_URL", None)
        environment.pop("FUNDRAISER_NOW", None)
        if now is not None:
            environment["FUNDRAISER_NOW"] = now
        with log.open("wb") as err:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "fundraiser",
                    "--campaign",
                    str(campaign),
                    "--db",
                    db_url,
                    "serve",
                    "--port",
                    str(self.port),
                ],
                env=environment,
                stdout=subprocess.DEVNULL,
                stderr=err,
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2),
            ):
                return
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise AssertionError(f"the service did not start:\n{self.text()}")

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for_log(self, *needles: str, timeout: float = 10) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if any(n in text for n in needles):
                return text
            time.sleep(0.05)
        return self.text()

    def wait_for_count(self, needle: str, count: int, timeout: float = 10) -> str:
        """The log once `needle` is in it `count` times (or as it is at the timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.text()
            if text.count(needle) >= count:
                return text
            time.sleep(0.05)
        return self.text()

    def kill(self) -> None:
        """SIGKILL: no clean-up, no finishing the request in hand."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
