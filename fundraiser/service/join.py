"""The join page's endpoints: joining (or topping up) with a payment, and its confirmation.

POST /api/join              a join or a top-up: the pledge and its PaymentIntent
POST /api/join/{id}/confirm re-read the payment from Stripe, admit, begin the fee
POST /api/join/top-up       what a top-up link allows (whose, held, how many more)

The same rules as POST /api/pledges: the per-address rate limit and waiting
limits, an Idempotency-Key scoped to the person, every text field checked for
length and control characters, answers that name the field and never say
what another person holds. The rules of joining are the domain's
(membership/joining.py); Stripe's side is payments/joining.py.
"""

from __future__ import annotations

import functools
import logging
from datetime import timedelta
from typing import Any, Protocol

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fundraiser.config import Rate
from fundraiser.errors import NotFound, PaymentError
from fundraiser.figures import hold_start
from fundraiser.ledger import Ledger, Tx
from fundraiser.links import TOP_UP, BadToken, Signer
from fundraiser.membership import joining
from fundraiser.payments import intents
from fundraiser.payments import joining as paying
from fundraiser.payments.client import AsyncStripe, CardError
from fundraiser.payments.events import Context
from fundraiser.people import email_problem
from fundraiser.pledges import NewPledge
from fundraiser.service import validate
from fundraiser.service.guards import error
from fundraiser.service.limits import PendingByAddress, RateLimit, Refused, Slot
from fundraiser.service.settings import Settings
from fundraiser.service.writer import Job, Writer

log = logging.getLogger("fundraiser.service")

#: The purpose of the token that lets the join page ask for its join's state.
JOIN_CONFIRM = "join-confirm"
CONFIRM_FOR = timedelta(days=1)
FIELDS = frozenset(
    {"name", "email", "address", "display_name", "shares", "rate", "method", "consent", "top_up"}
)
#: A top-up's person is the register's: it sends only what it buys.
TOP_UP_FIELDS = frozenset({"shares", "method", "consent", "top_up"})
REFUSALS = (validate.Invalid, intents.IdempotencyConflict, joining.Refused)


class Host(Protocol):
    """What the endpoints use of the pledge service (service/app.py's Service)."""

    settings: Settings
    ledger: Ledger
    client: Any
    stripe_async: AsyncStripe
    signer: Signer
    writer: Writer
    pledge_limit: RateLimit
    confirm_limit: RateLimit
    waiting: PendingByAddress

    def context(self) -> Context: ...

    def client_ip(self, request: Request) -> str: ...

    async def json_body(self, request: Request) -> Any: ...

    def refusal(self, exc: validate.Invalid) -> JSONResponse: ...

    async def confirm_token_in(self, request: Request) -> str: ...


def _member_from(signer: Signer, token: Any, settings: Settings) -> int:
    if not isinstance(token, str) or not token.isascii() or len(token) > 512:
        raise validate.Invalid("top_up", "this top-up link is not valid", 403)
    try:
        return signer.check(token, (TOP_UP,), settings.now())
    except BadToken as exc:
        raise validate.Invalid(
            "top_up", f"{exc}: ask for a new top-up link from your member page", 403
        ) from None


