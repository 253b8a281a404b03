"""A member's own details on their page: postal address, public name, email.

A new email becomes theirs only once they open the link sent to it.
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from fundraiser import outbox
from fundraiser.i18n import N_
from fundraiser.ledger import stamp
from fundraiser.links import BadToken
from fundraiser.membership import account
from fundraiser.people import email_problem, normal_email
from fundraiser.service.member_base import EMAIL, EMAIL_LIFETIME, MemberBase, Refusal, Session


class MemberDetails(MemberBase):
    """Changing the address, the public name and the email."""

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
