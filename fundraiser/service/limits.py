"""Limits per client address, in memory (one service process): a token bucket for
requests, and a count of pledges still waiting for their card."""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


class RateLimit:
    """`burst` requests at once per key, refilled at `per_minute` a minute."""

    def __init__(
        self,
        per_minute: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 50_000,
    ) -> None:
        self.rate = per_minute / 60.0
        self.burst = float(burst)
        self.clock = clock
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def allow(self, key: str) -> bool:
        now = self.clock()
        tokens, last = self._buckets.pop(key, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        allowed = tokens >= 1.0
        if allowed:
            tokens -= 1.0
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:  # forget the longest-idle addresses
            self._buckets.popitem(last=False)
        return allowed

    def retry_after(self) -> int:
        return max(1, int(1 / self.rate)) if self.rate else 60


class Refused(Exception):
    """A limit is reached; `retry_after` is in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after = retry_after


@dataclass(eq=False)  # slots are told apart by identity
class Slot:
    """One pledge made from an address: its id once recorded, and when its hold ends."""

    until: datetime
    pledge_id: int | None = None


class PendingByAddress:
    """At most `limit` pledges waiting for their card per client address, in memory.

    The ledger keeps no addresses (personal data, and useless after the campaign),
    so the count lives here, for one service process. A pledge counts until its
    card is saved or its place hold ends; a slot is taken inside the ledger's write
    transaction (serialised), so concurrent requests cannot all slip past.
    """

    def __init__(self, limit: int, hold: timedelta) -> None:
        self.limit = limit
        self.hold = hold
        self._slots: dict[str, list[Slot]] = {}
        self._lock = threading.Lock()

    def take(self, address: str, now: datetime, still_waiting: Callable[[list[int]], int]) -> Slot:
        """A slot for a new pledge, or Refused; `still_waiting` counts which of the
        given pledges still have no card (read in the caller's transaction)."""
        with self._lock:
            slots = [s for s in self._slots.get(address, []) if s.until > now]
            recorded = [s.pledge_id for s in slots if s.pledge_id is not None]
            waiting = still_waiting(recorded) if recorded else 0
            waiting += sum(1 for s in slots if s.pledge_id is None)
            if waiting >= self.limit:
                retry = min(s.until for s in slots)
                raise Refused(
                    f"this address already has {self.limit} pledges waiting for their card, "
                    f"the most at a time: complete one, or try again after "
                    f"{retry.astimezone(UTC):%H:%M} UTC",
                    max(1, math.ceil((retry - now).total_seconds())),
                )
            slot = Slot(until=now + self.hold)
            slots.append(slot)
            self._slots[address] = slots
            if len(self._slots) > 50_000:  # forget addresses whose slots all ended
                for key in [k for k, v in self._slots.items() if all(s.until <= now for s in v)]:
                    del self._slots[key]
            return slot

    def fill(self, slot: Slot, pledge_id: int) -> None:
        with self._lock:
            slot.pledge_id = pledge_id

    def give_back(self, address: str, slot: Slot) -> None:
        """The pledge was not made (refused later, or a repeat): the slot is free."""
        with self._lock:
            slots = self._slots.get(address, [])
            if slot in slots:
                slots.remove(slot)