def parse(data: Any, signer: Signer, settings: Settings) -> joining.JoinRequest:
    """The request's shape (no ledger yet): every field named when it is wrong."""
    if not isinstance(data, dict):
        raise validate.Invalid("body", "must be a JSON object")
    top_up = data.get("top_up")
    allowed = TOP_UP_FIELDS if top_up is not None else FIELDS
    for key in data:
        if key not in allowed:
            raise validate.Invalid(str(key)[:40], "is not a known field")
    shares = data.get("shares")
    if type(shares) is not int:
        raise validate.Invalid("shares", "must be a whole number")
    method_text = data.get("method", joining.Method.CARD.value)
    if method_text not in {m.value for m in joining.Method}:
        raise validate.Invalid("method", "must be card or sepa_debit")
    method = joining.Method(method_text)
    if data.get("consent") is not True:
        raise validate.Invalid("consent", "must be true: the rules have to be agreed to")
    if top_up is not None:
        number = _member_from(signer, top_up, settings)
        return joining.JoinRequest(shares=shares, method=method, top_up=number)
    rate_text = data.get("rate")
    rate = None
    if rate_text is not None:
        if rate_text not in {r.value for r in Rate}:
            raise validate.Invalid("rate", f"must be one of {', '.join(r.value for r in Rate)}")
        rate = Rate(rate_text)
    name = validate.text_field(data, "name", required=True)
    email = validate.text_field(data, "email", required=True)
    address = validate.text_field(data, "address", required=True)
    display = validate.text_field(data, "display_name", required=False)
    assert name and email and address
    problem = email_problem(email)
    if problem is not None:
        message = f"{problem.message}: {problem.fix}" if problem.fix else problem.message
        raise validate.Invalid("email", message)
    return joining.JoinRequest(
        shares=shares,
        method=method,
        rate=rate,
        name=name,
        email=email,
        address=address,
        display_name=display,
    )


