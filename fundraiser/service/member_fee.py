"""A member's membership fee on their page: its rate, its card, ending it."""

from __future__ import annotations

from importlib import resources

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from fundraiser.config import Rate
from fundraiser.errors import NotFound, PaymentError
from fundraiser.i18n import N_
from fundraiser.membership import account, fees
from fundraiser.payments import memberfees
from fundraiser.payments.client import CardError
from fundraiser.service.member_base import MemberBase, Refusal, Session, log


class MemberFee(MemberBase):
    """The fee's rate and card, and ending it."""

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

    async def member_end_form(self, request: Request) -> Response:
        return await self.member_step(
            request, "member_end.html", self.gettext("End your membership fee")
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
