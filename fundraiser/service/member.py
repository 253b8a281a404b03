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

from typing import Any

from starlette.routing import Route

from fundraiser.service.member_details import MemberDetails
from fundraiser.service.member_fee import MemberFee
from fundraiser.service.member_shares import MemberShares
from fundraiser.service.member_signin import MemberSignIn


class MemberPages(MemberSignIn, MemberDetails, MemberFee, MemberShares):
    """The member's page's routes, one part per mixin; the service supplies what they work with."""


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
