"""Backers' private links: a pledge id, a purpose and an expiry, signed with HMAC.

The token is `<payload>.<signature>`, both base64url; the payload is JSON.
Changing FUNDRAISER_SECRET revokes every link. A primitive beside the ledger:
the service checks them, and mail queued by payments and the CLI carries them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime

MANAGE = "manage"  # view and cancel, until the deadline
FIX = "fix"  # fix a failed payment, until the fix window ends
MEMBER = "member"  # a member's sign-in link (the id is a member id), short-lived
TOP_UP = "top-up"  # buy more shares as this member (the id is a member id)


class BadToken(Exception):
    """The token is malformed, forged, for another purpose, or expired."""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Signer:
    secret: str

    def _mac(self, payload: str) -> str:
        key = hashlib.sha256(b"fundraiser-links\x00" + self.secret.encode()).digest()
        return _b64(hmac.new(key, payload.encode("ascii"), hashlib.sha256).digest())

    def sign(self, pledge_id: int, purpose: str, expires: datetime) -> str:
        body = json.dumps(
            {"p": pledge_id, "u": purpose, "e": int(expires.timestamp())}, separators=(",", ":")
        )
        payload = _b64(body.encode())
        return f"{payload}.{self._mac(payload)}"

    def check(self, token: str, purposes: tuple[str, ...], now: datetime) -> int:
        """The pledge id, if the token is genuine, for one of `purposes`, and current."""
        payload, _, mac = token.partition(".")
        if not payload or not mac or not hmac.compare_digest(self._mac(payload), mac):
            raise BadToken("this link is not valid")
        try:
            data = json.loads(_unb64(payload))
            pledge_id, purpose, expires = int(data["p"]), str(data["u"]), int(data["e"])
        except (ValueError, KeyError, TypeError):
            raise BadToken("this link is not valid") from None
        if purpose not in purposes:
            raise BadToken("this link is for something else")
        if now.timestamp() >= expires:
            raise BadToken("this link has expired")
        return pledge_id


@dataclass(frozen=True)
class ServiceLinks:
    """Links in mail and on the thank-you view, pointing at the pledge service."""

    signer: Signer
    base: str  # the service's public address, e.g. https://pledge.example.org
    deadline: datetime

    def manage_url(self, pledge_id: int) -> str:
        token = self.signer.sign(pledge_id, MANAGE, self.deadline)
        return f"{self.base}/manage/{token}"

    def fix_url(self, pledge_id: int, expires: datetime) -> str:
        token = self.signer.sign(pledge_id, FIX, expires)
        return f"{self.base}/manage/{token}"

    def member_url(self, member_id: int, expires: datetime) -> str:
        """A member's sign-in link to their own page (works once, until `expires`)."""
        token = self.signer.sign(member_id, MEMBER, expires)
        return f"{self.base}/member/sign-in/{token}"
