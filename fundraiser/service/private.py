"""A backer's private link: the pledge's page, its JSON, cancelling and fixing a card.

A mixin of the service (fundraiser.service.app.Service), which gives it the
ledger, the Stripe client, the link signer and the pages. Pages are rendered in
the site's layout (fundraiser.service.pages); the link's token is checked for
its purpose (MANAGE may cancel; FIX only completes a payment).
"""

from __future__ import annotations

import logging
import re
from datetime import timedelta
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from fundraiser import cancel, pledges
from fundraiser.acknowledge import transfer_reference
from fundraiser.errors import FundraiserError, InvalidTransition, NotFound, PaymentError
from fundraiser.i18n import N_
from fundraiser.ledger import Ledger
from fundraiser.links import FIX, MANAGE, BadToken, Signer
from fundraiser.payments import cardforms, intents
from fundraiser.payments.client import CardError
from fundraiser.payments.events import Context, pledge_row
from fundraiser.pledges import Pledge, Status
from fundraiser.service import validate
from fundraiser.service.guards import error
from fundraiser.service.pages import Pages, pledge_view
from fundraiser.service.settings import Settings

log = logging.getLogger("fundraiser.service")


def status_answer(pledge: Pledge) -> dict[str, Any]:
    """A pledge's state for the page's script: `secured` says the backer's part is done."""
    return {
        "pledge_id": pledge.id,
        "status": pledge.status.value,
        "secured": pledge.status in pledges.SECURED,
    }


#: What a private link's page says when the link does not work, by BadToken's words.
_LINK_PROBLEMS: dict[str, tuple[str, str, str]] = {
    "this link has expired": (
        N_("This link has expired"),
        N_(
            "Private links to a pledge stop working when the campaign closes, and a link to "
            "complete a payment when the time to do it has passed."
        ),
        N_("If you still need to do something about your pledge, write to us."),
    ),
    "this link is for something else": (
        N_("This link cannot do that"),
        N_("This link is for completing a payment only."),
        N_("To see or cancel your pledge, use the link in the email we sent when you pledged."),
    ),
    "": (
        N_("This link does not work"),
        N_("We could not find a pledge for this link."),
        N_(
            "Check that you opened the whole link from your email: it is long, and some email "
            "programs break it in two."
        ),
    ),
}


