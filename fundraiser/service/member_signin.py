"""Signing in to a member's page by an emailed link, and signing out.

The link works once and for 30 minutes; opening it shows a button (mail
scanners that fetch links do not burn it); pressing it starts a session.
"""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from fundraiser import outbox, register
from fundraiser.errors import NotFound
from fundraiser.ledger import stamp
from fundraiser.links import MEMBER, BadToken
from fundraiser.membership import account, signin
from fundraiser.service.member_base import (
    COOKIE,
    LINK_LIFETIME,
    SESSION,
    SESSION_LIFETIME,
    MemberBase,
    Refusal,
    log,
)


class MemberSignIn(MemberBase):
    """Signing in and out."""

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
