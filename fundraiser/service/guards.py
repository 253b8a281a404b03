"""What every request meets before a handler: the host check, security headers, body
limits, and the answers for errors and for a database that cannot be reached."""

from __future__ import annotations

import logging
import re
from typing import Any

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundraiser.service.settings import Settings

log = logging.getLogger("fundraiser.service")

#: Seconds a client is asked to wait when the database cannot be reached.
OUTAGE_RETRY_AFTER = 5

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]
API_CSP = b"default-src 'none'; frame-ancestors 'none'"


class SecurityHeaders:
    """Headers every answer carries; private answers are never cached."""

    def __init__(self, app: ASGIApp, page_csp: str) -> None:
        self.app = app
        self.page_csp = page_csp.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]

        csp = self.page_csp if path.startswith(PAGES) else API_CSP

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                message["headers"] = headers + security_headers(headers, csp)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def security_headers(headers: list[tuple[bytes, bytes]], csp: bytes) -> list[tuple[bytes, bytes]]:
    """The headers SecurityHeaders adds to an answer that has `headers` (those it
    set itself are kept): the fixed ones, the content policy, no caching."""
    present = {name.lower() for name, _ in headers}
    added = [(k, v) for k, v in SECURITY_HEADERS if k not in present]
    if b"content-security-policy" not in present:
        added.append((b"content-security-policy", csp))
    if b"cache-control" not in present:
        added.append((b"cache-control", b"no-store"))
    return added


class AllowedHosts:
    """Answer only requests for a host the service is configured as (PLEDGE_API's).

    Links never come from a request, but a service that answers any Host is one
    a rebinding page or a misrouted proxy can reach under another name.
    """

    def __init__(self, app: ASGIApp, hosts: frozenset[str]) -> None:
        self.app = app
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and request_host(scope) not in self.hosts:
            refused = error(400, "this service does not answer to that host name", "Host")
            await refused(scope, receive, send)
            return
        await self.app(scope, receive, send)


def request_host(scope: Scope) -> str:
    """The host name in the request's Host header: lowercased, without port."""
    for name, value in scope.get("headers", []):
        if name == b"host":
            text = bytes(value).decode("latin-1").strip().lower()
            if text.startswith("["):  # [::1]:8000
                return text[1 : text.find("]")] if "]" in text else ""
            return text.rpartition(":")[0] if text.count(":") == 1 else text
    return ""


def error(status: int, message: str, field: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": message}
    if field:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status)


class TooLarge(Exception):
    pass


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise TooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def is_json(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json"


def is_outage(exc: BaseException) -> bool:
    """The database could not be reached or is busy: worth trying again shortly."""
    if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError | sa.exc.TimeoutError):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


def log_path(request: Request) -> str:
    """The request's path for the log, private-link tokens left out."""
    return re.sub(r"/manage/[^/]+", "/manage/…", request.url.path)


def first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    lines = str(cause).strip().splitlines()
    return lines[0] if lines else type(cause).__name__


#: The paths of people's pages (HTML, Stripe's card form): the page policy, not the API's.
PAGES = ("/manage/", "/member")


def page_csp(settings: Settings) -> str:
    """The private pages' policy: our own pages, the site's stylesheet and script, Stripe.js.

    Real Stripe.js talks to api.stripe.com and opens frames from its own hosts
    (Stripe's documented list); the emulator's fake one needs only its origin.
    """
    from urllib.parse import urlsplit

    parts = urlsplit(settings.stripe_js)
    stripe = f"{parts.scheme}://{parts.netloc}"
    if parts.hostname == "js.stripe.com":
        scripts = f"{stripe} https://*.js.stripe.com"
        frames = f"{stripe} https://*.js.stripe.com https://hooks.stripe.com"
        connect = "https://api.stripe.com"
    else:
        scripts = frames = connect = stripe
    site = settings.site_origin
    return (
        f"default-src 'self'; script-src 'self' {site} {scripts}; "
        f"style-src 'self' {site}; img-src 'self' {site} data:; font-src 'self' {site}; "
        f"connect-src 'self' {connect}; frame-src {frames}; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    )


def log_outage(method: str, path: str, exc: BaseException) -> None:
    log.warning("database unavailable: %s %s answered 503 (%s)", method, path, first_line(exc))


def api_outage(method: str, path: str, exc: BaseException) -> JSONResponse:
    """`outage` for the API: JSON."""
    log_outage(method, path, exc)
    return JSONResponse(
        {"error": "the pledge service cannot reach its records just now: try again shortly"},
        status_code=503,
        headers={"retry-after": str(OUTAGE_RETRY_AFTER)},
    )
