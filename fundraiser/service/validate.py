"""A pledge request from the page, checked against campaign.toml and the ledger."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.config import Campaign
from fundraiser.figures import tier_counts
from fundraiser.ledger import schema
from fundraiser.people import check_email, person_key
from fundraiser.pledges import LIVE, NewPledge, Source

FIELDS = frozenset(
    {"tier", "shares", "name", "email", "address", "display_name", "round", "consent"}
)
LIMITS = {"name": 200, "email": 254, "address": 500, "display_name": 80}


class Invalid(Exception):
    """A request field is wrong; `status` is the HTTP answer (400, 409, 422)."""

    def __init__(self, field: str, message: str, status: int = 400) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


def _text(data: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = data.get(name)
    if value is None:
        if required:
            raise Invalid(name, "is required")
        return None
    if not isinstance(value, str):
        raise Invalid(name, "must be text")
    value = value.strip()
    if required and not value:
        raise Invalid(name, "is empty")
    if len(value) > LIMITS[name]:
        raise Invalid(name, f"is longer than {LIMITS[name]} characters")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise Invalid(name, "contains control characters")
    return value or None


@dataclass(frozen=True)
class Request:
    """The shape of a request, checked before the ledger is touched."""

    name: str
    email: str
    address: str
    display_name: str | None
    round: str | None
    tier: str | None
    shares: int | None


def parse(data: Any) -> Request:
    if not isinstance(data, dict):
        raise Invalid("body", "must be a JSON object")
    for key in data:
        if key not in FIELDS:
            raise Invalid(str(key)[:40], "is not a known field")
    tier, shares = data.get("tier"), data.get("shares")
    if (tier is None) == (shares is None):
        raise Invalid("tier", "give either tier or shares, not both or neither")
    if tier is not None and (not isinstance(tier, str) or not tier.strip()):
        raise Invalid("tier", "must be a tier id")
    if shares is not None and (type(shares) is not int):
        raise Invalid("shares", "must be a whole number")
    name = _text(data, "name", required=True)
    email = _text(data, "email", required=True)
    address = _text(data, "address", required=True)
    display = _text(data, "display_name", required=False)
    round_id = data.get("round")
    if round_id is not None and not isinstance(round_id, str):
        raise Invalid("round", "must be a round id")
    if data.get("consent") is not True:
        raise Invalid("consent", "must be true: the backer has to agree to the terms")
    assert name and email and address
    if not check_email(email):
        raise Invalid("email", "is not an email address")
    return Request(name, email, address, display, round_id, tier, shares)


def request_key(idempotency_key: str | None, email: str) -> str | None:
    """Our key for a repeated submit: the client's key, scoped to the backer.

    Scoping means someone who guesses or reuses another's key gets a new pledge,
    never another backer's pledge or card form.
    """
    if not idempotency_key:
        return None
    material = f"{idempotency_key}\x1f{person_key(email)}".encode()
    return "web:" + hashlib.sha256(material).hexdigest()


def check(
    campaign: Campaign, conn: Connection, req: Request, now: datetime, key: str | None
) -> NewPledge:
    """The pledge to record, or Invalid naming the field (inside the write transaction)."""
    settings = campaign.campaign
    if now < settings.opens:
        raise Invalid("round", "the campaign has not opened yet", 422)
    if now >= settings.deadline:
        raise Invalid("round", "the campaign has closed", 422)
    # Without a round: the crowd round when it is open, else whichever round is open
    # now (a static page cannot know which round it will be used in).
    wanted = req.round
    if wanted is None:
        crowd = campaign.round("crowd")
        open_now = [r for r in campaign.rounds if r.is_open(now)]
        crowd_open = crowd is not None and crowd.is_open(now)
        wanted = "crowd" if crowd_open or not open_now else open_now[0].id
    found = campaign.round(wanted)
    if found is None:
        raise Invalid("round", f"is not one of {', '.join(r.id for r in campaign.rounds)}")
    if not found.is_open(now):
        raise Invalid("round", f"the {found.name} is not open now", 422)
    terms = campaign.shares
    tier_id = None
    if req.tier is not None:
        tier = campaign.tier(req.tier)
        if tier is None:
            raise Invalid("tier", f"is not one of {', '.join(t.id for t in campaign.tiers)}")
        shares, tier_id = tier.shares, tier.id
        taken = tier_counts(conn, include_unconfirmed=True).get(tier.id, 0)
        if tier.limit is not None and taken >= tier.limit:
            raise Invalid("tier", "has no places left", 409)
    else:
        assert req.shares is not None
        shares = req.shares
        if not terms.min_shares <= shares <= terms.max_shares:
            raise Invalid("shares", f"must be from {terms.min_shares} to {terms.max_shares}", 400)
    held = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(schema.pledges.c.amount), 0)).where(
            schema.pledges.c.person_key == person_key(req.email),
            schema.pledges.c.status.in_([s.value for s in LIVE]),
            *(
                [
                    sa.or_(
                        schema.pledges.c.request_key.is_(None), schema.pledges.c.request_key != key
                    )
                ]
                if key
                else []
            ),
        )
    ).scalar()
    already = int(held or 0) // terms.price.amount
    if already + shares > terms.max_shares:
        field = "tier" if req.tier is not None else "shares"
        raise Invalid(
            field,
            f"would take this backer to {already + shares} shares; no one may hold more "
            f"than {terms.max_shares}",
            422,
        )
    return NewPledge(
        name=req.name,
        email=req.email,
        address=req.address,
        amount=terms.price * shares,
        round=found.id,
        source=Source.ONLINE,
        display_name=req.display_name,
        tier=tier_id,
        shares=shares,
        request_key=key,
    )
