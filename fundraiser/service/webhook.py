"""Stripe's webhook deliveries, answered without Starlette's request and response objects.

Stripe sends a burst of deliveries at once (a close's charges, a fee run), and
each is a small signed body answered with one of two fixed answers. Through
the middleware stack a delivery cost the event loop about a third of a
millisecond, half of it in the layers' wrappers of `send` and in building
request and response objects. `WebhookPath` sits first in the stack and
answers a plain delivery itself, with the headers the stack would add
(guards.SecurityHeaders, CORS's `Vary`). A delivery it does not take (another
host, a browser's Origin header) goes down the stack to the same handler.
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fundraiser.errors import PaymentError, WebhookRejected
from fundraiser.payments import webhooks
from fundraiser.payments.events import Context
from fundraiser.service.guards import (
    API_CSP,
    TooLarge,
    api_outage,
    error,
    is_outage,
    read_body,
    request_host,
    security_headers,
)
from fundraiser.service.settings import Settings
from fundraiser.service.writer import Job, Writer

log = logging.getLogger("fundraiser.service")

PATH = "/api/stripe/webhook"
#: The most a delivery's body may be (Stripe's events are a few KB).
BODY_LIMIT = 256 * 1024

#: The handler: the body (None when it is too large) and the signature header in,
#: the answer out.
Handler = Callable[[bytes | None, str | None], Awaitable[Response]]


class WebhookPath:
    """POST /api/stripe/webhook for an allowed host and no Origin header: read the
    body, hand it to `handler`, send its answer with the stack's headers."""

    def __init__(self, app: ASGIApp, handler: Handler, hosts: frozenset[str]) -> None:
        self.app = app
        self.handler = handler
        self.hosts = hosts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        signature: str | None = None
        length: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":  # a browser's request: CORS answers it, down the stack
                await self.app(scope, receive, send)
                return
            if name == b"stripe-signature" and signature is None:
                signature = value.decode("latin-1")
            elif name == b"content-length" and length is None:
                length = value
        if request_host(scope) not in self.hosts:  # refused down the stack, in its words
            await self.app(scope, receive, send)
            return
        payload = await _body(receive, length)
        if payload is _GONE:
            # Nobody is left to read the answer; one line, as for any dropped connection.
            log.info("client went away mid-upload: POST %s", PATH)
            return
        answer = await self.handler(payload, signature)
        start: Message = {
            "type": "http.response.start",
            "status": answer.status_code,
            "headers": stack_headers(answer.raw_headers),
        }
        await send(start)
        await send({"type": "http.response.body", "body": answer.body})


#: Answers' headers as the stack sends them, by the answer's own (two answers, most days).
_SENT: dict[tuple[tuple[bytes, bytes], ...], list[tuple[bytes, bytes]]] = {}


def stack_headers(own: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """An API answer's headers as the middleware stack sends them to a request with
    no Origin: CORS's `Vary: Origin` (after any Vary of its own), then SecurityHeaders'."""
    key = tuple(own)
    found = _SENT.get(key)
    if found is None:
        vary = [value.decode("latin-1") for name, value in own if name == b"vary"]
        headers = [(name, value) for name, value in own if name != b"vary"]
        headers.append((b"vary", ", ".join([*vary, "Origin"]).encode("latin-1")))
        found = headers + security_headers(headers, API_CSP)
        if len(_SENT) < 64:  # error answers carry their own lengths: keep only a few
            _SENT[key] = found
    return list(found)  # the server may add to it


_GONE = b"\x00gone"  # a marker compared by identity: the client went away mid-body


async def _body(receive: Receive, declared: bytes | None) -> bytes | None:
    """The whole body; None if it is (or says it is) over BODY_LIMIT; _GONE if the
    client went away before it ended."""
    if declared is not None and (not declared.isdigit() or int(declared) > BODY_LIMIT):
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message: Message = await receive()
        if message["type"] == "http.disconnect":
            return _GONE
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > BODY_LIMIT:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


#: The webhook's answer, by whether the event was a duplicate: made once, not per event.
RECEIVED = {
    duplicate: json.dumps(
        {"received": True, "duplicate": duplicate}, separators=(",", ":")
    ).encode()
    for duplicate in (False, True)
}


class Webhooks:
    """POST /api/stripe/webhook through the stack, and the answer to every delivery;
    the service supplies its settings, writer and context."""

    settings: Settings
    writer: Writer

    def context(self) -> Context:
        raise NotImplementedError  # the service's

    # -- POST /api/stripe/webhook -------------------------------------------------
    async def webhook(self, request: Request) -> Response:
        """A delivery the stack carries (webhook.WebhookPath takes the others)."""
        try:
            payload: bytes | None = await read_body(request, BODY_LIMIT)
        except TooLarge:
            payload = None
        return await self.answer_webhook(payload, request.headers.get("stripe-signature"))

    async def answer_webhook(self, payload: bytes | None, header: str | None) -> Response:
        """Verify, store and apply one delivery (its body None: too large); the answer."""
        if payload is None:
            return error(413, "the body is too large", "body")
        try:
            event = webhooks.verify(payload, header, self.settings.webhook_secret, now=time.time())
        except WebhookRejected as exc:
            return error(400, str(exc), "Stripe-Signature")
        ctx = self.context()
        try:
            if webhooks.needs_prepare(event):  # a Stripe call: not on the event loop
                ctx = await run_in_threadpool(webhooks.prepare, ctx, event)
            receipt = await self.writer.submit(
                Job(
                    functools.partial(
                        webhooks.store_and_apply,
                        ctx=ctx,
                        event=event,
                        raw=payload.decode("utf-8"),
                    )
                )
            )
        except PaymentError as exc:
            log.warning("webhook: Stripe failed while applying: %s", exc)
            return error(503, "try again later")
        except Exception as exc:
            if is_outage(exc):
                return api_outage("POST", PATH, exc)
            log.exception("webhook: could not apply %s", event.get("id"))
            return error(500, "the event could not be applied: Stripe will retry")
        for note in ctx.notes:  # money that needs a person: also in the journal
            log.warning("webhook %s: %s", event.get("id"), note)
        return Response(RECEIVED[receipt.duplicate], media_type="application/json")
