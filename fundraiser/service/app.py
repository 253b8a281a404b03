"""The pledge service (Starlette): pledges, confirmation, figures, webhooks, private links.

Ledger writes on the hot paths (a new pledge, its card form, a webhook) go
through one writer thread, committed in groups (`writer.py`); a new pledge's
Stripe calls are the SDK's async ones, so a burst of backers waiting on Stripe
holds no thread. The public figures are computed on a thread of their own and
served from memory, never queued behind writes. Other blocking work (the
private pages, cancelling, confirming) runs in Starlette's thread pool.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import json
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fundraiser.errors import (
    NotFound,
    PaymentError,
)
from fundraiser.i18n import N_
from fundraiser.ledger import Ledger, open_ledger, stamp
from fundraiser.links import BadToken, ServiceLinks, Signer
from fundraiser.payments import cardforms, intents, joining
from fundraiser.payments.client import (
    AsyncStripe,
    as_dict,
    make_client,
    stripe_errors,
)
from fundraiser.payments.events import Context
from fundraiser.pledges import NewPledge, Status
from fundraiser.service import join, validate
from fundraiser.service import webhook as webhook_path
from fundraiser.service.guards import (
    OUTAGE_RETRY_AFTER,
    AllowedHosts,
    SecurityHeaders,
    TooLarge,
    api_outage,
    error,
    is_json,
    is_outage,
    log_outage,
    log_path,
    page_csp,
    read_body,
)
from fundraiser.service.limits import PendingByAddress, RateLimit, Refused, Slot
from fundraiser.service.live import Figures, LiveFigures
from fundraiser.service.member import MemberPages, member_routes
from fundraiser.service.pages import Pages
from fundraiser.service.private import PrivateLinks, status_answer
from fundraiser.service.settings import Settings
from fundraiser.service.webhook import Webhooks
from fundraiser.service.writer import Job, Writer
from fundraiser.stripekeys import ledger_keys

log = logging.getLogger("fundraiser.service")

#: The purpose of the token that lets the pledge page ask for its pledge's state.
CONFIRM = "confirm"
#: A bound on a pledge's rounds of closing forms whose hold ended. Each round ends
#: at least one such form (cancelled, or found complete), so it is never reached
#: unless something is badly wrong; then the backer is told there is no place.
FREEING_ROUNDS = 100
#: The cyclic collector's thresholds while the service runs (see create_app's lifespan).
SERVICE_GC = (10_000, 50, 1_000)
#: What admitting a pledge refuses before it writes: the backer's answer, not a fault.
ADMIT_REFUSALS = (validate.Invalid, validate.HeldPlaces, intents.IdempotencyConflict)


class Service(PrivateLinks, MemberPages, LiveFigures, Webhooks):
    def __init__(self, settings: Settings, ledger: Ledger | None = None) -> None:
        self.settings = settings
        self.ledger = ledger or open_ledger(settings.database_url)
        # Stamps follow the service's clock, the one its checks use (a rehearsal's too).
        self.ledger.clock = lambda: stamp(settings.now())
        self.client = make_client(settings.stripe_secret_key, settings.stripe_api_base)
        self.stripe_async = AsyncStripe(settings.stripe_secret_key, settings.stripe_api_base)
        self.keys = ledger_keys(self.ledger)
        self.signer = Signer(settings.secret)
        # Private links are built from configuration only, never from a request.
        self.links = ServiceLinks(
            self.signer, settings.public_base, settings.campaign.campaign.deadline
        )
        self.pledge_limit = RateLimit(settings.pledges_per_minute, settings.pledge_burst)
        self.waiting = PendingByAddress(settings.pending_per_address, settings.place_hold)
        self.freeing = threading.Lock()  # one request at a time closes expired holds
        self.confirm_limit = RateLimit(settings.pledges_per_minute * 6, settings.pledge_burst * 4)
        self.writer = Writer(self.ledger)
        # The public figures: computed and encoded on their own thread, kept as the
        # bytes of the answer with their ETag and expiry.
        self.figures_thread = ThreadPoolExecutor(1, thread_name_prefix="figures")
        self._figures: Figures | None = None
        self._refreshing: asyncio.Future[Figures] | None = None
        # The private pages, in the site's layout (the theme's templates; see pages.py).
        self.pages = Pages(settings.campaign, settings.site_origin)
        # A join paid on the site is admitted in its payment's webhook write.
        self.after_payment = joining.after_payment_hook(settings.campaign)

    # -- plumbing -----------------------------------------------------------
    def context(self) -> Context:
        return Context(
            keys=self.keys,
            fix_window=timedelta(days=self.settings.fix_days),
            links=self.links,
            fetch_charge=self.fetch_charge,
            after_payment=self.after_payment,
            grace_days=grace_days(self.settings.campaign),
        )

    def fetch_charge(self, charge_id: str) -> dict[str, Any]:
        with stripe_errors("re-reading a charge"):
            return as_dict(self.client.v1.charges.retrieve(charge_id))

    def client_ip(self, request: Request) -> str:
        return request.client.host if request.client else "unknown"

    async def json_body(self, request: Request) -> Any:
        if not is_json(request):
            raise validate.Invalid("content-type", "must be application/json", 415)
        try:
            raw = await read_body(request, self.settings.body_limit)
        except TooLarge:
            raise validate.Invalid(
                "body", f"is larger than {self.settings.body_limit} bytes", 413
            ) from None
        if not raw:
            return {}
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise validate.Invalid("body", "is not valid JSON") from None
        except RecursionError:  # "[[[[…" thousands deep: the parser's own limit
            raise validate.Invalid("body", "is nested too deeply to be a pledge") from None
        field = validate.unreadable_field(data)
        if field is not None:
            raise validate.Invalid(
                field, "holds a character that is not text (a lone UTF-16 surrogate)"
            )
        return data

    def refusal(self, exc: validate.Invalid) -> JSONResponse:
        answer = error(exc.status, exc.message, exc.field)
        if exc.retry_after is not None:
            answer.headers["retry-after"] = str(exc.retry_after)
        return answer

    # -- POST /api/pledges ----------------------------------------------------
    async def create_pledge(self, request: Request) -> Response:
        address = self.client_ip(request)
        if not self.pledge_limit.allow(address):
            answer = error(429, "too many pledges from this address: wait a minute and try again")
            answer.headers["retry-after"] = str(self.pledge_limit.retry_after())
            return answer
        try:
            data = await self.json_body(request)
            req = validate.parse(data)
            idem = request.headers.get("idempotency-key")
            if idem is not None and not (0 < len(idem) <= 255 and idem.isprintable()):
                raise validate.Invalid("Idempotency-Key", "must be 1 to 255 printable characters")
            key = validate.request_key(idem, req.email)
            started = await self.start(req, key, address)
        except validate.Invalid as exc:
            return self.refusal(exc)
        except intents.PledgeClosed as exc:
            return error(409, str(exc), "Idempotency-Key")
        except intents.IdempotencyConflict as exc:  # the key, sent with another body
            return error(422, str(exc), "Idempotency-Key")
        except PaymentError as exc:
            log.warning("pledge: Stripe failed: %s", exc)
            return error(502, "the card form could not be prepared: please try again shortly")
        return JSONResponse(
            {
                "pledge_id": started.pledge_id,
                "client_secret": started.client_secret,
                # Only this answer carries it: the page asks for its pledge's state with it.
                "confirm_token": self.confirm_token(started.pledge_id),
                "publishable_key": self.settings.stripe_publishable_key,
                "mode": started.mode,
                "amount": started.amount.amount,
                "currency": started.amount.currency,
                "manage_url": self.links.manage_url(started.pledge_id),
            },
            status_code=200 if started.replayed else 201,
        )

    async def start(self, req: validate.Request, key: str | None, address: str) -> intents.Started:
        """Record the pledge and open its card form; when the tier's last places are
        held by forms whose hold ended, close those at Stripe first, then try again."""
        mode = self.settings.campaign.campaign.mode
        for _ in range(FREEING_ROUNDS):
            taken: list[Slot] = []
            check = functools.partial(self.admit, req=req, key=key, address=address, taken=taken)
            try:
                admitted = await self.writer.submit(
                    Job(
                        functools.partial(intents.admit, check=check, request_key=key),
                        ADMIT_REFUSALS,
                        locks=validate.lock_keys(req),
                        whole=False,
                    )
                )
            except validate.HeldPlaces as held:
                await run_in_threadpool(self.free_places, held.pledge_ids)
                continue
            except BaseException:
                for slot in taken:  # nothing was recorded
                    self.waiting.give_back(address, slot)
                raise
            for slot in taken:
                if admitted.replayed:
                    self.waiting.give_back(address, slot)
                else:
                    self.waiting.fill(slot, int(admitted.row.id))
            started, form = await intents.open_card_form(
                self.stripe_async.client(), self.context(), mode, admitted
            )
            if form is not None:
                record = functools.partial(intents.record_card_form, form=form)
                # Its own row, found by its id and no card form yet: nothing else to hold.
                await self.writer.submit(Job(record, whole=False))
            return started
        raise validate.Invalid("tier", "has no places left", 409)

    def admit(
        self,
        conn: sa.engine.Connection,
        repeat: bool,
        req: validate.Request,
        key: str | None,
        address: str,
        taken: list[Slot],
    ) -> NewPledge:
        """The pledge to record (inside the write transaction), within every limit;
        `repeat`: this request made a pledge before."""
        for slot in taken:  # from a run of this check that was rolled back
            self.waiting.give_back(address, slot)
        taken.clear()
        settings = self.settings
        now = settings.now()
        item = validate.check(
            settings.campaign,
            conn,
            req,
            now,
            key,
            repeat=repeat,
            hold=settings.place_hold,
            per_email=settings.pending_per_email,
        )
        if not repeat:
            try:
                taken.append(
                    self.waiting.take(address, now, lambda ids: validate.still_waiting(conn, ids))
                )
            except Refused as exc:
                raise validate.Invalid("", exc.message, 429, retry_after=exc.retry_after) from None
        return item

    def free_places(self, pledge_ids: list[int]) -> None:
        """Close card forms whose hold ended, oldest first, until one pledge is cancelled
        (a form completed meanwhile keeps its place: then the next one)."""
        minutes = int(self.settings.place_hold.total_seconds() // 60)
        reason = (
            f"its card form was not completed within {minutes} minutes and its place "
            "was needed by another backer"
        )
        with self.freeing:
            for pledge_id in pledge_ids:
                pledge = cardforms.withdraw(
                    self.ledger,
                    self.client,
                    self.context_plain(),
                    pledge_id,
                    reason=reason,
                    only_if_unfinished=True,
                )
                if pledge.status is Status.CANCELLED:
                    return

    def confirm_token(self, pledge_id: int) -> str:
        """A token for this pledge's confirm calls, good until a month after the deadline."""
        deadline = self.settings.campaign.campaign.deadline
        return self.signer.sign(pledge_id, CONFIRM, deadline + timedelta(days=30))

    async def confirm_token_in(self, request: Request) -> str:
        """The confirm token a request carries, or "" (never an error: see confirm_pledge)."""
        if not is_json(request):
            return ""
        try:
            data = json.loads(await read_body(request, 4096) or b"{}")
        except (TooLarge, ValueError, RecursionError):
            return ""
        token = data.get("confirm_token") if isinstance(data, dict) else None
        return token if isinstance(token, str) and token.isascii() else ""

    def confirm_allowed(self, token: str, pledge_id: int) -> bool:
        try:
            return self.signer.check(token, (CONFIRM,), self.settings.now()) == pledge_id
        except BadToken:
            return False

    # -- POST /api/pledges/{id}/confirm -----------------------------------------
    async def confirm_pledge(self, request: Request) -> Response:
        if not self.confirm_limit.allow(self.client_ip(request)):
            return error(429, "too many requests: wait a minute and try again")
        pledge_id = int(request.path_params["pledge_id"])
        # Only the page that made the pledge may ask: a wrong or missing token gets
        # what an unknown id gets, checked before the ledger or Stripe is asked.
        if not self.confirm_allowed(await self.confirm_token_in(request), pledge_id):
            return error(404, "no such pledge", "pledge_id")
        try:
            pledge = await run_in_threadpool(
                intents.confirm, self.ledger, self.client, self.context(), pledge_id
            )
        except NotFound:
            return error(404, "no such pledge", "pledge_id")
        except PaymentError as exc:
            log.warning("confirm %s: Stripe failed: %s", pledge_id, exc)
            return error(502, "Stripe could not be reached: please try again shortly")
        return JSONResponse(status_answer(pledge))

    # -- private links ---------------------------------------------------------------
    async def close(self) -> None:
        await run_in_threadpool(self.writer.close)
        self.figures_thread.shutdown(wait=True)
        await self.stripe_async.close()
        self.ledger.dispose()


