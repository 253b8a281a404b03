"""Withdrawing shares from a member's page (a request: the board pays it after the notice)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from fundraiser.errors import UserInputError
from fundraiser.i18n import N_
from fundraiser.membership import withdrawal
from fundraiser.service.member_base import MemberBase, Refusal, Session


class MemberShares(MemberBase):
    """Asking to withdraw shares."""

    async def member_withdraw_form(self, request: Request) -> Response:
        return await self.member_step(
            request, "member_withdraw.html", self.gettext("Withdraw shares")
        )

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
