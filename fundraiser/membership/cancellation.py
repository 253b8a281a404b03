"""Cancelling the shares paid by a pledge that was later refunded.

Shares stand while their money is held. When a pledge's share money goes back
(refunded in full, or in part beyond its remainders, or a dispute lost), the
shares it paid for are taken off by a cancel entry (fundraiser.register).
A disputed pledge's shares stand until the bank decides. Money of other
pledges left in a partly cancelled entry (less than one share) becomes a
remainder due for refund: every minor unit still held is in a standing share
or listed to go back (tests/test_members_cancel_property.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import register
from fundraiser.config import Campaign
from fundraiser.errors import NotFound, Refused
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.money import Money
from fundraiser.outbox import Kind, MailStatus
from fundraiser.pledges import Status
from fundraiser.remainders import RemainderStatus

CANCEL_REASON = "cancel"  # remainders: money left over after a cancellation


@dataclass
class Cancellation:
    pledge_id: int
    reason: str
    entries: list[dict[str, Any]] = field(default_factory=list)  # cancel entries made
    refunds: list[dict[str, Any]] = field(default_factory=list)  # leftover money now due
    settled_remainders: list[int] = field(default_factory=list)  # paid by the full refund
    ceased: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def shares(self) -> int:
        return sum(int(e["shares"]) for e in self.entries)

    def as_json(self) -> dict[str, Any]:
        return {
            "pledge_id": self.pledge_id,
            "reason": self.reason,
            "shares": self.shares,
            "entries": self.entries,
            "refunds": self.refunds,
            "settled_remainders": self.settled_remainders,
            "ceased": self.ceased,
            "warnings": self.warnings,
        }


def _lost(row: Any, all_remainders: int) -> int | None:
    """How much of a pledge's share money is gone; None when all of it is.

    A refunded pledge lost everything. A paid pledge refunded in part lost what
    was refunded beyond its remainders (which were never share money).
    """
    if row.status == Status.REFUNDED.value:
        return None
    return max(0, int(row.refunded_amount) - all_remainders)


def cancel_for_pledge(
    tx: Tx,
    pledge_id: int,
    reason: str,
    *,
    today: str | None = None,
    min_shares: int | None = None,
) -> Cancellation:
    """Cancel the shares a refunded pledge paid for, in the caller's transaction.

    Idempotent: the cancellation is worked out from scratch each time, so a
    second call for the same pledge adds nothing. Money of other pledges left
    over in a partly cancelled entry (less than one share) becomes a remainder
    due for refund, so no register entry stands without its refund.
    """
    today = today or tx.now[:10]
    result = Cancellation(pledge_id, reason)
    pledge = tx.execute(sa.select(schema.pledges).where(schema.pledges.c.id == pledge_id)).first()
    if pledge is None:
        raise NotFound(f"pledge {pledge_id} does not exist: see `fundraiser pledges list`")
    if pledge.status == Status.DISPUTED.value:
        raise Refused(
            f"pledge {pledge_id} is disputed: its shares stand until the bank decides. "
            "If the dispute is lost the pledge becomes refunded; cancel its shares then"
        )
    rem_total = _remainder_totals(tx.conn, [pledge_id]).get(pledge_id, 0)
    if pledge.status != Status.REFUNDED.value and not _lost(pledge, rem_total):
        raise Refused(
            f"pledge {pledge_id} is {pledge.status} and none of its share money was refunded: "
            "its shares stand. Shares are cancelled only for a refunded pledge"
        )
    entry_ids = sorted(
        set(
            tx.execute(
                sa.select(schema.allotments.c.entry_id).where(
                    schema.allotments.c.pledge_id == pledge_id
                )
            ).scalars()
        )
    )
    if not entry_ids and pledge.allotted_at is None:
        raise Refused(f"pledge {pledge_id} paid for no shares: there is nothing to cancel")
    for entry_id in entry_ids:
        _cancel_entry(tx, entry_id, pledge_id, reason, today, min_shares, result)
    if pledge.status == Status.REFUNDED.value:
        # The full refund returned the remainders too: they must not be paid twice.
        settled = tx.execute(
            sa.select(schema.remainders.c.id).where(
                schema.remainders.c.pledge_id == pledge_id,
                schema.remainders.c.status == RemainderStatus.DUE.value,
            )
        ).scalars()
        result.settled_remainders = sorted(settled)
        if result.settled_remainders:
            tx.update(
                schema.remainders,
                {"id": result.settled_remainders},
                status=RemainderStatus.REFUNDED.value,
                refunded_at=tx.now,
                refund_reference=f"included in the full refund of pledge {pledge_id}",
            )
    resolved = tx.update(
        schema.register_flags, {"pledge_id": pledge_id, "resolved_at": None}, resolved_at=tx.now
    )
    if result.entries or result.settled_remainders or result.refunds or resolved:
        tx.record(
            "register.cancel",
            f"pledge:{pledge_id}",
            {
                "pledge": pledge_id,
                "reason": reason,
                "entries": [[e["entry_id"], e["from_entry"], e["shares"]] for e in result.entries],
                "refunds": [[r["pledge_id"], r["amount"]] for r in result.refunds],
                "settled": result.settled_remainders,
                "ceased": result.ceased,
            },
        )
    return result


def _remainder_totals(
    conn: Connection, pledge_ids: list[int], reason: str | None = None
) -> dict[int, int]:
    query = (
        sa.select(schema.remainders.c.pledge_id, sa.func.sum(schema.remainders.c.amount))
        .where(schema.remainders.c.pledge_id.in_(pledge_ids))
        .group_by(schema.remainders.c.pledge_id)
    )
    if reason is not None:
        query = query.where(schema.remainders.c.reason == reason)
    return {int(p): int(a) for p, a in conn.execute(query)}


def _cancel_entry(
    tx: Tx,
    entry_id: int,
    pledge_id: int,
    reason: str,
    today: str,
    min_shares: int | None,
    result: Cancellation,
) -> None:
    entry = tx.execute(
        sa.select(schema.register_entries).where(schema.register_entries.c.id == entry_id)
    ).one()
    link_rows = tx.execute(
        sa.select(schema.allotments.c.pledge_id, schema.allotments.c.amount).where(
            schema.allotments.c.entry_id == entry_id
        )
    ).all()
    links = {int(r.pledge_id): int(r.amount) for r in link_rows}
    rows = {
        r.id: r
        for r in tx.execute(sa.select(schema.pledges).where(schema.pledges.c.id.in_(list(links))))
    }
    all_rem = _remainder_totals(tx.conn, list(links))
    lost: dict[int, int] = {}
    for pid, amount in links.items():
        gone = _lost(rows[pid], all_rem.get(pid, 0))
        lost[pid] = amount if gone is None else min(amount, gone)
    price = int(entry.amount) // int(entry.shares)
    backing = sum(links.values()) - sum(lost.values())
    backed = min(int(entry.shares), max(backing, 0) // price)
    number = int(entry.member_number)
    already = register.cancelled_shares(tx.conn, number, list(links))
    to_cancel = int(entry.shares) - backed - already
    if to_cancel > 0:
        held, _ = register.holding(tx.conn, number)
        if to_cancel > held:
            result.warnings.append(
                f"member {number} holds {held} share(s), fewer than the {to_cancel} this refund "
                f"paid for (they withdrew some already): only {held} cancelled. The value of "
                f"{to_cancel - held} share(s) was repaid twice; the board should recover it"
            )
            to_cancel = held
    if to_cancel > 0:
        taken = register.enter_cancellation(
            tx,
            number,
            to_cancel,
            Money(to_cancel * price, entry.currency),
            today=today,
            pledge_id=pledge_id,
            note=(
                f"pledge {pledge_id} {reason}; from certificate "
                f"{entry.certificate_number or entry.id}"
            ),
        )
        result.entries.append(
            {
                "entry_id": taken.entry_id,
                "from_entry": entry_id,
                "member": number,
                "shares": to_cancel,
                "amount": to_cancel * price,
                "currency": entry.currency,
                "balance_certificate": taken.balance_certificate,
            }
        )
        held_after = taken.holding_after
        if taken.ceased:
            # Not a member any more: a welcome still waiting would be wrong.
            waiting = tx.execute(
                sa.select(schema.outbox.c.id).where(
                    schema.outbox.c.member_number == number,
                    schema.outbox.c.kind == Kind.WELCOME.value,
                    schema.outbox.c.status == MailStatus.QUEUED.value,
                )
            ).scalars()
            # By id: which mail is still queued is the sender's business, not the journal's.
            tx.delete(schema.outbox, {"id": list(waiting)})
            result.ceased.append(number)
        elif min_shares is not None and held_after < min_shares:
            result.warnings.append(
                f"member {number} now holds {held_after} share(s), below the minimum of "
                f"{min_shares}: ask them to top up, or withdraw the rest"
            )
    # Money of surviving pledges that no longer makes a whole share is owed back.
    excess = max(backing, 0) - backed * price
    # Leftovers already listed on pledges still standing; one refunded since
    # had its leftover returned with it (settled in cancel_for_pledge).
    standing = [pid for pid in links if rows[pid].status != Status.REFUNDED.value]
    listed = _remainder_totals(tx.conn, standing, CANCEL_REASON) if standing else {}
    owed = excess - sum(listed.values())
    for pid in sorted(links, reverse=True):  # the newest money goes back first
        if owed <= 0:
            break
        if pid not in standing:
            continue
        room = links[pid] - lost[pid] - listed.get(pid, 0)
        take = min(room, owed)
        if take <= 0:
            continue
        person = rows[pid].person_key
        owe = {
            "pledge_id": pid,
            "person_key": person,
            "amount": take,
            "currency": entry.currency,
            "reason": CANCEL_REASON,
            "status": RemainderStatus.DUE.value,
            "created_at": tx.now,
        }
        tx.insert(schema.remainders, list(owe), [tuple(owe.values())])
        result.refunds.append({"pledge_id": pid, "amount": take, "currency": entry.currency})
        owed -= take
    if owed < 0:
        _reduce_listed(tx, standing, -owed, number, entry.currency, result)


def _reduce_listed(
    tx: Tx, standing: list[int], surplus: int, number: int, currency: str, result: Cancellation
) -> None:
    """Less is owed back than is listed: part of it went back with the refunded pledge.

    Leftovers still due are cut (newest first); one already paid out cannot
    be, and the board is told to recover it.
    """
    due = tx.execute(
        sa.select(schema.remainders.c.id, schema.remainders.c.pledge_id, schema.remainders.c.amount)
        .where(
            schema.remainders.c.pledge_id.in_(standing),
            schema.remainders.c.reason == CANCEL_REASON,
            schema.remainders.c.status == RemainderStatus.DUE.value,
        )
        .order_by(schema.remainders.c.id.desc())
    ).all()
    for rem in due:
        if surplus <= 0:
            break
        cut = min(int(rem.amount), surplus)
        if cut == int(rem.amount):
            tx.delete(schema.remainders, {"id": rem.id})
        else:
            tx.update(schema.remainders, {"id": rem.id}, amount=int(rem.amount) - cut)
        result.refunds.append({"pledge_id": rem.pledge_id, "amount": -cut, "currency": currency})
        surplus -= cut
    if surplus > 0:
        result.warnings.append(
            f"member {number} was refunded {Money(surplus, currency)} more than the co-op "
            "now holds for them (a leftover was paid out before this refund): recover it"
        )


def open_flags(conn: Connection) -> list[dict[str, Any]]:
    """Shares flagged by the payments code: issued from a pledge later refunded or disputed."""
    query = (
        sa.select(
            schema.register_flags.c.pledge_id,
            schema.register_flags.c.entry_id,
            schema.register_flags.c.reason,
            schema.register_flags.c.created_at,
            schema.register_entries.c.member_number,
            schema.register_entries.c.shares,
            schema.pledges.c.status,
        )
        .select_from(
            schema.register_flags.join(
                schema.register_entries,
                schema.register_entries.c.id == schema.register_flags.c.entry_id,
            ).join(schema.pledges, schema.pledges.c.id == schema.register_flags.c.pledge_id)
        )
        .where(schema.register_flags.c.resolved_at.is_(None))
        .order_by(schema.register_flags.c.id)
    )
    return [
        {
            "pledge_id": r.pledge_id,
            "entry_id": r.entry_id,
            "member": r.member_number,
            "shares": r.shares,
            "reason": r.reason,
            "pledge_status": r.status,
            "flagged_at": r.created_at,
        }
        for r in conn.execute(query)
    ]


class _Rollback(Exception):
    def __init__(self, value: Cancellation) -> None:
        self.value = value


def cancel_shares(
    ledger: Ledger,
    campaign: Campaign,
    pledge_id: int,
    *,
    reason: str = "refunded",
    today: str,
    now: str | None = None,
    dry_run: bool = False,
) -> Cancellation:
    """The organizer's command: cancel a refunded pledge's shares (or show what would go)."""
    try:
        with ledger.write(now) as tx:
            result = cancel_for_pledge(
                tx, pledge_id, reason, today=today, min_shares=campaign.shares.min_shares
            )
            if dry_run:
                raise _Rollback(result)  # leaving by exception rolls the transaction back
            return result
    except _Rollback as done:
        return done.value
