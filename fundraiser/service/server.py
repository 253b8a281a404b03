"""How `fundraiser serve` runs the service: uvicorn, with limits a stranger cannot stretch.

uvicorn's fast HTTP parser (httptools) takes request headers of any size (20 MB
was accepted); h11 refuses a request whose head is not complete within
HEAD_LIMIT bytes, with a 400 and one warning line, before the app sees it.
"""

from __future__ import annotations

import copy
from typing import Any

import uvicorn

from fundraiser.service.app import create_app
from fundraiser.service.settings import Settings

#: The most a request line and its headers may take (browsers send about 1-2 KB).
HEAD_LIMIT = 32 * 1024
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
        http="h11",
        h11_max_incomplete_event_size=HEAD_LIMIT,
        log_config=log_config(),
        log_level="warning",
    )
