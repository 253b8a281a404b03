"""Joining on the site: a join (or a member's top-up) checked against the rules,
recorded beside its pledge, and its fee begun once the member is admitted.

A join is an online pledge made after the campaign: the share payment makes it
an application (admission.gather), admitted at once when the rules say
admission is automatic, else by the board. What the pledge row does not carry
is kept in `joins`: the fee rate chosen, how it is paid (card, or SEPA Direct
Debit in euros), the SEPA mandate, and the fee subscription started for it.
A top-up is the same for a member named by their signed top-up link: no fee,
no new-member minimum, up to the cap.

The free rate has no Stripe subscription: it takes one of the free places the
supporters' surplus funds (fees.places), and is refused when none is left. No
Stripe here: fundraiser.payments.joining makes the payment and the subscription.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import register
from fundraiser.config import Campaign, Membership, Rate
from fundraiser.errors import UserInputError
from fundraiser.issuing import founding_cutoff
from fundraiser.ledger import Tx, schema
from fundraiser.membership import admission, fees
from fundraiser.people import person_key
from fundraiser.pledges import LIVE, NewPledge, Source, Status


class Kind(enum.StrEnum):
    JOIN = "join"
    TOP_UP = "top-up"


class Method(enum.StrEnum):
    CARD = "card"
    SEPA = "sepa_debit"  # SEPA Direct Debit: euros only


class Refused(UserInputError):
    """A join the rules refuse: `field` names what to change; `status` the HTTP answer."""

    def __init__(self, field: str, message: str, status: int = 422) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message
        self.status = status


@dataclass(frozen=True)
class JoinRequest:
    """What the join page sends, its shape already checked (people's text trimmed)."""

    shares: int
    method: Method
    rate: Rate | None = None  # None for a top-up, or when membership has no fee
    name: str = ""
    email: str = ""
    address: str = ""
    display_name: str | None = None
    top_up: int | None = None  # the member number a top-up link names


@dataclass(frozen=True)
class Choice:
    """What `record` keeps beside the pledge."""

    kind: Kind
    method: Method
    rate: Rate | None
    member_number: int | None


def membership_open(campaign: Campaign) -> Membership:
    found = campaign.membership
    if found is None or not found.open:
        raise Refused("body", "the co-op is not taking new members online just now", 409)
    return found


def today_of(campaign: Campaign, moment: datetime | str) -> str:
    """The day in the campaign's time zone (register dates), from a moment or a stamp."""
    when = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return when.astimezone(ZoneInfo(campaign.campaign.timezone)).date().isoformat()


def join_round(campaign: Campaign) -> str:
    """The round a join's pledge names: the one that closed last (pledges need one)."""
    return max(campaign.rounds, key=lambda r: r.closes).id


def _pending_shares(conn: Connection, key: str, cutoff: str, request_key: str | None) -> int:
    """Shares this person has paid for or is paying for since the campaign, not issued yet."""
    p = schema.pledges.c
    query = sa.select(sa.func.coalesce(sa.func.sum(p.shares), 0)).where(
        p.person_key == key,
        p.status.in_([s.value for s in LIVE]),
        p.allotted_at.is_(None),
        p.created_at >= cutoff,
    )
    if request_key:
        query = query.where(sa.or_(p.request_key.is_(None), p.request_key != request_key))
    return int(conn.execute(query).scalar() or 0)


def free_places_left(conn: Connection, campaign: Campaign, today: date) -> int:
    """Free places funded and not taken, less joins on the free rate still being paid."""
    membership = campaign.membership
    if membership is None or membership.fee is None:
        return 0
    found = fees.places(conn, membership.fee, today=today, grace_days=membership.grace_days)
    j, p = schema.joins.c, schema.pledges.c
    waiting = conn.execute(
        sa.select(sa.func.count())
        .select_from(schema.joins.join(schema.pledges, p.id == j.pledge_id))
        .where(
            j.rate == Rate.FREE.value,
            j.fee_subscription_id.is_(None),
            p.status.in_([s.value for s in LIVE]),
        )
    ).scalar()
    return max(found.funded - found.taken - int(waiting or 0), 0)


def check(
    campaign: Campaign, conn: Connection, req: JoinRequest, now: datetime, key: str | None
) -> tuple[NewPledge, Choice]:
    """The pledge to record for this join and what to keep beside it, or Refused."""
    membership = membership_open(campaign)
    if now < campaign.campaign.deadline:
        raise Refused(
            "body",
            "the founding offer is still open: pledge for shares on the pledge page "
            "until the campaign closes",
            409,
        )
    cutoff = founding_cutoff(campaign)
    assert cutoff is not None
    terms = campaign.shares
    if req.method is Method.SEPA and campaign.currency != "EUR":
        raise Refused("method", "SEPA Direct Debit is for euros only: pay by card", 400)
    if req.top_up is not None:
        return _top_up(campaign, conn, req, cutoff, key)
    if not membership.min_shares_to_join <= req.shares <= terms.max_shares:
        raise Refused(
            "shares",
            f"must be from {membership.min_shares_to_join} to {terms.max_shares} for a new member",
            400,
        )
    rate = _rate(campaign, conn, membership, req.rate, now)
    whose = person_key(req.email)
    held = register.held_by(conn, whose) or 0
    if held + _pending_shares(conn, whose, cutoff, key) + req.shares > terms.max_shares:
        # Anyone may type anyone's email: say the rule, never what they hold.
        raise Refused(
            "shares",
            f"no one may hold more than {terms.max_shares} shares, and this email already "
            "holds or is paying for shares: choose fewer shares, or write to the co-op if "
            "you think this is wrong",
        )
    pledge = NewPledge(
        name=req.name,
        email=req.email,
        address=req.address,
        amount=terms.price * req.shares,
        round=join_round(campaign),
        source=Source.ONLINE,
        display_name=req.display_name,
        shares=req.shares,
        request_key=key,
    )
    return pledge, Choice(Kind.JOIN, req.method, rate, None)


def _rate(
    campaign: Campaign,
    conn: Connection,
    membership: Membership,
    rate: Rate | None,
    now: datetime,
) -> Rate | None:
    fee = membership.fee
    if fee is None:
        if rate is not None:
            raise Refused("rate", "membership here has no fee: send no rate", 400)
        return None
    offered = fee.rates()
    if rate is None or rate not in offered:
        raise Refused("rate", f"must be one of {', '.join(r.value for r in offered)}", 400)
    if rate is Rate.FREE:
        today = date.fromisoformat(today_of(campaign, now))
        if free_places_left(conn, campaign, today) <= 0:
            raise Refused(
                "rate",
                "every free place the supporters fund is taken just now: choose the "
                "reduced rate, or write to the co-op and ask to be told when one comes free",
                409,
            )
    return rate


def _top_up(
    campaign: Campaign, conn: Connection, req: JoinRequest, cutoff: str, key: str | None
) -> tuple[NewPledge, Choice]:
    assert req.top_up is not None
    member = conn.execute(
        sa.select(schema.members).where(schema.members.c.number == req.top_up)
    ).first()
    if member is None or member.ceased_on is not None:
        raise Refused("top_up", "this link is for a membership that has ended", 410)
    if req.rate is not None:
        raise Refused("rate", "a top-up buys shares only: the fee stays as it is", 400)
    held = register.holding(conn, int(member.number))[0]
    most = campaign.shares.max_shares - held - _pending_shares(conn, member.person_key, cutoff, key)
    if most <= 0:
        raise Refused(
            "shares", f"you hold the most anyone may ({campaign.shares.max_shares} shares)"
        )
    if not 1 <= req.shares <= most:
        raise Refused(
            "shares",
            f"must be from 1 to {most}: no one may hold more than "
            f"{campaign.shares.max_shares} shares",
            400,
        )
    pledge = NewPledge(
        name=member.name,
        email=member.email or "",
        address=member.address,
        amount=campaign.shares.price * req.shares,
        round=join_round(campaign),
        source=Source.ONLINE,
        shares=req.shares,
        request_key=key,
    )
    return pledge, Choice(Kind.TOP_UP, req.method, None, int(member.number))


@dataclass(frozen=True)
class TopUpTerms:
    """What a top-up link's page shows: whose, what they hold, how many more they may buy."""

    member_number: int
    held: int
    most: int

    def as_json(self) -> dict[str, Any]:
        return {"member_number": self.member_number, "held": self.held, "most": self.most}


def top_up_terms(conn: Connection, campaign: Campaign, number: int) -> TopUpTerms:
    cutoff = founding_cutoff(campaign) or ""
    member = conn.execute(
        sa.select(schema.members).where(schema.members.c.number == number)
    ).first()
    if member is None or member.ceased_on is not None:
        raise Refused("top_up", "this link is for a membership that has ended", 410)
    held = register.holding(conn, number)[0]
    pending = _pending_shares(conn, member.person_key, cutoff, None)
    return TopUpTerms(number, held, max(campaign.shares.max_shares - held - pending, 0))


def record(tx: Tx, pledge_id: int, choice: Choice) -> None:
    """Keep the join's choices beside its pledge (in the pledge's own write)."""
    tx.insert(
        schema.joins,
        ("pledge_id", "kind", "member_number", "rate", "method"),
        [
            (
                pledge_id,
                choice.kind.value,
                choice.member_number,
                None if choice.rate is None else choice.rate.value,
                choice.method.value,
            )
        ],
        {"created_at": tx.now, "updated_at": tx.now},
    )
    tx.record(
        "join.new",
        f"pledge:{pledge_id}",
        {
            "pledge": pledge_id,
            "kind": choice.kind.value,
            "rate": None if choice.rate is None else choice.rate.value,
            "method": choice.method.value,
        },
    )


def join_of(conn: Connection, pledge_id: int) -> Any:
    """The joins row for this pledge, or None when it was not made on the join page."""
    return conn.execute(
        sa.select(schema.joins).where(schema.joins.c.pledge_id == pledge_id)
    ).first()


def admitted(conn: Connection) -> set[int]:
    """Member numbers admitted from joins on the site (reports count what a step added)."""
    j, a = schema.joins.c, schema.applications.c
    return set(
        conn.execute(
            sa.select(a.member_number)
            .select_from(schema.joins.join(schema.applications, a.pledge_id == j.pledge_id))
            .where(j.kind == Kind.JOIN.value, a.status == admission.AppStatus.ADMITTED.value)
        ).scalars()
    )


def record_mandate(tx: Tx, join_id: int, mandate: str) -> None:
    """Keep the SEPA mandate the payment was made under (once)."""
    known = tx.conn.execute(
        sa.select(schema.joins.c.mandate).where(schema.joins.c.id == join_id)
    ).scalar()
    if known == mandate:
        return
    tx.update(schema.joins, {"id": join_id}, mandate=mandate, updated_at=tx.now)
    tx.record("join.mandate", f"join:{join_id}", {"join": join_id})


@dataclass(frozen=True)
class FeeToStart:
    """An admitted join whose fee has not begun: what starting it at Stripe needs."""

    join_id: int
    pledge_id: int
    member_number: int
    rate: Rate
    method: Method
    customer: str | None
    payment_method: str | None
    intent: str | None


def fees_to_start(conn: Connection) -> list[FeeToStart]:
    """Admitted joins on a paid rate with no fee subscription yet, oldest first."""
    j, a, p = schema.joins.c, schema.applications.c, schema.pledges.c
    rows = conn.execute(
        sa.select(
            j.id,
            j.pledge_id,
            a.member_number,
            j.rate,
            j.method,
            p.stripe_customer,
            p.stripe_payment_method,
            p.stripe_intent,
        )
        .select_from(
            schema.joins.join(schema.applications, a.pledge_id == j.pledge_id).join(
                schema.pledges, p.id == j.pledge_id
            )
        )
        .where(
            j.kind == Kind.JOIN.value,
            j.rate.is_not(None),
            j.rate != Rate.FREE.value,
            j.fee_subscription_id.is_(None),
            a.status == admission.AppStatus.ADMITTED.value,
            a.member_number.is_not(None),
            p.status == Status.PAID.value,
        )
        .order_by(j.id)
    ).all()
    return [
        FeeToStart(
            int(r.id),
            int(r.pledge_id),
            int(r.member_number),
            Rate(r.rate),
            Method(r.method),
            r.stripe_customer,
            r.stripe_payment_method,
            r.stripe_intent,
        )
        for r in rows
    ]


def fee_started(
    tx: Tx,
    campaign: Campaign,
    join_id: int,
    member_number: int,
    rate: Rate,
    *,
    today: str,
    stripe_subscription: str | None = None,
    stripe_customer: str | None = None,
) -> int:
    """Record the fee a join began (once: a join already linked keeps its subscription)."""
    membership = campaign.membership
    assert membership is not None and membership.fee is not None
    found = tx.conn.execute(
        sa.select(schema.joins.c.fee_subscription_id).where(schema.joins.c.id == join_id)
    ).scalar()
    if found is not None:
        return int(found)
    amount = membership.fee.rates()[rate]
    sub_id = fees.start(
        tx,
        member_number=member_number,
        rate=rate,
        amount=amount,
        interval=membership.fee.interval,
        started_on=today,
        stripe_subscription=stripe_subscription,
        stripe_customer=stripe_customer,
    )
    tx.update(schema.joins, {"id": join_id}, fee_subscription_id=sub_id, updated_at=tx.now)
    tx.record("join.fee", f"join:{join_id}", {"join": join_id, "subscription": sub_id})
    return sub_id


def after_payment(tx: Tx, campaign: Campaign) -> admission.Admitted | None:
    """In the write that recorded a payment: applications made, members admitted as the
    rules allow (top-ups always), and the free rate's places begun. None: no [membership]."""
    if campaign.membership is None:
        return None
    today = today_of(campaign, tx.now)
    admitted = admission.settle_in(tx, campaign, today=today)
    j, a = schema.joins.c, schema.applications.c
    free = tx.conn.execute(
        sa.select(j.id, a.member_number)
        .select_from(schema.joins.join(schema.applications, a.pledge_id == j.pledge_id))
        .where(
            j.rate == Rate.FREE.value,
            j.fee_subscription_id.is_(None),
            a.status == admission.AppStatus.ADMITTED.value,
            a.member_number.is_not(None),
        )
        .order_by(j.id)
    ).all()
    for join_id, number in free:
        fee_started(tx, campaign, int(join_id), int(number), Rate.FREE, today=today)
    return admitted
