"""The public figures, live: GET /api/campaign answered from memory, never waiting on writes.

A mixin of the service (fundraiser.service.app.Service). The figures are computed
and encoded on their own thread (`figures_thread`), kept as the bytes of the
answer with their ETag and expiry; a request past the expiry starts a refresh
and still gets the last figures at once. A page that polls sends back the ETag
and gets 304 until the figures change.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

import fundraiser.figures  # whole path: `figures` names what it computes
from fundraiser.ledger import Ledger
from fundraiser.service.settings import Settings


@dataclass(frozen=True)
class Figures:
    """The public figures as served: the answer's bytes, their ETag, when to refresh."""

    expires: float  # time.monotonic()
    body: bytes
    etag: str


def etag_matches(header: str | None, etag: str) -> bool:
    """Whether If-None-Match names this ETag (or any: `*`); a weak one matches too."""
    if not header:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return etag in tags or "*" in tags


class LiveFigures:
    """GET /api/campaign; the service supplies the ledger, settings and the thread."""

    settings: Settings
    ledger: Ledger
    figures_thread: ThreadPoolExecutor
    _figures: Figures | None
    _refreshing: asyncio.Future[Figures] | None

    # -- GET /api/campaign ---------------------------------------------------------
    async def campaign(self, request: Request) -> Response:
        """The public figures from memory; when they are older than figures_seconds,
        a refresh starts and this answer still gets the last ones (never waiting on
        the ledger, unless there are none yet or caching is off).

        The answer's bytes were encoded once, on the figures' thread: on the event
        loop, which a burst of pledges keeps busy, this costs a dictionary lookup.
        A page that polls sends back the ETag and gets 304 until the figures change.
        """
        cached = self._figures
        if cached is None or cached.expires < time.monotonic():
            refresh = self.refresh_figures()
            if cached is None or self.settings.figures_seconds <= 0:
                cached = await asyncio.shield(refresh)
        seconds = max(int(self.settings.figures_seconds), 1)
        headers = {"cache-control": f"public, max-age={seconds}", "etag": cached.etag}
        if etag_matches(request.headers.get("if-none-match"), cached.etag):
            return Response(status_code=304, headers=headers)
        return Response(cached.body, media_type="application/json", headers=headers)

    def refresh_figures(self) -> asyncio.Future[Figures]:
        """The figures being computed now, or a new computation of them."""
        refreshing = self._refreshing
        if (
            refreshing is None
            or refreshing.done()
            or refreshing.get_loop() is not asyncio.get_running_loop()
        ):
            refreshing = asyncio.ensure_future(self._compute_figures())
            # A failure reaches whoever awaits it; nobody else need hear of it.
            refreshing.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._refreshing = refreshing
        return refreshing

    async def _compute_figures(self) -> Figures:
        def compute() -> tuple[bytes, str]:
            with self.ledger.read() as conn:
                figures = fundraiser.figures.compute(
                    conn, self.settings.campaign, self.settings.now()
                ).as_json()
            # Encoded as JSONResponse would, here rather than on every request.
            body = json.dumps(
                figures, ensure_ascii=False, allow_nan=False, separators=(",", ":")
            ).encode("utf-8")
            return body, f'"{hashlib.blake2b(body, digest_size=12).hexdigest()}"'

        loop = asyncio.get_running_loop()
        body, etag = await loop.run_in_executor(self.figures_thread, compute)
        self._figures = Figures(time.monotonic() + self.settings.figures_seconds, body, etag)
        return self._figures