def grace_days(campaign: Any) -> int:
    return campaign.membership.grace_days if campaign.membership else 0


def outage(request: Request, exc: BaseException) -> Response:
    """503 and Retry-After, and one line in the log (no traceback: nothing to debug)."""
    if not request.url.path.startswith("/manage/"):  # the page's script, not a person's page
        return api_outage(request.method, log_path(request), exc)
    log_outage(request.method, log_path(request), exc)
    headers = {"retry-after": str(OUTAGE_RETRY_AFTER)}
    service: Service = request.app.state.service
    if request.method == "POST":
        message = N_(
            "Nothing was changed: we cannot reach our records just now. "
            "Please try again in a moment."
        )
    else:
        message = N_(
            "Your pledge is safe, but we cannot show it just now. Please try again in a moment."
        )
    page = service.page(
        "message.html",
        503,
        title=service.gettext("Please try again in a moment"),
        message=service.gettext(message),
    )
    page.headers.update(headers)
    return page


async def _no_icon(request: Request) -> Response:
    return Response(status_code=204, headers={"Cache-Control": "public, max-age=86400"})


def create_app(settings: Settings, *, ledger: Ledger | None = None) -> Starlette:
    """The ASGI app; opens the ledger once and closes it on shutdown."""
    service = Service(settings, ledger)

    def route(path: str, handler: Callable[[Request], Awaitable[Response]], method: str) -> Route:
        return Route(path, handler, methods=[method])

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # What exists now (modules, the app, SQLAlchemy's metadata) lives as
        # long as the process: take it out of the cyclic collector's reach, or
        # each full collection rescans it all (~50 ms, every request waiting).
        gc.collect()
        gc.freeze()
        # A burst keeps thousands of requests' objects alive at once (pending
        # answers, Stripe's objects): at Python's default thresholds the
        # collector ran dozens of times a burst, its older generations for
        # 100-250 ms each with every request waiting (measured on a loaded
        # machine). Refcounting frees nearly all of a request's objects; the
        # collector is for the rare cycle, and need not run that often.
        thresholds = gc.get_threshold()
        gc.set_threshold(*SERVICE_GC)
        yield
        gc.set_threshold(*thresholds)
        gc.unfreeze()
        await service.close()

    routes = [
        route("/api/pledges", service.create_pledge, "POST"),
        route("/api/pledges/{pledge_id:int}/confirm", service.confirm_pledge, "POST"),
        route("/api/campaign", service.campaign, "GET"),
        route(webhook_path.PATH, service.webhook, "POST"),
        route("/api/manage/{token}", service.manage_json, "GET"),
        route("/api/manage/{token}/cancel", service.manage_cancel_json, "POST"),
        route("/api/manage/{token}/fix", service.manage_fix, "POST"),
        route("/api/manage/{token}/fix/confirm", service.manage_fix_confirm, "POST"),
        route("/manage/{token}", service.manage_page, "GET"),
        route("/manage/{token}/cancel", service.manage_page_cancel_ask, "GET"),
        route("/manage/{token}/cancel", service.manage_page_cancel, "POST"),
        route("/manage/{token}/cancelled", service.manage_page_cancelled, "GET"),
        *member_routes(service),  # a member's own page (service/member.py)
        # A backer's browser asks for one on every private-link page; no icon
        # here, and "nothing" is an answer, not an error in the service's log.
        route("/favicon.ico", _no_icon, "GET"),
        *join.routes(service),
    ]
    middleware = [
        # First: a plain Stripe delivery answered without the layers below.
        Middleware(
            webhook_path.WebhookPath, handler=service.answer_webhook, hosts=settings.allowed_hosts
        ),
        Middleware(SecurityHeaders, page_csp=page_csp(settings)),
        Middleware(AllowedHosts, hosts=settings.allowed_hosts),
        Middleware(
            CORSMiddleware,
            allow_origins=[settings.site_origin],
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "Idempotency-Key"],
            max_age=600,
        ),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        return error(404, "not found")

    async def bad_method(request: Request, exc: Exception) -> Response:
        return error(405, "method not allowed")

    async def database_down(request: Request, exc: Exception) -> Response:
        if not is_outage(exc):
            raise exc  # a real fault: the server's log keeps its traceback
        return outage(request, exc)

    async def went_away(request: Request, exc: Exception) -> Response:
        # Nobody is left to read the answer; one line, as for any dropped connection.
        log.info("client went away mid-upload: %s %s", request.method, log_path(request))
        return error(400, "the request body did not arrive", "body")

    async def failed(request: Request, exc: Exception) -> Response:
        # Unexpected: the server logs the traceback; the client gets JSON, not a page.
        return error(500, "something went wrong on our side: please try again later")

    app = Starlette(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            404: not_found,
            405: bad_method,
            sa.exc.DBAPIError: database_down,
            sa.exc.TimeoutError: database_down,
            ClientDisconnect: went_away,
            Exception: failed,
        },
    )
    app.state.service = service
    return app