class JoinEndpoints:
    def __init__(self, service: Host) -> None:
        self.service = service
        self.emulated = paying.for_emulator(service.settings.stripe_api_base)

    # -- POST /api/join --------------------------------------------------------
    async def create(self, request: Request) -> Response:
        svc = self.service
        address = svc.client_ip(request)
        if not svc.pledge_limit.allow(address):
            answer = error(429, "too many requests from this address: wait a minute and try again")
            answer.headers["retry-after"] = str(svc.pledge_limit.retry_after())
            return answer
        try:
            data = await svc.json_body(request)
            req = parse(data, svc.signer, svc.settings)
            idem = request.headers.get("idempotency-key")
            if idem is not None and not (0 < len(idem) <= 255 and idem.isprintable()):
                raise validate.Invalid("Idempotency-Key", "must be 1 to 255 printable characters")
            whose = req.email if req.top_up is None else f"member-{req.top_up}@members.invalid"
            key = validate.request_key(idem, whose)
            admitted = await self.admit(req, key, address)
            started, form = await paying.open_form(
                svc.stripe_async.client(), svc.context(), admitted, req.method
            )
            if form is not None:
                await svc.writer.submit(Job(functools.partial(intents.record_card_form, form=form)))
        except validate.Invalid as exc:
            return svc.refusal(exc)
        except joining.Refused as exc:
            return error(exc.status, exc.message, exc.field)
        except intents.PledgeClosed as exc:
            return error(409, str(exc), "Idempotency-Key")
        except intents.IdempotencyConflict as exc:
            return error(422, str(exc), "Idempotency-Key")
        except PaymentError as exc:
            log.warning("join: Stripe failed: %s", exc)
            return error(502, "the payment form could not be prepared: please try again shortly")
        now = svc.settings.now()
        return JSONResponse(
            {
                "pledge_id": started.pledge_id,
                "kind": "top-up" if req.top_up is not None else "join",
                "client_secret": started.client_secret,
                "confirm_token": svc.signer.sign(
                    started.pledge_id, JOIN_CONFIRM, now + CONFIRM_FOR
                ),
                "publishable_key": svc.settings.stripe_publishable_key,
                "method": req.method.value,
                "amount": started.amount.amount,
                "currency": started.amount.currency,
            },
            status_code=200 if started.replayed else 201,
        )

    async def admit(
        self, req: joining.JoinRequest, key: str | None, address: str
    ) -> intents.Admitted:
        """Record the join's pledge and its choices in one write, within every limit."""
        svc = self.service
        settings = svc.settings
        taken: list[Slot] = []
        choices: list[joining.Choice] = []

        def check(conn: Any, repeat: bool) -> NewPledge:
            for slot in taken:  # from a run of this job that was rolled back
                svc.waiting.give_back(address, slot)
            taken.clear()
            choices.clear()
            now = settings.now()
            pledge, choice = joining.check(settings.campaign, conn, req, now, key)
            if not repeat:
                shape = validate.Request(
                    pledge.name, pledge.email, pledge.address, None, None, None, req.shares
                )
                validate.check_waiting(
                    conn,
                    shape,
                    now,
                    hold_start(now, settings.place_hold),
                    settings.place_hold,
                    settings.pending_per_email,
                )
                try:
                    taken.append(
                        svc.waiting.take(
                            address, now, lambda ids: validate.still_waiting(conn, ids)
                        )
                    )
                except Refused as exc:
                    raise validate.Invalid(
                        "", exc.message, 429, retry_after=exc.retry_after
                    ) from None
            choices.append(choice)
            return pledge

        def write(tx: Tx) -> intents.Admitted:
            admitted = intents.admit(tx, check, key)
            if not admitted.replayed:
                joining.record(tx, int(admitted.row.id), choices[-1])
            return admitted

        try:
            admitted = await svc.writer.submit(Job(write, REFUSALS))
        except BaseException:
            for slot in taken:
                svc.waiting.give_back(address, slot)
            raise
        for slot in taken:
            if admitted.replayed:
                svc.waiting.give_back(address, slot)
            else:
                svc.waiting.fill(slot, int(admitted.row.id))
        return admitted

    # -- POST /api/join/{id}/confirm ---------------------------------------------
    async def confirm(self, request: Request) -> Response:
        svc = self.service
        if not svc.confirm_limit.allow(svc.client_ip(request)):
            return error(429, "too many requests: wait a minute and try again")
        pledge_id = int(request.path_params["pledge_id"])
        token = await svc.confirm_token_in(request)
        try:
            allowed = svc.signer.check(token, (JOIN_CONFIRM,), svc.settings.now()) == pledge_id
        except BadToken:
            allowed = False
        if not allowed:  # a wrong token gets what an unknown id gets
            return error(404, "no such join", "pledge_id")
        try:
            answer = await run_in_threadpool(
                paying.confirm,
                svc.ledger,
                svc.client,
                svc.context(),
                svc.settings.campaign,
                pledge_id,
                emulated=self.emulated,
            )
        except NotFound:
            return error(404, "no such join", "pledge_id")
        except CardError as exc:  # declined: nothing recorded, nothing owed
            return error(402, exc.user_message or str(exc), "card")
        except PaymentError as exc:
            log.warning("join %s: Stripe failed: %s", pledge_id, exc)
            return error(502, "Stripe could not be reached: please try again shortly")
        return JSONResponse(answer)

    # -- POST /api/join/top-up ------------------------------------------------------
    async def top_up(self, request: Request) -> Response:
        svc = self.service
        if not svc.confirm_limit.allow(svc.client_ip(request)):
            return error(429, "too many requests: wait a minute and try again")
        try:
            data = await svc.json_body(request)
            token = data.get("top_up") if isinstance(data, dict) else None
            number = _member_from(svc.signer, token, svc.settings)
            joining.membership_open(svc.settings.campaign)

            def read() -> joining.TopUpTerms:
                with svc.ledger.read() as conn:
                    return joining.top_up_terms(conn, svc.settings.campaign, number)

            terms = await run_in_threadpool(read)
        except validate.Invalid as exc:
            return svc.refusal(exc)
        except joining.Refused as exc:
            return error(exc.status, exc.message, exc.field)
        return JSONResponse(terms.as_json())


def routes(service: Host) -> list[Route]:
    """The join page's routes, for app.py's list."""
    ends = JoinEndpoints(service)
    return [
        Route("/api/join", ends.create, methods=["POST"]),
        Route("/api/join/top-up", ends.top_up, methods=["POST"]),
        Route("/api/join/{pledge_id:int}/confirm", ends.confirm, methods=["POST"]),
    ]
