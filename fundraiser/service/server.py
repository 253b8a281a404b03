"""How `fundraiser serve` runs the service: uvicorn, with limits a stranger cannot stretch.

uvicorn's C parser (httptools) costs a webhook about a third less of the
service's CPU than h11, the pure-Python one, but takes request headers of any
size (20 MB was accepted). `HeadLimited` adds the limit h11 has: a request
whose head is not complete within HEAD_LIMIT bytes gets a 400 and one warning
line, before the app sees it.
"""

from __future__ import annotations

import copy
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from fundraiser.service.app import create_app
from fundraiser.service.settings import Settings

#: The most a request line and its headers may take (browsers send about 1-2 KB).
HEAD_LIMIT = 32 * 1024


class HeadLimited(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a request head longer than HEAD_LIMIT.

    The parser keeps a head's partial header in memory until it ends, so the
    bytes are counted as they arrive: each read that ends inside a head counts
    whole (one that also held the end of the request before counts a little
    over), and the connection is answered 400 and closed once they pass the
    limit. A head is refused with at most one read past the limit held.
    """

    head_bytes = 0
    in_head = False  # a request's head has begun and not ended

    def on_message_begin(self) -> None:
        self.in_head = True
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self.in_head or self.transport.is_closing():
            self.head_bytes = 0
            return
        self.head_bytes += len(data)
        if self.head_bytes > HEAD_LIMIT:
            message = "Request head too large."
            self.logger.warning("%s (over %d bytes)", message, HEAD_LIMIT)
            self.send_400_response(message)


#: How `serve` (and the benchmarks, which measure it) parse HTTP.
HTTP = HeadLimited
#: Loopback names: `serve` on one of these is its own public address by default.
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


def default_address(host: str, port: int) -> str | None:
    """The service's address when PLEDGE_API is unset: only on loopback (a local
    run, the demo); anywhere else the public address must be configured."""
    if host not in LOOPBACK:
        return None
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def log_config() -> dict[str, Any]:
    """uvicorn's logging, plus the service's own lines (one per refused request)."""
    config: dict[str, Any] = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["loggers"]["fundraiser"] = {
        "handlers": ["default"],
        "level": "INFO",
        "propagate": False,
    }
    return config


def run(settings: Settings, host: str, port: int) -> None:
    uvicorn.run(
        create_app(settings),
        host=host,
        port=port,
        workers=1,
        http=HTTP,
        log_config=log_config(),
        log_level="warning",
    )
