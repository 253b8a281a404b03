"""A pledge request from the page, checked against campaign.toml and the ledger."""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.config import Campaign
from fundraiser.figures import hold_start, holding, tier_places, unconfirmed
from fundraiser.ledger import bulk, schema
from fundraiser.people import email_problem, person_key
from fundraiser.pledges import LIVE, NewPledge, Source, Status

FIELDS = frozenset(
    {"tier", "shares", "name", "email", "address", "display_name", "round", "consent"}
)
LIMITS = {"name": 200, "email": 254, "address": 500, "display_name": 80}


class Invalid(Exception):
    """A request field is wrong; `status` is the HTTP answer (400, 409, 422, 429);
    `retry_after` (seconds) when waiting would help."""

    def __init__(
        self, field: str, message: str, status: int = 400, retry_after: int | None = None
    ) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status
        self.retry_after = retry_after


class HeldPlaces(Exception):
    """The tier's last places are held by card forms whose hold has ended: they
    count as free, but are still open at Stripe. Close them (oldest first), then
    ask again; `pledge_ids` are those pledges."""

    def __init__(self, tier: str, pledge_ids: list[int]) -> None:
        super().__init__(f"tier {tier}: places held by pledges {pledge_ids}")
        self.pledge_ids = pledge_ids


def _is_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


def unreadable_field(data: Any) -> str | None:
    """Where parsed JSON holds text no database or page can take (a lone UTF-16
    surrogate, which JSON's \\uXXXX escapes can carry): the top-level field, or "body".

    Walked without recursion: the parser already accepted the nesting.
    """
    stack: list[tuple[str, Any]] = []
    if isinstance(data, dict):
        for key, value in data.items():
            if _is_surrogate(str(key)):
                return "body"
            stack.append((str(key), value))
    else:
        stack.append(("body", data))
    while stack:
        field, value = stack.pop()
        if isinstance(value, str):
            if _is_surrogate(value):
                return field
        elif isinstance(value, dict):
            for key, item in value.items():
                if _is_surrogate(str(key)):
                    return field
                stack.append((field, item))
        elif isinstance(value, list):
            stack.extend((field, item) for item in value)
    return None


def text_field(data: dict[str, Any], name: str, *, required: bool) -> str | None:
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
    name = text_field(data, "name", required=True)
    email = text_field(data, "email", required=True)
    address = text_field(data, "address", required=True)
    display = text_field(data, "display_name", required=False)
    round_id = data.get("round")
    if round_id is not None and not isinstance(round_id, str):
        raise Invalid("round", "must be a round id")
    if data.get("consent") is not True:
        raise Invalid("consent", "must be true: the backer has to agree to the terms")
    assert name and email and address
    problem = email_problem(email)
    if problem is not None:  # the same words as the CLI's: what is wrong, and the fix
        message = f"{problem.message}: {problem.fix}" if problem.fix else problem.message
        raise Invalid("email", message)
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


def lock_keys(req: Request) -> tuple[str, ...]:
    """What `check` reads and a new pledge changes, as Ledger.write's lock keys:
    the person's pledges (their limits, their Idempotency-Keys, which are scoped
    to them) and the tier's places. Two writers that share neither run side by side."""
    keys = [f"person:{person_key(req.email)}"]
    if req.tier is not None:
        keys.append(f"tier:{req.tier}")
    return tuple(keys)


def still_waiting(conn: Connection, ids: list[int]) -> int:
    """How many of these pledges still wait for their card (online, pending)."""
    return int(
        conn.execute(
            sa.select(sa.func.count()).where(schema.pledges.c.id.in_(ids), unconfirmed())
        ).scalar()
        or 0
    )


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _after(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%H:%M} UTC"


