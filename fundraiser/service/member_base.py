"""What every part of a member's own page shares: the session, its forms, the page.

The parts (member_signin, member_details, member_fee, member_shares) are mixins on
MemberBase; service/member.py puts them together. See service/member.py for how
signing in and the session work.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from fundraiser import outbox
from fundraiser.documents.mail import Sender
from fundraiser.documents.postman import Postman
from fundraiser.documents.printing import Documents
from fundraiser.documents.smtp import SmtpSettings
from fundraiser.errors import FundraiserError, PaymentError
from fundraiser.i18n import N_
from fundraiser.ledger import Ledger, stamp
from fundraiser.links import TOP_UP, BadToken, ServiceLinks, Signer
from fundraiser.membership import account, signin
from fundraiser.service.guards import TooLarge, read_body
from fundraiser.service.limits import RateLimit
from fundraiser.service.pages import Pages
from fundraiser.service.settings import Settings

log = logging.getLogger("fundraiser.service")

#: The link purposes of the member's page (beside links.MEMBER and links.TOP_UP).
SESSION = "member-session"
EMAIL = "member-email"
COOKIE = "member_session"
LINK_LIFETIME = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=2)
EMAIL_LIFETIME = timedelta(hours=24)
TOP_UP_LIFETIME = timedelta(hours=24)
FORM_LIMIT = 8 * 1024
#: Sign-in mails: per address a minute (burst), and per email typed.
SIGN_IN_PER_MINUTE, SIGN_IN_BURST = 10.0, 10
MAILS_PER_EMAIL_PER_HOUR, MAILS_PER_EMAIL_BURST = 6.0, 3

#: Words after a change, by the `done` the redirect names.
DONE: dict[str, str] = {
    "address": N_("Your postal address is changed in the register."),
    "email-sent": N_(
        "We have sent a link to your new email address. It becomes your email once you "
        "open that link."
    ),
    "public-name": N_("Your public name is changed."),
    "rate": N_("Your fee rate is changed."),
    "card": N_("Your card is changed: your next fee will be taken from it."),
    "withdraw": N_("Your request to withdraw shares is recorded."),
    "fee-ended": N_("Your membership fee has ended."),
}

#: A sign-in link that does not work, by BadToken's words or the refusal.
LINK_PROBLEMS: dict[str, tuple[str, str]] = {
    "this link has expired": (
        N_("This sign-in link has expired"),
        N_("Sign-in links work for 30 minutes. Ask for a new one: it takes a minute."),
    ),
    "used": (
        N_("This sign-in link has been used already"),
        N_(
            "Each sign-in link works once. If that was not you, ask for a new link, and tell "
            "us: someone may be reading your email."
        ),
    ),
    "ceased": (
        N_("Your membership has ended"),
        N_(
            "Former members cannot sign in to change anything. If you want to join again, "
            "or to see what the register holds about you, write to us."
        ),
    ),
    "this link is for something else": (
        N_("This link is not a sign-in link"),
        N_("Use the sign-in link from the email we sent you, or ask for a new one."),
    ),
    "": (
        N_("This sign-in link does not work"),
        N_(
            "Check that you opened the whole link from your email: it is long, and some email "
            "programs break it in two. Or ask for a new one."
        ),
    ),
}


class Refusal(Exception):
    """A form the member sent that cannot be done: the field and the words to show."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Session:
    id: int
    member: Any  # the members row
    cookie: str


