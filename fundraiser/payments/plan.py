"""What the close of an all-or-nothing campaign will do, before it does it: charge or
release, which pledges, how much is secured, and whether anything is at Stripe.

`fundraiser collect --dry-run` prints this plan; `collect` carries it out
(fundraiser.payments.collect). The retry policy for failed charges (which
declines a retry can fix, how often, how long apart) is here too, since it
decides which pledges a `--retry` run charges again.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import closing
from fundraiser.config import Campaign, Mode
from fundraiser.errors import UserInputError
from fundraiser.ledger import Ledger, schema
from fundraiser.money import Money
from fundraiser.payments.events import AUTH_REQUIRED
from fundraiser.pledges import ENDED_UNPAID, UNSETTLED, Source, Status

#: Declines a retry cannot fix: only the backer (a new card) can.
HARD_DECLINES = frozenset(
    {
        AUTH_REQUIRED,
        "expired_card",
        "incorrect_number",
        "lost_card",
        "stolen_card",
        "pickup_card",
        "fraudulent",
        "do_not_honor",
    }
)
RETRY_AFTER = timedelta(hours=48)
MAX_ATTEMPTS = 4


def _ids(conn: Connection, statuses: Iterable[Status], **where: Any) -> list[int]:
    query = (
        sa.select(schema.pledges.c.id)
        .where(schema.pledges.c.status.in_([s.value for s in statuses]))
        .order_by(schema.pledges.c.id)
    )
    for column, value in where.items():
        query = query.where(schema.pledges.c[column] == value)
    return [int(v) for v in conn.execute(query).scalars()]


def _sum(conn: Connection, ids: list[int]) -> int:
    total = 0
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        total += int(
            conn.execute(
                sa.select(sa.func.coalesce(sa.func.sum(schema.pledges.c.amount), 0)).where(
                    schema.pledges.c.id.in_(chunk)
                )
            ).scalar()
            or 0
        )
    return total


@dataclass(frozen=True)
class Plan:
    decision: str  # "charge" or "release"
    decided_before: bool
    goal: Money
    secured: Money
    charge: list[int]  # pledges to charge now (authorized, or soft declines on --retry)
    resume: list[int]  # pledges left mid-charge by an earlier run
    lapse: list[int]  # failed pledges whose fix window has ended (--retry)
    release: list[int]
    total: Money  # of `charge` + `resume`
    waiting_fix: int  # failed pledges still inside their fix window
    never_saved: int  # online pledges whose card was never saved
    paid_offline: int  # bank transfers to return by hand if the goal was missed
    # Online pledges whose card form is still open: closed at the close, so a
    # form finished after the deadline cannot save a card (or take money).
    close: list[int] = field(default_factory=list)
    # Whether anything of this campaign is at Stripe (a card pledge not yet
    # settled, or a saved card or customer to remove): if not, the close needs no Stripe.
    at_stripe: bool = True

    def if_failing(self, per_cent: int) -> Money:
        """What is collected if `per_cent` of the money to charge fails."""
        return Money(self.total.amount * (100 - per_cent) // 100, self.total.currency)

    def as_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "goal": self.goal.amount,
            "secured": self.secured.amount,
            "currency": self.goal.currency,
            "goal_met": self.secured >= self.goal,
            "to_charge": len(self.charge) + len(self.resume),
            "resume": len(self.resume),
            "total": self.total.amount,
            "if_5_percent_fail": self.if_failing(5).amount,
            "if_10_percent_fail": self.if_failing(10).amount,
            "to_lapse": len(self.lapse),
            "to_release": len(self.release),
            "waiting_fix": self.waiting_fix,
            "never_saved": self.never_saved,
            "forms_to_close": len(self.close),
            "paid_offline": self.paid_offline,
        }


def plan(ledger: Ledger, campaign: Campaign, now: datetime, *, retry: bool = False) -> Plan:
    """What `collect` would do now; raises if the campaign cannot be collected."""
    settings = campaign.campaign
    if settings.mode is not Mode.ALL_OR_NOTHING:
        raise UserInputError(
            "this is a keep-it-all campaign: cards are charged when backers pledge, "
            "so there is nothing to collect"
        )
    if now < settings.deadline:
        raise UserInputError(
            f"the campaign is open until {settings.deadline.isoformat()}: "
            "collect after the deadline (FUNDRAISER_NOW rehearses a later date)"
        )
    currency = campaign.currency
    stamp = now.astimezone(UTC).isoformat()
    with ledger.read() as conn:
        decided = closing.decision(conn)
        secured = closing.secured(conn, currency)
        decision = decided or ("charge" if secured >= settings.goal else "release")
        resume = _ids(conn, [Status.PROCESSING])
        charge: list[int] = []
        lapse: list[int] = []
        release: list[int] = []
        waiting = 0
        if decision == "charge":
            charge = _ids(conn, [Status.AUTHORIZED])
            for row in conn.execute(
                sa.select(schema.pledges).where(
                    schema.pledges.c.status == Status.PAYMENT_FAILED.value
                )
            ):
                if row.fix_until and row.fix_until < stamp:
                    lapse.append(int(row.id))
                elif (
                    retry
                    and (row.failure_code or "") not in HARD_DECLINES
                    and int(row.attempts) < MAX_ATTEMPTS
                    and datetime.fromisoformat(row.updated_at) + RETRY_AFTER <= now
                ):
                    charge.append(int(row.id))
                else:
                    waiting += 1
            if not retry:
                lapse = []
        else:
            release = _ids(
                conn,
                UNSETTLED,
            )
            resume = []
        open_forms = _ids(conn, [Status.PENDING], source=Source.ONLINE)
        # Every bank payment a missed goal owes back, part payments too (closing.owe_back).
        paid_offline = closing.owed_back_count(conn)
        at_stripe = _at_stripe(conn)
        total = Money(_sum(conn, charge + resume), currency)
    return Plan(
        decision=decision,
        decided_before=decided is not None,
        goal=settings.goal,
        secured=secured,
        charge=sorted(charge),
        resume=resume,
        lapse=lapse,
        release=release,
        total=total,
        waiting_fix=waiting,
        never_saved=len(open_forms) if decision == "charge" else 0,
        paid_offline=paid_offline if decision == "release" else 0,
        close=open_forms,
        at_stripe=at_stripe,
    )


def _at_stripe(conn: Connection) -> bool:
    """Anything of this ledger's at Stripe that the close must act on."""
    online = schema.pledges.c.source == Source.ONLINE.value
    unsettled = schema.pledges.c.status.in_([s.value for s in UNSETTLED])
    kept = sa.and_(
        schema.pledges.c.status.in_([s.value for s in ENDED_UNPAID]),
        sa.or_(
            schema.pledges.c.stripe_payment_method.is_not(None),
            schema.pledges.c.stripe_customer.is_not(None),
        ),
    )
    found = conn.execute(
        sa.select(schema.pledges.c.id).where(online, sa.or_(unsettled, kept)).limit(1)
    ).first()
    return found is not None