def check(
    campaign: Campaign,
    conn: Connection,
    req: Request,
    now: datetime,
    key: str | None,
    *,
    repeat: bool,
    hold: timedelta,
    per_email: int,
) -> NewPledge:
    """The pledge to record, or Invalid naming the field (inside the write transaction).

    `repeat`: the request made a pledge before (it keeps its place). `hold` is how
    long a pledge without a saved card holds a limited tier's place; `per_email`
    how many such pledges one email may have waiting at once.
    """
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
    since = hold_start(now, hold)
    # The person's pledges, read once for both of their limits (one round trip).
    mine = bulk.fetch(conn, _PERSONS_PLEDGES, (person_key(req.email),))
    if not repeat:
        _check_waiting(
            [
                created
                for status, source, created, _, _ in mine
                if _holds(status, source, created, since)
            ],
            now,
            hold,
            per_email,
        )
    if req.tier is not None:
        tier = campaign.tier(req.tier)
        if tier is None:
            raise Invalid("tier", f"is not one of {', '.join(t.id for t in campaign.tiers)}")
        shares, tier_id = tier.shares, tier.id
        if tier.limit is not None and not repeat:  # a repeat has its place already
            _check_place(conn, tier.id, tier.limit, now, since, hold)
    else:
        assert req.shares is not None
        shares = req.shares
        if not terms.min_shares <= shares <= terms.max_shares:
            raise Invalid("shares", f"must be from {terms.min_shares} to {terms.max_shares}", 400)
    live = _LIVE_VALUES
    held = sum(
        int(amount)
        for status, _, _, amount, request_key in mine
        if status in live and (not key or request_key is None or request_key != key)
    )
    already = int(held or 0) // terms.price.amount
    if already + shares > terms.max_shares:
        # Anyone may type anyone's email: say the rule, never how much they pledged.
        field = "tier" if req.tier is not None else "shares"
        raise Invalid(
            field,
            f"no one may hold more than {terms.max_shares} shares, and this email "
            "already holds or has pledged shares: choose fewer shares, or write to the "
            "co-op if you think this is wrong",
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


#: A person's pledges, as `check` needs them: their two limits in one round trip.
_PERSONS_PLEDGES = (
    "SELECT status, source, created_at, amount, request_key FROM pledges WHERE person_key = ?"
)
_LIVE_VALUES = frozenset(s.value for s in LIVE)


def _holds(status: str, source: str, created: Any, since: str) -> bool:
    """figures.holding, for a row read: unconfirmed, and made after `since`."""
    return source == Source.ONLINE.value and status == Status.PENDING.value and str(created) > since


def check_waiting(
    conn: Connection, req: Request, now: datetime, since: str, hold: timedelta, limit: int
) -> None:
    """At most `limit` pledges waiting for their card per email (within their hold)."""
    p = schema.pledges.c
    stamps = [
        str(v)
        for v in conn.execute(
            sa.select(p.created_at).where(p.person_key == person_key(req.email), holding(since))
        ).scalars()
    ]
    _check_waiting(stamps, now, hold, limit)


def _check_waiting(stamps: list[str], now: datetime, hold: timedelta, limit: int) -> None:
    stamps = sorted(stamps)
    if len(stamps) >= limit:
        retry = _moment(stamps[len(stamps) - limit]) + hold
        raise Invalid(
            "email",
            f"this email already has {limit} pledges waiting for their card, the most at "
            f"a time: complete or cancel one, or try again after {_after(retry)}",
            429,
            retry_after=_seconds_until(retry, now),
        )


def _seconds_until(moment: datetime, now: datetime) -> int:
    return max(1, math.ceil((moment - now).total_seconds()))


def _check_place(
    conn: Connection, tier: str, limit: int, now: datetime, since: str, hold: timedelta
) -> None:
    """A place is free if fewer than `limit` pledges take or hold one. One that is free
    only because a hold ended is still open at Stripe: HeldPlaces asks to close it."""
    taken, open_at_stripe = tier_places(conn, tier, since)
    if taken >= limit:
        p = schema.pledges.c
        first = conn.execute(
            sa.select(sa.func.min(p.created_at)).where(p.tier == tier, holding(since))
        ).scalar()
        if first is None:
            raise Invalid("tier", "has no places left", 409)
        free_at = _moment(str(first)) + hold
        raise Invalid(
            "tier",
            "has no places left: a place held by a card form still being filled in "
            f"may come free after {_after(free_at)}",
            409,
            retry_after=_seconds_until(free_at, now),
        )
    if open_at_stripe >= limit:
        p = schema.pledges.c
        ended = conn.execute(
            sa.select(p.id)
            .where(p.tier == tier, unconfirmed(), p.created_at <= since)
            .order_by(p.created_at, p.id)
        ).scalars()
        raise HeldPlaces(tier, [int(i) for i in ended])