class MemberBase:
    """What the member's page's parts share; the service supplies what they work with."""

    settings: Settings
    ledger: Ledger
    client: Any
    keys: Any
    signer: Signer
    pages: Pages
    links: ServiceLinks

    def gettext(self, message: str) -> str:
        raise NotImplementedError  # the service's (PrivateLinks)

    def page(
        self, template: str, status: int = 200, *, stripe_form: bool = False, **context: Any
    ) -> HTMLResponse:
        raise NotImplementedError  # the service's (PrivateLinks)

    @functools.cached_property
    def member_limits(self) -> tuple[RateLimit, RateLimit]:
        per_email = RateLimit(MAILS_PER_EMAIL_PER_HOUR / 60, MAILS_PER_EMAIL_BURST)
        return RateLimit(SIGN_IN_PER_MINUTE, SIGN_IN_BURST), per_email

    @functools.cached_property
    def member_mail(self) -> ThreadPoolExecutor:
        """One thread: looks up sign-in requests and sends their mail, after the answer."""
        return ThreadPoolExecutor(1, thread_name_prefix="member-mail")

    def now_stamp(self) -> str:
        return stamp(self.settings.now())

    def today(self) -> str:
        return self.settings.now().date().isoformat()

    def secure(self) -> bool:
        return self.settings.public_base.startswith("https://")

    def csrf(self, cookie: str) -> str:
        key = hashlib.sha256(b"fundraiser-member-form\x00" + self.settings.secret.encode()).digest()
        return hmac.new(key, cookie.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def same_origin(self, request: Request) -> bool:
        """A POST from a page of ours. Browsers say so in Sec-Fetch-Site; our pages send
        no referrer, so their Origin is "null" and says nothing; an Origin of another
        site is refused. Without either, the session's form token still stands guard."""
        fetched = request.headers.get("sec-fetch-site")
        if fetched is not None:
            return fetched == "same-origin"
        origin = request.headers.get("origin")
        if origin is None or origin == "null":
            return True
        base = urlsplit(self.settings.public_base)
        return origin.rstrip("/").lower() == f"{base.scheme}://{base.netloc}".lower()

    async def form(self, request: Request) -> dict[str, str]:
        """A url-encoded form, size-limited; each field's last value, as text."""
        try:
            raw = await read_body(request, FORM_LIMIT)
        except TooLarge:
            raise Refusal("form", self.gettext("The form is too large.")) from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise Refusal("form", self.gettext("The form is not readable text.")) from None
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
        return {k: v[-1] for k, v in fields.items()}

    def session(self, request: Request) -> Session | None:
        cookie = request.cookies.get(COOKIE, "")
        if not cookie or not cookie.isascii():
            return None
        try:
            session_id = self.signer.check(cookie, (SESSION,), self.settings.now())
        except BadToken:
            return None
        with self.ledger.read() as conn:
            member = signin.member_of(conn, session_id, self.now_stamp())
        if member is None:
            return None
        return Session(session_id, member, cookie)

    def signed_out(self) -> Response:
        return RedirectResponse("/member/sign-in", status_code=303)

    def member_page(self, template: str, title: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        page = self.page(template, status, title=title, member=True, **ctx)
        page.headers["cache-control"] = "no-store"
        return page

    async def posted(self, request: Request) -> tuple[Session, dict[str, str]] | Response:
        """A member's form POST: signed in, from our page, with the session's token."""
        found = await run_in_threadpool(self.session, request)
        if found is None:
            return self.signed_out()
        if not self.same_origin(request):
            return self.refused_form()
        try:
            data = await self.form(request)
        except Refusal:
            return self.refused_form()
        if not hmac.compare_digest(data.get("csrf", ""), self.csrf(found.cookie)):
            return self.refused_form()
        if found.member.ceased_on:
            return self.link_problem("ceased", 403)
        return found, data

    def refused_form(self) -> HTMLResponse:
        return self.member_page(
            "message.html",
            self.gettext("This form cannot be sent from here"),
            403,
            message=self.gettext(
                "Nothing was changed. Open your member's page again and send the form from there."
            ),
            advice=None,
        )

    def link_problem(self, why: str, status: int = 403) -> HTMLResponse:
        title, advice = map(self.gettext, LINK_PROBLEMS.get(why, LINK_PROBLEMS[""]))
        return self.member_page(
            "member_signin.html", title, status, problem=advice, sent=None, email=""
        )

    async def member_signin_form(self, request: Request) -> Response:
        return self.member_page(
            "member_signin.html", self.gettext("Sign in to your member's page"), email=""
        )

    def deliver(self) -> None:
        """Send the member's page's mail now, when the service has a mail server."""
        if not self.settings.smtp_url:
            return
        campaign = self.settings.campaign
        postman = Postman(
            self.ledger,
            campaign,
            Sender.for_campaign(campaign, self.settings.mail_from),
            clock=self.settings.now,
            kinds=frozenset({outbox.Kind.MEMBER_SIGN_IN.value, outbox.Kind.MEMBER_EMAIL.value}),
        )
        try:
            postman.send(SmtpSettings.from_url(self.settings.smtp_url))
        except FundraiserError as exc:
            log.warning("member mail: not sent now (`fundraiser mail send` will): %s", exc)

    def member_view(self, number: int) -> account.View:
        with self.ledger.read() as conn:
            return account.view(conn, self.settings.campaign, number, self.settings.now().date())

    def page_context(self, session: Session) -> dict[str, Any]:
        view = self.member_view(session.member.number)
        membership = self.settings.campaign.membership
        fee_terms = membership.fee if membership else None
        rates = []
        if fee_terms is not None:
            rates = [(r.value, m) for r, m in fee_terms.rates().items() if m.amount > 0]
        top_up = self.signer.sign(view.number, TOP_UP, self.settings.now() + TOP_UP_LIFETIME)
        return {
            "m": view,
            "csrf": self.csrf(session.cookie),
            "rates": rates,
            "interval": fee_terms.interval.value if fee_terms else None,
            "notice_days": membership.withdrawal_notice_days if membership else 0,
            "pay_day": self.pay_day(),
            "top_up_url": f"{self.pages.site}/join.html?top_up={top_up}",
            "certificates": self.certificate_names(view.number),
            "price": self.settings.campaign.shares.price,
            "min_shares": self.settings.campaign.shares.min_shares,
        }

    def pay_day(self) -> str:
        membership = self.settings.campaign.membership
        notice = membership.withdrawal_notice_days if membership else 0
        return (self.settings.now().date() + timedelta(days=notice)).isoformat()

    def certificate_names(self, number: int) -> list[str]:
        with self.ledger.read() as conn:
            return Documents(self.settings.campaign).filenames(conn, number)

    async def member_home(self, request: Request) -> Response:
        session = await run_in_threadpool(self.session, request)
        if session is None:
            return await self.member_signin_form(request)
        ctx = await run_in_threadpool(self.page_context, session)
        done = DONE.get(request.query_params.get("done", ""))
        return self.member_page(
            "member.html",
            self.gettext("Your membership"),
            done=self.gettext(done) if done else None,
            **ctx,
        )

    async def member_certificate(self, request: Request) -> Response:
        session = await run_in_threadpool(self.session, request)
        if session is None:
            return self.signed_out()
        name = request.path_params["name"]
        number = session.member.number

        def find() -> Any:
            with self.ledger.read() as conn:
                documents = Documents(self.settings.campaign)
                if name not in documents.filenames(conn, number):
                    return None
                return {p.name: p for p in documents.ensure(conn, number)}.get(name)

        path = await run_in_threadpool(find)
        if path is None:  # not theirs, or not a certificate: the same answer
            return self.member_page(
                "message.html",
                self.gettext("No such document"),
                404,
                message=self.gettext("Your member's page lists the documents you can download."),
                advice=None,
            )
        return FileResponse(
            path,
            media_type="application/pdf",
            filename=name,
            headers={"cache-control": "no-store"},
        )

    def text_field(self, data: dict[str, str], name: str, limit: int, *, required: bool) -> str:
        value = data.get(name, "").strip()
        if required and not value:
            raise Refusal(name, self.gettext("This field is empty."))
        if len(value) > limit:
            raise Refusal(
                name,
                self.gettext("This is too long: at most %(limit)s characters.") % {"limit": limit},
            )
        if any(ord(c) < 32 and c not in "\n\r\t" for c in value) or any(
            "\ud800" <= c <= "\udfff" for c in value
        ):
            raise Refusal(name, self.gettext("This holds characters that are not text."))
        return value

    async def change(
        self,
        request: Request,
        work: Any,
        done: str,
        template: str = "member.html",
        title: str = N_("Your membership"),
    ) -> Response:
        """Run one change for the signed-in member; the page again with the words for a refusal."""
        found = await self.posted(request)
        if isinstance(found, Response):
            return found
        session, data = found
        try:
            await run_in_threadpool(work, session, data)
        except Refusal as exc:
            ctx = await run_in_threadpool(self.page_context, session)
            return self.member_page(
                template,
                self.gettext(title),
                400,
                problem=exc,
                form=data,
                **ctx,
            )
        except PaymentError as exc:
            log.warning("member %s: Stripe failed: %s", session.member.number, exc)
            return self.member_page(
                "message.html",
                self.gettext("Nothing was changed yet"),
                502,
                message=self.gettext(
                    "We could not reach our payment processor just now. Please go back and try "
                    "again in a minute."
                ),
                advice=None,
            )
        return RedirectResponse(f"/member?done={done}", status_code=303)

    async def member_step(self, request: Request, template: str, title: str) -> Response:
        session = await run_in_threadpool(self.session, request)
        if session is None:
            return self.signed_out()
        if session.member.ceased_on:
            return self.link_problem("ceased")
        ctx = await run_in_threadpool(self.page_context, session)
        return self.member_page(template, title, **ctx)