class PrivateLinks:
    """The private link's routes; the service supplies what they work with."""

    settings: Settings
    ledger: Ledger
    client: Any  # the Stripe client (fundraiser.payments.client.make_client)
    keys: Any
    signer: Signer
    pages: Pages

    def context(self) -> Context:
        raise NotImplementedError  # the service's: links and charge look-ups

    async def json_body(self, request: Request) -> Any:
        raise NotImplementedError  # the service's: size-limited, JSON only

    def pledge_for(self, token: str, purposes: tuple[str, ...] = (MANAGE, FIX)) -> Any:
        if not token.isascii():  # our tokens are base64url: anything else is not one
            raise BadToken("this link is not valid")
        pledge_id = self.signer.check(token, purposes, self.settings.now())
        with self.ledger.read() as conn:
            row = pledge_row(conn, id=pledge_id)
        if row is None:
            raise BadToken("this link is not valid")
        return row

    def view(self, row: Any) -> dict[str, Any]:
        status = Status(row.status)
        now, deadline = self.settings.now(), self.settings.campaign.campaign.deadline
        return {
            "pledge_id": row.id,
            "status": status.value,
            "amount": int(row.amount),
            "currency": row.currency,
            "shares": row.shares,
            "tier": row.tier,
            "round": row.round,
            "name": row.name,
            "display_name": row.display_name,
            "paid": int(row.paid_amount),
            "refunded": int(row.refunded_amount),
            "can_cancel": cancel.refusal(status, cancel.Who.BACKER, now=now, deadline=deadline)
            is None,
            "can_fix": status is Status.PAYMENT_FAILED,
            "fix_until": row.fix_until,
            "deadline": self.settings.campaign.campaign.deadline.isoformat(),
        }

    async def manage_json(self, request: Request) -> Response:
        try:
            row = await run_in_threadpool(self.pledge_for, request.path_params["token"])
        except BadToken as exc:
            return error(403, str(exc), "token")
        return JSONResponse(self.view(row))

    def cancel(self, row: Any) -> Any:
        """The backer cancels, by the rule in fundraiser.cancel; the pledge's row after."""
        cancel.cancel(
            self.ledger,
            row.id,
            who=cancel.Who.BACKER,
            reason="cancelled by the backer",
            now=self.settings.now(),
            deadline=self.settings.campaign.campaign.deadline,
            at_stripe=lambda pledge_id, reason: cardforms.withdraw(
                self.ledger, self.client, self.context_plain(), pledge_id, reason=reason
            ),
        )
        with self.ledger.read() as conn:
            return pledge_row(conn, id=row.id)

    def context_plain(self) -> Context:
        return Context(keys=self.keys, fix_window=timedelta(days=self.settings.fix_days))

    async def manage_cancel_json(self, request: Request) -> Response:
        try:
            row = await run_in_threadpool(self.pledge_for, request.path_params["token"], (MANAGE,))
            row = await run_in_threadpool(self.cancel, row)
        except BadToken as exc:
            return error(403, str(exc), "token")
        except InvalidTransition as exc:
            return error(409, str(exc), "status")
        except PaymentError as exc:
            log.warning("cancel: Stripe failed: %s", exc)
            return error(502, "the pledge could not be cancelled just now: please try again")
        return JSONResponse(self.view(row))

    async def manage_fix(self, request: Request) -> Response:
        try:
            row = await run_in_threadpool(self.pledge_for, request.path_params["token"])
            secret = await run_in_threadpool(
                intents.start_fix, self.ledger, self.client, self.context(), row.id
            )
        except BadToken as exc:
            return error(403, str(exc), "token")
        except FundraiserError as exc:
            return error(409, str(exc), "status")
        return JSONResponse(
            {
                "pledge_id": row.id,
                "client_secret": secret,
                "publishable_key": self.settings.stripe_publishable_key,
                "mode": "setup",
            }
        )

    async def manage_fix_confirm(self, request: Request) -> Response:
        try:
            row = await run_in_threadpool(self.pledge_for, request.path_params["token"])
            data = await self.json_body(request)
            intent_id = data.get("setup_intent") if isinstance(data, dict) else None
            if not isinstance(intent_id, str) or not re.fullmatch(
                r"seti_[A-Za-z0-9]{1,200}", intent_id
            ):
                raise validate.Invalid("setup_intent", "must be the card form's id")
            pledge = await run_in_threadpool(
                intents.confirm,
                self.ledger,
                self.client,
                self.context(),
                row.id,
                intent_id,
            )
        except BadToken as exc:
            return error(403, str(exc), "token")
        except validate.Invalid as exc:
            return error(exc.status, exc.message, exc.field)
        except NotFound:
            return error(404, "no such card form", "setup_intent")
        except (CardError, PaymentError):
            return error(502, "Stripe could not be reached: please try again shortly")
        return JSONResponse(status_answer(pledge))

    # -- the private pages (a backer's link, in the site's layout) -------------------
    def purpose(self, token: str) -> str:
        """MANAGE for the link that may cancel (the mail's, the thank-you page's), else FIX."""
        try:
            self.signer.check(token, (MANAGE,), self.settings.now())
        except BadToken:
            return FIX
        return MANAGE

    def pledge_page_view(self, row: Any, token: str) -> Any:
        campaign = self.settings.campaign
        view = self.view(row)
        return pledge_view(
            row,
            campaign,
            now=self.settings.now(),
            can_cancel=view["can_cancel"] and self.purpose(token) == MANAGE,
            transfer_reference=transfer_reference(row.id),
        )

    def private(
        self, template: str, token: str, row: Any, title: str, status: int = 200
    ) -> HTMLResponse:
        view = self.pledge_page_view(row, token)
        return self.page(
            template,
            status,
            title=title,
            p=view,
            token=token,
            stripe_form=template == "manage.html" and view.can_fix,
        )

    def bad_link(self, exc: BadToken) -> HTMLResponse:
        title, message, advice = map(self.gettext, _LINK_PROBLEMS.get(str(exc), _LINK_PROBLEMS[""]))
        return self.page("message.html", 403, title=title, message=message, advice=advice)

    async def manage_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            row = await run_in_threadpool(self.pledge_for, token)
        except BadToken as exc:
            return self.bad_link(exc)
        return self.private("manage.html", token, row, self.gettext("Your pledge"))

    async def manage_page_cancel_ask(self, request: Request) -> Response:
        """GET: ask first. Cancelling is a form's POST, so it needs no script."""
        token = request.path_params["token"]
        try:
            row = await run_in_threadpool(self.pledge_for, token, (MANAGE,))
        except BadToken as exc:
            return self.bad_link(exc)
        view = self.pledge_page_view(row, token)
        if view.can_cancel:
            title = self.gettext("Cancel this pledge?")
        else:
            title = self.gettext("This pledge cannot be cancelled")
        return self.private("cancel.html", token, row, title)

    async def manage_page_cancel(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            row = await run_in_threadpool(self.pledge_for, token, (MANAGE,))
            await run_in_threadpool(self.cancel, row)
        except BadToken as exc:
            return self.bad_link(exc)
        except InvalidTransition:
            # Cancelled a moment ago, paid, or the campaign closed: the page says which.
            row = await run_in_threadpool(self.pledge_for, token, (MANAGE,))
            title = self.gettext("This pledge cannot be cancelled")
            return self.private("cancel.html", token, row, title, 409)
        except PaymentError as exc:
            log.warning("cancel: Stripe failed: %s", exc)
            return self.page(
                "message.html",
                502,
                title=self.gettext("Your pledge is not cancelled yet"),
                message=self.gettext(
                    "We could not reach our payment processor to cancel it just now."
                ),
                advice=self.gettext(
                    "Nothing has changed. Please go back and try again in a minute."
                ),
            )
        # After a POST, a page of its own: reloading it cancels nothing twice.
        return RedirectResponse(f"/manage/{token}/cancelled", status_code=303)

    async def manage_page_cancelled(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            row = await run_in_threadpool(self.pledge_for, token, (MANAGE,))
        except BadToken as exc:
            return self.bad_link(exc)
        if Status(row.status) is not Status.CANCELLED:
            return RedirectResponse(f"/manage/{token}", status_code=303)
        return self.private("cancelled.html", token, row, self.gettext("Your pledge is cancelled"))

    def gettext(self, message: str) -> str:
        """A message of the private pages, in the campaign's language."""
        return self.pages.language.gettext(message)

    @property
    def coop_name(self) -> str:
        return self.settings.campaign.coop.name

    def page(
        self, template: str, status: int = 200, *, stripe_form: bool = False, **context: Any
    ) -> HTMLResponse:
        """A private page in the site's layout (autoescaped: text from people stays text)."""
        closed = self.settings.now() >= self.settings.campaign.campaign.deadline
        body = self.pages.render(
            template,
            stripe_form=stripe_form,
            stripe_js=self.settings.stripe_js,
            closed=closed,
            **context,
        )
        return HTMLResponse(body, status_code=status)
