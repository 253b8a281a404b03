"""A member's own page: signing in by an emailed link, what they hold, and changing it.

A mixin of the service (fundraiser.service.app.Service), which gives it the
ledger, the Stripe client, the link signer and the pages. Signing in: the
member types their email; whether or not it is a member's, the answer is the
same (and the lookup runs after the answer, so not even its time tells); a
member gets a link (links.MEMBER, 30 minutes) that works once. Opening it
shows a button (mail scanners that fetch links do not burn it); pressing it
opens a session: a cookie (HttpOnly, SameSite=Strict, Secure on https) holding
a signed session id, with its own expiry. Every form POST carries a token tied
to the session (and a foreign Origin is refused). Pages use the site's layout
(fundraiser.service.pages) and the campaign's language.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any
from urllib.parse import parse_qs, urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from fundraiser import outbox, register
from fundraiser.config import Rate
from fundraiser.documents.mail import Sender
from fundraiser.documents.postman import Postman
from fundraiser.documents.printing import Documents
from fundraiser.documents.smtp import SmtpSettings
from fundraiser.errors import FundraiserError, NotFound, PaymentError, UserInputError
from fundraiser.i18n import N_
from fundraiser.ledger import Ledger, stamp
from fundraiser.links import MEMBER, TOP_UP, BadToken, ServiceLinks, Signer
from fundraiser.membership import account, fees, signin, withdrawal
from fundraiser.payments import memberfees
from fundraiser.payments.client import CardError
from fundraiser.people import email_problem, normal_email
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


class MemberPages:
    """The member's page's routes; the service supplies what they work with."""

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

    # -- plumbing ----------------------------------------------------------------
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

    # -- signing in --------------------------------------------------------------
    async def member_signin_form(self, request: Request) -> Response:
        return self.member_page(
            "member_signin.html", self.gettext("Sign in to your member's page"), email=""
        )

    async def member_signin_ask(self, request: Request) -> Response:
        by_address, _ = self.member_limits
        address = request.client.host if request.client else "unknown"
        if not by_address.allow(address):
            page = self.member_page(
                "member_signin.html",
                self.gettext("Sign in to your member's page"),
                429,
                problem=self.gettext("Too many sign-in requests: wait a minute and try again."),
                email="",
            )
            page.headers["retry-after"] = "60"
            return page
        try:
            data = await self.form(request)
            email = data.get("email", "").strip()
            if not email or len(email) > account.LIMITS[account.Field.EMAIL]:
                raise Refusal("email", self.gettext("Give the email address you joined with."))
        except Refusal as exc:
            return self.member_page(
                "member_signin.html",
                self.gettext("Sign in to your member's page"),
                400,
                problem=exc.message,
                email="",
            )
        # After the answer: a member's address and a stranger's take the same time.
        self.member_mail.submit(self.send_sign_in, email)
        return self.member_page(
            "member_signin.html", self.gettext("Check your email"), sent=email, email=email
        )

    def send_sign_in(self, email: str) -> None:
        try:
            _, per_email = self.member_limits
            if not per_email.allow(email.casefold()):
                return
            now = self.settings.now()
            with self.ledger.write(stamp(now)) as tx:
                number = account.by_email(tx.conn, email)
                if number is None:
                    return
                member = account.current_member(tx.conn, number)
                expires = now + LINK_LIFETIME
                link = self.links.member_url(number, expires)
                token = link.rsplit("/", 1)[1]
                outbox.queue(
                    tx,
                    outbox.Kind.MEMBER_SIGN_IN,
                    f"sign-in:{number}:{signin.digest(token)[:32]}",
                    to_email=member.email,
                    to_name=member.name,
                    member_number=number,
                    data={"link": link, "minutes": int(LINK_LIFETIME.total_seconds() // 60)},
                )
            self.deliver()
        except Exception:
            log.exception("member sign-in: the mail could not be queued")

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

    def link_member(self, token: str) -> int:
        if not token.isascii():
            raise BadToken("this link is not valid")
        return self.signer.check(token, (MEMBER,), self.settings.now())

    def link_refusal(self, token: str, number: int) -> str | None:
        with self.ledger.read() as conn:
            try:
                member = register.get_member(conn, number)
            except NotFound:
                return ""
            if member.ceased_on:
                return "ceased"
            return "used" if signin.used(conn, token) else None

    async def member_signin_link(self, request: Request) -> Response:
        """GET: the link from the mail shows a button; nothing is used up yet."""
        token = request.path_params["token"]
        try:
            number = self.link_member(token)
        except BadToken as exc:
            return self.link_problem(str(exc))
        why = await run_in_threadpool(self.link_refusal, token, number)
        if why is not None:
            return self.link_problem(why)
        current = await run_in_threadpool(self.session, request)
        other = current is not None and current.member.number != number
        return self.member_page(
            "member_signin_link.html",
            self.gettext("This link is for another member")
            if other
            else self.gettext("Sign in to your member's page"),
            409 if other else 200,
            token=token,
            other=current.member if other and current else None,
            csrf=self.csrf(current.cookie) if current else "",
        )

    async def member_signin_use(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not self.same_origin(request):
            return self.refused_form()
        try:
            number = self.link_member(token)
        except BadToken as exc:
            return self.link_problem(str(exc))
        current = await run_in_threadpool(self.session, request)
        if current is not None and current.member.number != number:
            return self.link_problem("other", 409)
        expires = self.settings.now() + SESSION_LIFETIME

        def start() -> int:
            with self.ledger.write(self.now_stamp()) as tx:
                return signin.start(tx, number, token, stamp(expires))

        try:
            session_id = await run_in_threadpool(start)
        except signin.Refused as exc:
            return self.link_problem(exc.why.value)
        answer = RedirectResponse("/member", status_code=303)
        answer.set_cookie(
            COOKIE,
            self.signer.sign(session_id, SESSION, expires),
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path="/member",
            httponly=True,
            samesite="strict",
            secure=self.secure(),
        )
        return answer

    async def member_signout(self, request: Request) -> Response:
        found = await self.posted(request)
        if isinstance(found, Response):
            return found
        session, _ = found

        def end() -> None:
            with self.ledger.write(self.now_stamp()) as tx:
                signin.end(tx, session.id)

        await run_in_threadpool(end)
        answer = RedirectResponse("/member/sign-in", status_code=303)
        answer.delete_cookie(COOKIE, path="/member")
        return answer

    # -- the page -------------------------------------------------------------------
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

    # -- changes ------------------------------------------------------------------------
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

    async def member_address(self, request: Request) -> Response:
        def work(session: Session, data: dict[str, str]) -> None:
            address = self.text_field(
                data, "address", account.LIMITS[account.Field.ADDRESS], required=True
            )
            with self.ledger.write(self.now_stamp()) as tx:
                account.change_address(tx, session.member.number, address, self.today())

        return await self.change(request, work, "address")

    async def member_public_name(self, request: Request) -> Response:
        def work(session: Session, data: dict[str, str]) -> None:
            shown = data.get("show") == "yes"
            name = self.text_field(
                data, "public_name", account.LIMITS[account.Field.PUBLIC_NAME], required=shown
            )
            with self.ledger.write(self.now_stamp()) as tx:
                account.set_public_name(
                    tx, session.member.number, name if shown else None, self.today()
                )

        return await self.change(request, work, "public-name")

    async def member_email(self, request: Request) -> Response:
        def work(session: Session, data: dict[str, str]) -> None:
            email = self.text_field(
                data, "email", account.LIMITS[account.Field.EMAIL], required=True
            )
            problem = email_problem(email)
            if problem is not None:
                raise Refusal(
                    "email",
                    self.gettext("This is not an email address we can write to: %(why)s")
                    % {"why": problem.message},
                )
            email = normal_email(email)
            number = session.member.number
            now = self.settings.now()
            with self.ledger.write(stamp(now)) as tx:
                if (session.member.email or "").casefold() == email.casefold():
                    raise Refusal("email", self.gettext("This is your email already."))
                other = account.by_email(tx.conn, email)
                if other is not None and other != number:
                    raise Refusal(
                        "email",
                        self.gettext("This address cannot be used here: write to us to change it."),
                    )
                change = account.ask_email(tx, number, email, self.today())
                token = self.signer.sign(change, EMAIL, now + EMAIL_LIFETIME)
                outbox.queue(
                    tx,
                    outbox.Kind.MEMBER_EMAIL,
                    f"member-email:{change}",
                    to_email=email,
                    to_name=session.member.name,
                    member_number=number,
                    data={
                        "link": f"{self.settings.public_base}/member/email/{token}",
                        "hours": int(EMAIL_LIFETIME.total_seconds() // 3600),
                    },
                )
            self.member_mail.submit(self.deliver)

        return await self.change(request, work, "email-sent")

    def email_change(self, token: str) -> Any:
        if not token.isascii():
            raise BadToken("this link is not valid")
        change = self.signer.check(token, (EMAIL,), self.settings.now())
        with self.ledger.read() as conn:
            row = account.change_row(conn, change)
        if row is None:
            raise BadToken("this link is not valid")
        return row

    def email_problem_page(self, why: str) -> HTMLResponse:
        words = {
            "this link has expired": N_(
                "This link has expired: ask for the change again on your member's page."
            ),
            "superseded": N_(
                "You asked for another email address after this one: use the link sent to that one."
            ),
            "done": N_("This email address is confirmed already."),
        }.get(why, N_("This link does not work: ask for the change again on your member's page."))
        return self.member_page(
            "message.html",
            self.gettext("Your email address is not changed"),
            409 if why in ("superseded", "done") else 403,
            message=self.gettext(words),
            advice=None,
        )

    async def member_email_link(self, request: Request) -> Response:
        token = request.path_params["token"]
        try:
            row = await run_in_threadpool(self.email_change, token)
        except BadToken as exc:
            return self.email_problem_page(str(exc))
        if row.status != account.ChangeStatus.PENDING.value:
            return self.email_problem_page(row.status)
        return self.member_page(
            "member_email.html",
            self.gettext("Confirm your new email address"),
            token=token,
            email=row.value,
        )

    async def member_email_confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        if not self.same_origin(request):
            return self.refused_form()
        try:
            row = await run_in_threadpool(self.email_change, token)
        except BadToken as exc:
            return self.email_problem_page(str(exc))

        def confirm() -> tuple[int, str]:
            with self.ledger.write(self.now_stamp()) as tx:
                return account.confirm_email(tx, int(row.id), self.today())

        try:
            _, email = await run_in_threadpool(confirm)
        except account.EmailNotPending as exc:
            return self.email_problem_page(exc.status)
        except account.Ceased:
            return self.link_problem("ceased")
        return self.member_page(
            "message.html",
            self.gettext("Your email address is changed"),
            message=self.gettext("We will write to %(email)s from now on.") % {"email": email},
            advice=None,
            member_link=True,
        )

    # -- the fee -------------------------------------------------------------------------
    def fee_of(self, number: int) -> account.FeeView:
        fee = self.member_view(number).fee
        if fee is None or fee.fee.standing == fees.Standing.ENDED:
            raise Refusal("fee", self.gettext("You have no membership fee running."))
        return fee

    def attempts(self, number: int, what: account.Field) -> int:
        with self.ledger.read() as conn:
            return (
                sum(
                    1
                    for c in account.view(
                        conn, self.settings.campaign, number, self.settings.now().date()
                    ).history
                    if c.field == what
                )
                + 1
            )

    async def member_rate(self, request: Request) -> Response:
        def work(session: Session, data: dict[str, str]) -> None:
            membership = self.settings.campaign.membership
            terms = membership.fee if membership else None
            number = session.member.number
            fee = self.fee_of(number)
            try:
                rate = Rate(data.get("rate", ""))
            except ValueError:
                raise Refusal("rate", self.gettext("Choose one of the rates listed.")) from None
            amount = terms.rates().get(rate) if terms else None
            if terms is None or amount is None or amount.amount <= 0:
                raise Refusal("rate", self.gettext("Choose one of the rates listed."))
            if rate.value == fee.fee.rate:
                raise Refusal("rate", self.gettext("This is your rate already."))
            if fee.stripe_subscription is None:
                raise Refusal(
                    "rate", self.gettext("Your fee is paid by hand: write to us to change it.")
                )
            memberfees.move_rate(
                self.client,
                self.keys,
                coop_name=self.settings.campaign.coop.name,
                fee=terms,
                rate=rate,
                subscription_id=fee.fee.subscription_id,
                subscription=fee.stripe_subscription,
                attempt=self.attempts(number, account.Field.FEE_RATE),
            )
            with self.ledger.write(self.now_stamp()) as tx:
                fees.change_rate(tx, fee.fee.subscription_id, rate, amount)
                account.record(tx, number, account.Field.FEE_RATE, rate.value, self.today())

        return await self.change(request, work, "rate")

    async def member_card_form(self, request: Request) -> Response:
        session = await run_in_threadpool(self.session, request)
        if session is None:
            return self.signed_out()
        number = session.member.number
        try:
            fee = await run_in_threadpool(self.fee_of, number)
            if not fee.stripe_customer:
                raise Refusal(
                    "card", self.gettext("Your fee is paid by hand: there is no card to change.")
                )
            attempt = await run_in_threadpool(self.attempts, number, account.Field.CARD)
            _, secret = await run_in_threadpool(
                memberfees.card_form,
                self.client,
                self.keys,
                fee.fee.subscription_id,
                fee.stripe_customer,
                attempt,
            )
        except Refusal as exc:
            return self.member_page(
                "message.html",
                self.gettext("Change your card"),
                409,
                message=exc.message,
                advice=None,
                member_link=True,
            )
        except PaymentError as exc:
            log.warning("member %s: card form: %s", number, exc)
            return self.member_page(
                "message.html",
                self.gettext("The card form is not available just now"),
                502,
                message=self.gettext("Please go back and try again in a minute."),
                advice=None,
                member_link=True,
            )
        return self.member_page(
            "member_card.html",
            self.gettext("Change your card"),
            stripe_form=True,
            client_secret=secret,
            publishable_key=self.settings.stripe_publishable_key,
            csrf=self.csrf(session.cookie),
        )

    async def member_card(self, request: Request) -> Response:
        def work(session: Session, data: dict[str, str]) -> None:
            number = session.member.number
            fee = self.fee_of(number)
            intent = data.get("setup_intent", "")
            if not intent.startswith("seti_") or not intent[5:].isalnum() or len(intent) > 200:
                raise Refusal("card", self.gettext("The card form did not finish: try again."))
            if not fee.stripe_customer:
                raise Refusal(
                    "card", self.gettext("Your fee is paid by hand: there is no card to change.")
                )
            try:
                saved = memberfees.use_card(
                    self.client, intent, fee.stripe_customer, fee.stripe_subscription
                )
            except (NotFound, CardError):
                raise Refusal("card", self.gettext("The card was not saved: try again.")) from None
            with self.ledger.write(self.now_stamp()) as tx:
                account.record(
                    tx,
                    number,
                    account.Field.CARD,
                    f"•••• {saved.last4 or ''}".strip(),
                    self.today(),
                )

        return await self.change(request, work, "card")

    async def member_card_script(self, request: Request) -> Response:
        script = resources.files("fundraiser.service").joinpath("templates/member-card.js")
        return Response(
            script.read_text(encoding="utf-8"),
            media_type="text/javascript",
            headers={"cache-control": "public, max-age=300"},
        )

    # -- withdrawing shares, ending the fee ------------------------------------------------
    async def member_withdraw_form(self, request: Request) -> Response:
        return await self.member_step(
            request, "member_withdraw.html", self.gettext("Withdraw shares")
        )

    async def member_end_form(self, request: Request) -> Response:
        return await self.member_step(
            request, "member_end.html", self.gettext("End your membership fee")
        )

    async def member_step(self, request: Request, template: str, title: str) -> Response:
        session = await run_in_threadpool(self.session, request)
        if session is None:
            return self.signed_out()
        if session.member.ceased_on:
            return self.link_problem("ceased")
        ctx = await run_in_threadpool(self.page_context, session)
        return self.member_page(template, title, **ctx)

    async def member_withdraw(self, request: Request) -> Response:
        def work(session: Session, data: dict[str, str]) -> None:
            number = session.member.number
            view = self.member_view(number)
            text = data.get("shares", "").strip()
            if not text.isascii() or not text.isdigit() or len(text) > 9:
                raise Refusal("shares", self.gettext("Give a whole number of shares."))
            shares = int(text)
            free = view.free_shares
            if shares < 1:
                raise Refusal("shares", self.gettext("Give a whole number of shares, at least 1."))
            if shares > free:
                raise Refusal(
                    "shares",
                    self.gettext(
                        "You can ask to withdraw at most %(free)s shares: that is what you hold, "
                        "less what you have asked for already."
                    )
                    % {"free": free},
                )
            least = self.settings.campaign.shares.min_shares
            if 0 < free - shares < least:
                raise Refusal(
                    "shares",
                    self.gettext(
                        "A member holds at least %(least)s shares: withdraw all %(free)s to "
                        "leave, or at most %(stay)s to stay a member."
                    )
                    % {"least": least, "free": free, "stay": max(free - least, 0)},
                )
            try:
                withdrawal.request(
                    self.ledger,
                    self.settings.campaign,
                    number,
                    shares,
                    today=self.today(),
                    now=self.now_stamp(),
                    note="asked on the member's page",
                )
            except UserInputError as exc:  # the register's own check, the last word
                raise Refusal("shares", str(exc)) from None

        return await self.change(
            request, work, "withdraw", "member_withdraw.html", N_("Withdraw shares")
        )

    async def member_end(self, request: Request) -> Response:
        def work(session: Session, data: dict[str, str]) -> None:
            number = session.member.number
            fee = self.fee_of(number)
            if data.get("confirm") != "yes":
                raise Refusal(
                    "confirm", self.gettext("Tick the box to confirm you want to end your fee.")
                )
            if fee.stripe_subscription is None:
                raise Refusal(
                    "fee", self.gettext("Your fee is paid by hand: write to us to end it.")
                )
            memberfees.end(self.client, self.keys, fee.fee.subscription_id, fee.stripe_subscription)
            now = self.now_stamp()
            with self.ledger.write(now) as tx:
                fees.apply(
                    tx,
                    fees.FeeEvent(
                        fees.EventKind.SUBSCRIPTION_DELETED,
                        fee.stripe_subscription,
                        at=now,
                    ),
                )
                account.record(tx, number, account.Field.FEE, "ended", self.today())

        return await self.change(
            request, work, "fee-ended", "member_end.html", N_("End your membership fee")
        )


def member_routes(service: Any) -> list[Route]:
    """The member's page's routes, for the service's route list."""
    pages: list[tuple[str, Any, str]] = [
        ("/member", service.member_home, "GET"),
        ("/member/sign-in", service.member_signin_form, "GET"),
        ("/member/sign-in", service.member_signin_ask, "POST"),
        ("/member/sign-in/{token}", service.member_signin_link, "GET"),
        ("/member/sign-in/{token}", service.member_signin_use, "POST"),
        ("/member/sign-out", service.member_signout, "POST"),
        ("/member/address", service.member_address, "POST"),
        ("/member/public-name", service.member_public_name, "POST"),
        ("/member/email", service.member_email, "POST"),
        ("/member/email/{token}", service.member_email_link, "GET"),
        ("/member/email/{token}", service.member_email_confirm, "POST"),
        ("/member/rate", service.member_rate, "POST"),
        ("/member/card", service.member_card_form, "GET"),
        ("/member/card", service.member_card, "POST"),
        ("/member/card.js", service.member_card_script, "GET"),
        ("/member/withdraw", service.member_withdraw_form, "GET"),
        ("/member/withdraw", service.member_withdraw, "POST"),
        ("/member/end-fee", service.member_end_form, "GET"),
        ("/member/end-fee", service.member_end, "POST"),
        ("/member/certificates/{name}", service.member_certificate, "GET"),
    ]
    return [Route(path, handler, methods=[method]) for path, handler, method in pages]
