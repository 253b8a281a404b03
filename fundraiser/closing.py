"""The close of an all-or-nothing campaign: its decision, and what waits for it.

The share offer of an all-or-nothing campaign promises that no shares are
issued unless the campaign closes with its goal met. So the close is a fact in
the ledger, recorded once (`fundraiser collect` after the deadline): "charge"
(the goal was met) or "release" (it was missed). Until "charge" is recorded,
`may_issue` gives the reason shares cannot be issued, naming the goal, the
money secured and the deadline; after "release", never. A keep-it-all
campaign may issue paid pledges at any time.

Closing needs Stripe only for what is at Stripe (cards to charge, forms to
close). What is not (the decision, releasing pledges, owing bank payments
back) is here, so a campaign paid only by bank transfer closes without Stripe.
A missed goal leaves every bank payment owed back in full, as a remainder
(`remainders.GOAL_MISSED`), which `refunds list` shows and the treasurer pays.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import outbox
from fundraiser.config import Campaign, Mode
from fundraiser.ledger import Tx, schema
from fundraiser.money import Money
from fundraiser.pledges import BY_HAND, LIVE, TRANSITIONS, Source, Status, transition_row
from fundraiser.remainders import GOAL_MISSED, RemainderStatus

DECISION_KEY = "collect.decision"
CHARGE = "charge"  # the goal was met: cards are charged, shares may be issued
RELEASE = "release"  # the goal was missed: nothing charged, bank payments owed back


def decision(conn: Connection) -> str | None:
    """The close recorded for this campaign, if any."""
    value = conn.execute(
        sa.select(schema.state.c.value).where(schema.state.c.key == DECISION_KEY)
    ).scalar()
    return None if value is None else str(value)


def decide(tx: Tx, value: str) -> bool:
    """Record the close once; False when it was recorded before (by any run)."""
    if decision(tx.conn) is not None:
        return False
    tx.execute(schema.state.insert().values(key=DECISION_KEY, value=value, updated_at=tx.now))
    tx.record("collect.decide", "campaign", {"decision": value})
    return True


def secured(conn: Connection, currency: str) -> Money:
    """Money that can still be collected or has been: live pledges with a card or paid.

    Online pledges still pending never saved a card and cannot be charged, so
    they do not count towards the goal at the close.
    """
    total = conn.execute(
        sa.select(
            sa.func.coalesce(
                sa.func.sum(schema.pledges.c.amount - schema.pledges.c.refunded_amount), 0
            )
        ).where(
            schema.pledges.c.status.in_([s.value for s in LIVE]),
            sa.not_(
                sa.and_(
                    schema.pledges.c.source == Source.ONLINE.value,
                    schema.pledges.c.status == Status.PENDING.value,
                )
            ),
        )
    ).scalar()
    return Money(int(total or 0), currency)


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def may_issue(conn: Connection, campaign: Campaign, now: datetime) -> str | None:
    """None when shares may be issued now; else why not, in words for the organizer."""
    settings = campaign.campaign
    if settings.mode is not Mode.ALL_OR_NOTHING:
        return None
    made = decision(conn)
    if made == CHARGE:
        return None
    goal = settings.goal.format()
    got = secured(conn, campaign.currency).format()
    deadline = _when(settings.deadline)
    if made == RELEASE:
        return (
            f"the campaign closed on {deadline} without reaching its goal of {goal} "
            f"({got} secured), so no shares are issued, as the share offer promised; "
            "return the money paid: see `fundraiser refunds list`"
        )
    if now < settings.deadline:
        return (
            f"this all-or-nothing campaign is open until {deadline}: shares are issued only "
            f"once it closes with its goal of {goal} met ({got} secured so far); after the "
            "deadline, run `fundraiser collect` to record the close, then issue"
        )
    return (
        f"the deadline ({deadline}) has passed but the close is not recorded: run "
        f"`fundraiser collect` first (goal {goal}, {got} secured), then issue"
    )


def _rows(tx: Tx, ids: list[int]) -> list[Any]:
    rows: list[Any] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows.extend(
            tx.execute(
                sa.select(schema.pledges)
                .where(schema.pledges.c.id.in_(chunk))
                .order_by(schema.pledges.c.id)
            )
        )
    return rows


def _tell(tx: Tx, row: Any, data: dict[str, Any]) -> None:
    # One key per pledge: a pledge owed money and released is told once.
    outbox.queue(
        tx,
        outbox.Kind.CAMPAIGN_FAILED,
        f"pledge-{row.id}-released",
        to_email=row.email,
        to_name=row.name,
        data=data,
        pledge_id=row.id,
    )


def _owed() -> list[sa.ColumnElement[bool]]:
    """Pledges paid by bank, in full or in part, not yet owed back for a missed goal."""
    already = sa.select(schema.remainders.c.pledge_id).where(
        schema.remainders.c.reason == GOAL_MISSED
    )
    return [
        schema.pledges.c.source.in_([s.value for s in BY_HAND]),
        schema.pledges.c.paid_amount > schema.pledges.c.refunded_amount,
        schema.pledges.c.status != Status.REFUNDED.value,
        schema.pledges.c.id.not_in(already),
    ]


def owed_back_count(conn: Connection) -> int:
    """How many bank payments a missed goal would owe back (what `owe_back` would do)."""
    count = sa.select(sa.func.count()).select_from(schema.pledges).where(*_owed())
    return int(conn.execute(count).scalar() or 0)


def owe_back(tx: Tx) -> int:
    """The goal was missed: every bank payment becomes a remainder owed back in full.

    Call it before `release` in the same write, so a part-paid pledge's one
    mail names what it paid. Once per pledge: a rerun owes nothing twice.
    """
    rows = list(tx.execute(sa.select(schema.pledges).where(*_owed()).order_by(schema.pledges.c.id)))
    if not rows:
        return 0
    columns = ("pledge_id", "person_key", "amount", "currency")
    owed = [
        (r.id, r.person_key, int(r.paid_amount) - int(r.refunded_amount), r.currency) for r in rows
    ]
    constants = {
        "reason": GOAL_MISSED,
        "status": RemainderStatus.DUE.value,
        "created_at": tx.now,
    }
    tx.insert(schema.remainders, columns, owed, constants)
    tx.record(
        "campaign.owe_back",
        "campaign",
        {"pledges": [r.id for r in rows], "amounts": [o[2] for o in owed]},
    )
    for r, (_, _, amount, currency) in zip(rows, owed, strict=True):
        _tell(
            tx,
            r,
            {
                "pledge_id": r.id,
                "amount": int(r.amount),
                "currency": currency,
                "owed_back": amount,
                "method": "bank",
            },
        )
    return len(rows)


def release(tx: Tx, ids: list[int]) -> int:
    """Release pledges not yet paid (nothing will be taken) and tell each backer."""
    released = 0
    for row in _rows(tx, ids):
        if Status.RELEASED not in TRANSITIONS[Status(row.status)]:
            continue  # settled meanwhile (a webhook, another run)
        transition_row(tx, row, Status.RELEASED, reason="the goal was not met: nothing charged")
        released += 1
        data = {"pledge_id": row.id, "amount": int(row.amount), "currency": row.currency}
        _tell(tx, row, data)
    return released
