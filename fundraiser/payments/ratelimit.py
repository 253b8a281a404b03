"""Calls to Stripe spaced out under its rate limit (25/s in test mode, 100/s live)."""

from __future__ import annotations

import threading
import time

from fundraiser.errors import UserInputError

#: Calls per second unless told otherwise (FUNDRAISER_STRIPE_RATE, collect --rate).
DEFAULT_RATE = 20.0


class RateLimiter:
    """Spaces calls evenly at `rate` per second across threads (no bursts)."""

    def __init__(self, rate: float) -> None:
        if rate <= 0:
            raise UserInputError("--rate must be above zero")
        self.rate = rate
        self.interval = 1.0 / rate
        self._next = time.monotonic()
        self._lock = threading.Lock()
        self.calls = 0

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(self._next, now)
            self._next = slot + self.interval
            self.calls += 1
        delay = slot - time.monotonic()
        if delay > 0:
            time.sleep(delay)
