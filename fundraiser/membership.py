"""Members after admission: leaving, cancellation, the voter roll, data rights.

The register is append-only (fundraiser.register): a member leaves by a
withdrawal entry, and shares paid by a pledge that was later refunded are taken
off by a cancel entry. A member's `ceased_on` is set when their holding
reaches zero.

Data rights follow the law the co-op lives under. A backer who never became a
member can have their personal data erased: their pledges keep amounts and
dates for the accounts, with the person replaced by a placeholder. A member
cannot: a co-operative society must keep each member's name, postal address,
holding and dates in its register (Co-operative and Community Benefit
Societies Act 2014, s.30). For former members we keep the entry for
RETENTION_YEARS after they ceased, then allow erasure. The Act sets no period;
ten years follows the Companies Act 2006 s.121 rule for former members'
entries, a cautious reading the board can change here.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import register as register_mod
from fundraiser.config import Campaign
from fundraiser.errors import FundraiserError, NotFound, UserInputError
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.money import Money
from fundraiser.outbox import Kind, MailStatus
from fundraiser.people import person_key
from fundraiser.pledges import Status
from fundraiser.remainders import RemainderStatus

RETENTION_YEARS = 10
ERASED = "(erased)"
CANCEL_REASON = "cancel"  # remainders: money left over after a cancellation


class Refused(FundraiserError):
    """The law or the ledger's state forbids the change; the message says why (exit 1)."""


# -- holdings ------------------------------------------------------------------


def _signed(column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    return sa.case((schema.register_entries.c.kind == "issue", column), else_=-column)


def holding(conn: Connection, number: int) -> tuple[int, int]:
    """(shares, amount paid) held by a member now, from their entries."""
    shares, amount = conn.execute(
        sa.select(
            sa.func.coalesce(sa.func.sum(_signed(schema.register_entries.c.shares)), 0),
            sa.func.coalesce(sa.func.sum(_signed(schema.register_entries.c.amount)), 0),
        ).where(schema.register_entries.c.member_number == number)
    ).one()
    return int(shares), int(amount)


def get_member(conn: Connection, number: int) -> Any:
    row = conn.execute(sa.select(schema.members).where(schema.members.c.number == number)).first()
    if row is None:
        raise NotFound(f"member {number} does not exist: see `fundraiser members list`")
    return row


# -- leaving: withdrawal -------------------------------------------------------


@dataclass(frozen=True)
class Withdrawal:
    member: int
    entry_id: int | None  # None on a dry run
    shares: int
    amount: Money
    holding_after: int
    ceased: bool
    # The certificate for the shares left (the member's others are taken back).
    balance_certificate: int | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "member": self.member,
            "entry_id": self.entry_id,
            "shares": self.shares,
            "amount": self.amount.amount,
            "currency": self.amount.currency,
            "holding_after": self.holding_after,
            "ceased": self.ceased,
            "balance_certificate": self.balance_certificate,
        }


def _next_entry_id(tx: Tx) -> int:
    current = tx.execute(sa.select(sa.func.max(schema.register_entries.c.id))).scalar()
    return int(current or 0) + 1


def _balance_certificate(tx: Tx, holding_after: int) -> int | None:
    """The number for a certificate of the shares a member keeps after a reduction."""
    if holding_after <= 0:
        return None
    current = tx.execute(
        sa.select(sa.func.max(schema.register_entries.c.certificate_number))
    ).scalar()
    return int(current or 0) + 1


def withdraw(
    ledger: Ledger,
    campaign: Campaign,
    number: int,
    shares: int,
    *,
    today: str,
    now: str | None = None,
    note: str | None = None,
    dry_run: bool = False,
) -> Withdrawal:
    """A withdrawal entry for `shares` of a member's holding; ceased at zero."""
    if shares < 1:
        raise UserInputError(f"--shares must be at least 1, not {shares}")
    terms = campaign.shares
    with ledger.write(now) as tx:
        member = get_member(tx.conn, number)
        held, _ = holding(tx.conn, number)
        if member.ceased_on or held == 0:
            raise UserInputError(
                f"member {number} holds no shares"
                + (f" (ceased on {member.ceased_on})" if member.ceased_on else "")
                + ": there is nothing to withdraw"
            )
        if shares > held:
            raise UserInputError(
                f"--shares {shares} is more than member {number} holds ({held}): "
                f"withdraw at most {held}"
            )
        after = held - shares
        if 0 < after < terms.min_shares:
            stay = held - terms.min_shares
            keep = (
                f"or at most {stay} to stay a member" if stay > 0 else "a member cannot hold fewer"
            )
            raise UserInputError(
                f"--shares {shares} would leave member {number} with {after} share(s), "
                f"below the minimum holding of {terms.min_shares}: withdraw all {held} "
                f"shares to leave, {keep}"
            )
        amount = terms.price * shares
        if dry_run:
            return Withdrawal(number, None, shares, amount, after, after == 0)
        entry_id = _next_entry_id(tx)
        balance = _balance_certificate(tx, after)
        tx.execute(
            schema.register_entries.insert().values(
                id=entry_id,
                member_number=number,
                kind="withdraw",
                shares=shares,
                amount=amount.amount,
                currency=amount.currency,
                pledge_id=None,
                certificate_number=balance,
                entry_date=today,
                note=(note or "").strip() or None,
                created_at=tx.now,
            )
        )
        if after == 0:
            tx.execute(
                schema.members.update()
                .where(schema.members.c.number == number)
                .values(ceased_on=today)
            )
        tx.record(
            "register.withdraw",
            f"member:{number}",
            {
                "member": number,
                "entry": entry_id,
                "shares": shares,
                "amount": amount.amount,
                "ceased": after == 0,
                "balance_certificate": balance,
            },
        )
        return Withdrawal(number, entry_id, shares, amount, after, after == 0, balance)


# -- cancellation of shares paid by a pledge that was refunded -----------------


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
            tx.execute(
                schema.remainders.update()
                .where(schema.remainders.c.id.in_(result.settled_remainders))
                .values(
                    status=RemainderStatus.REFUNDED.value,
                    refunded_at=tx.now,
                    refund_reference=f"included in the full refund of pledge {pledge_id}",
                )
            )
    tx.execute(
        schema.register_flags.update()
        .where(
            schema.register_flags.c.pledge_id == pledge_id,
            schema.register_flags.c.resolved_at.is_(None),
        )
        .values(resolved_at=tx.now)
    )
    if result.entries or result.settled_remainders or result.refunds:
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
    already = int(
        tx.execute(
            sa.select(sa.func.coalesce(sa.func.sum(schema.register_entries.c.shares), 0)).where(
                schema.register_entries.c.kind == "cancel",
                schema.register_entries.c.member_number == entry.member_number,
                schema.register_entries.c.pledge_id.in_(list(links)),
            )
        ).scalar()
        or 0
    )
    number = int(entry.member_number)
    to_cancel = int(entry.shares) - backed - already
    if to_cancel > 0:
        held, _ = holding(tx.conn, number)
        if to_cancel > held:
            result.warnings.append(
                f"member {number} holds {held} share(s), fewer than the {to_cancel} this refund "
                f"paid for (they withdrew some already): only {held} cancelled. The value of "
                f"{to_cancel - held} share(s) was repaid twice; the board should recover it"
            )
            to_cancel = held
    if to_cancel > 0:
        new_id = _next_entry_id(tx)
        held_before, _ = holding(tx.conn, number)
        balance = _balance_certificate(tx, held_before - to_cancel)
        tx.execute(
            schema.register_entries.insert().values(
                id=new_id,
                member_number=number,
                kind="cancel",
                shares=to_cancel,
                amount=to_cancel * price,
                currency=entry.currency,
                pledge_id=pledge_id,
                certificate_number=balance,
                entry_date=today,
                note=(
                    f"pledge {pledge_id} {reason}; from certificate "
                    f"{entry.certificate_number or entry.id}"
                ),
                created_at=tx.now,
            )
        )
        result.entries.append(
            {
                "entry_id": new_id,
                "from_entry": entry_id,
                "member": number,
                "shares": to_cancel,
                "amount": to_cancel * price,
                "currency": entry.currency,
                "balance_certificate": balance,
            }
        )
        held_after, _ = holding(tx.conn, number)
        if held_after == 0:
            tx.execute(
                schema.members.update()
                .where(schema.members.c.number == number, schema.members.c.ceased_on.is_(None))
                .values(ceased_on=today)
            )
            # Not a member any more: a welcome still waiting would be wrong.
            tx.execute(
                schema.outbox.delete().where(
                    schema.outbox.c.member_number == number,
                    schema.outbox.c.kind == Kind.WELCOME.value,
                    schema.outbox.c.status == MailStatus.QUEUED.value,
                )
            )
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
        tx.execute(
            schema.remainders.insert().values(
                pledge_id=pid,
                person_key=person,
                amount=take,
                currency=entry.currency,
                reason=CANCEL_REASON,
                status=RemainderStatus.DUE.value,
                created_at=tx.now,
            )
        )
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
            tx.execute(schema.remainders.delete().where(schema.remainders.c.id == rem.id))
        else:
            tx.execute(
                schema.remainders.update()
                .where(schema.remainders.c.id == rem.id)
                .values(amount=schema.remainders.c.amount - cut)
            )
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


# -- the voter roll ------------------------------------------------------------


@dataclass(frozen=True)
class Voter:
    member_number: int
    name: str
    email: str | None


def roll(conn: Connection, currency: str) -> list[Voter]:
    """Current members, one vote each whatever they hold, by member number."""
    return [
        Voter(h.number, h.name, h.email)
        for h in register_mod.holdings(conn, currency)
        if h.ceased_on is None and h.shares > 0
    ]


ROLL_COLUMNS = ("email", "name", "member_number")  # email first: what Decidim and Loomio read


def roll_csv(voters: list[Voter]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROLL_COLUMNS)
    for v in voters:
        writer.writerow([v.email or "", v.name, v.member_number])
    return out.getvalue()


def roll_json(voters: list[Voter]) -> str:
    data = {
        "votes_per_member": 1,
        "count": len(voters),
        "members": [
            {"member_number": v.member_number, "name": v.name, "email": v.email} for v in voters
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


# -- public summary ------------------------------------------------------------


def _bands(max_shares: int) -> list[tuple[int, int]]:
    edges = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
    lows = [e for e in edges if e <= max_shares]
    return [
        (low, (lows[i + 1] - 1) if i + 1 < len(lows) else max_shares) for i, low in enumerate(lows)
    ]


def public_summary(conn: Connection, campaign: Campaign) -> dict[str, Any]:
    """Counts and totals only: no names, addresses, emails or per-person amounts."""
    bands = _bands(campaign.shares.max_shares)
    counts = [[0, 0] for _ in bands]
    current = former = shares = paid = 0
    for h in register_mod.holdings(conn, campaign.currency):
        if h.ceased_on is not None or h.shares <= 0:
            former += 1
            continue
        current += 1
        shares += h.shares
        paid += h.paid.amount
        for i, (low, high) in enumerate(bands):
            if low <= h.shares <= high:
                counts[i][0] += 1
                counts[i][1] += h.shares
                break
    return {
        "coop": campaign.coop.name,
        "members": current,
        "former_members": former,
        "shares": shares,
        "capital": paid,
        "currency": campaign.currency,
        "share_price": campaign.shares.price.amount,
        "votes_per_member": 1,
        "bands": [
            {
                "band": f"{low}" if low == high else f"{low}-{high}",
                "min_shares": low,
                "max_shares": high,
                "members": n,
                "shares": s,
            }
            for (low, high), (n, s) in zip(bands, counts, strict=True)
        ],
    }


def public_csv(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["band", "min_shares", "max_shares", "members", "shares"])
    for band in summary["bands"]:
        writer.writerow(
            [band["band"], band["min_shares"], band["max_shares"], band["members"], band["shares"]]
        )
    writer.writerow(["total", "", "", summary["members"], summary["shares"]])
    return out.getvalue()


# -- data rights: show and forget ----------------------------------------------


def _mail_for(conn: Connection, key: str, pledge_ids: list[int], number: int | None) -> list[Any]:
    conditions = [sa.func.lower(sa.func.trim(schema.outbox.c.to_email)) == key]
    if pledge_ids:
        conditions.append(schema.outbox.c.pledge_id.in_(pledge_ids))
    if number is not None:
        conditions.append(schema.outbox.c.member_number == number)
    return list(
        conn.execute(
            sa.select(schema.outbox).where(sa.or_(*conditions)).order_by(schema.outbox.c.id)
        )
    )


def show(conn: Connection, email: str, currency: str) -> dict[str, Any]:
    """Everything the ledger holds about one person (a subject access request)."""
    key = person_key(email)
    pledge_rows = list(
        conn.execute(
            sa.select(schema.pledges)
            .where(schema.pledges.c.person_key == key)
            .order_by(schema.pledges.c.id)
        )
    )
    member = conn.execute(
        sa.select(schema.members).where(schema.members.c.person_key == key)
    ).first()
    pledge_ids = [r.id for r in pledge_rows]
    mail = _mail_for(conn, key, pledge_ids, member.number if member else None)
    if not pledge_rows and member is None and not mail:
        raise NotFound(
            f"no one with the email {email.strip()!r} is in the ledger "
            "(emails are compared without case): check the spelling"
        )
    result: dict[str, Any] = {"email": key, "member": None, "register_entries": []}
    if member is not None:
        shares, paid = holding(conn, member.number)
        result["member"] = {
            "number": member.number,
            "name": member.name,
            "email": member.email,
            "address": member.address,
            "admitted_on": member.admitted_on,
            "ceased_on": member.ceased_on,
            "shares": shares,
            "amount_paid": paid,
            "currency": currency,
        }
        entries = conn.execute(
            sa.select(schema.register_entries)
            .where(schema.register_entries.c.member_number == member.number)
            .order_by(schema.register_entries.c.id)
        )
        result["register_entries"] = [
            {
                "id": e.id,
                "kind": e.kind,
                "shares": e.shares,
                "amount": int(e.amount),
                "currency": e.currency,
                "certificate_number": e.certificate_number,
                "entry_date": e.entry_date,
                "pledge_id": e.pledge_id,
                "note": e.note,
            }
            for e in entries
        ]
    result["pledges"] = [
        {
            "id": r.id,
            "created_at": r.created_at,
            "name": r.name,
            "email": r.email,
            "address": r.address,
            "display_name": r.display_name,
            "round": r.round,
            "tier": r.tier,
            "amount": int(r.amount),
            "currency": r.currency,
            "status": r.status,
            "status_reason": r.status_reason,
            "source": r.source,
            "reference": r.reference,
            "paid": int(r.paid_amount),
            "paid_at": r.paid_at,
            "refunded": int(r.refunded_amount),
            "allotted_at": r.allotted_at,
            "stripe_customer": r.stripe_customer,
            "stripe_intent": r.stripe_intent,
            "stripe_charge": r.stripe_charge,
            "failure_code": r.failure_code,
        }
        for r in pledge_rows
    ]
    rems: list[Any] = (
        list(
            conn.execute(
                sa.select(schema.remainders)
                .where(schema.remainders.c.pledge_id.in_(pledge_ids))
                .order_by(schema.remainders.c.id)
            )
        )
        if pledge_ids
        else []
    )
    result["refunds"] = [
        {
            "id": r.id,
            "pledge_id": r.pledge_id,
            "amount": int(r.amount),
            "currency": r.currency,
            "reason": r.reason,
            "status": r.status,
            "refunded_at": r.refunded_at,
            "reference": r.refund_reference,
        }
        for r in rems
    ]
    result["mail"] = [
        {
            "id": m.id,
            "kind": m.kind,
            "to_email": m.to_email,
            "to_name": m.to_name,
            "status": m.status,
            "created_at": m.created_at,
            "sent_at": m.sent_at,
            "attempts": m.attempts,
        }
        for m in mail
    ]
    return result


@dataclass(frozen=True)
class Erasure:
    pledges: list[int]
    mail_deleted: int
    mail_erased: int
    member: int | None

    def as_json(self) -> dict[str, Any]:
        return {
            "pledges": self.pledges,
            "mail_deleted": self.mail_deleted,
            "mail_erased": self.mail_erased,
            "member": self.member,
        }


UNSETTLED = {
    Status.PENDING.value: "is pending: cancel it first (`fundraiser pledges cancel {id}`)",
    Status.AUTHORIZED.value: "has a saved card: cancel it first (`fundraiser pledges cancel {id}`)",
    Status.PROCESSING.value: "is being charged: wait for the charge to finish",
    Status.PAYMENT_FAILED.value: "is waiting for a card fix: let it lapse or cancel it first",
    Status.DISPUTED.value: "is disputed: the bank's decision needs the record",
}


def retention_ends(ceased_on: str) -> date:
    ceased = date.fromisoformat(ceased_on)
    try:
        return ceased.replace(year=ceased.year + RETENTION_YEARS)
    except ValueError:  # 29 February
        return ceased.replace(year=ceased.year + RETENTION_YEARS, day=28)


def forget(
    ledger: Ledger, email: str, *, today: str, now: str | None = None, dry_run: bool = False
) -> Erasure:
    """Erase a person's personal data, or refuse and say why (Refused)."""
    key = person_key(email)
    with ledger.write(now) as tx:
        member = tx.execute(
            sa.select(schema.members).where(schema.members.c.person_key == key)
        ).first()
        rows = list(
            tx.execute(
                sa.select(schema.pledges)
                .where(schema.pledges.c.person_key == key)
                .order_by(schema.pledges.c.id)
            )
        )
        ids = [r.id for r in rows]
        mail = _mail_for(tx.conn, key, ids, member.number if member else None)
        if not rows and member is None and not mail:
            raise NotFound(
                f"no one with the email {email.strip()!r} is in the ledger "
                "(emails are compared without case): check the spelling"
            )
        number = member.number if member is not None else None
        if member is not None:
            _check_member_erasable(tx.conn, member, today)
        for r in rows:
            reason = UNSETTLED.get(r.status)
            if reason is None and r.status == Status.PAID.value and r.allotted_at is None:
                reason = "is paid but not yet turned into shares: issue or refund it first"
            if reason:
                raise Refused(
                    f"cannot erase {email.strip()}: pledge {r.id} {reason.format(id=r.id)}"
                )
        owed = _remainder_totals_due(tx.conn, ids)
        if owed:
            raise Refused(
                f"cannot erase {email.strip()}: a refund is still owed to them on pledge(s) "
                f"{', '.join(map(str, owed))}; refund it first (`fundraiser refunds list`)"
            )
        if any(m.status == MailStatus.SENDING.value for m in mail):
            raise Refused(
                f"cannot erase {email.strip()} now: a mail to them is being sent; try again "
                "in a few minutes"
            )
        unsent = [m.id for m in mail if m.status != MailStatus.SENT.value]
        sent = [m.id for m in mail if m.status == MailStatus.SENT.value]
        if dry_run:
            return Erasure(ids, len(unsent), len(sent), number)
        for pid in ids:
            tx.execute(
                schema.pledges.update()
                .where(schema.pledges.c.id == pid)
                .values(
                    person_key=f"erased:{pid}",
                    name=ERASED,
                    email=ERASED,
                    address=ERASED,
                    display_name=None,
                    updated_at=tx.now,
                )
            )
            tx.execute(
                schema.remainders.update()
                .where(schema.remainders.c.pledge_id == pid)
                .values(person_key=f"erased:{pid}")
            )
        scrubbed = _scrub_stripe_events(tx, ids)
        if unsent:
            tx.execute(schema.outbox.delete().where(schema.outbox.c.id.in_(unsent)))
        if sent:
            # The count and dates of mail sent stay (what we did); who it went to goes.
            tx.execute(
                schema.outbox.update()
                .where(schema.outbox.c.id.in_(sent))
                .values(to_email=ERASED, to_name=ERASED, data="{}")
            )
        if member is not None:
            tx.execute(
                schema.members.update()
                .where(schema.members.c.number == member.number)
                .values(
                    person_key=f"erased:member:{member.number}",
                    name=ERASED,
                    email=None,
                    address=ERASED,
                )
            )
        tx.record(
            "person.forget",
            f"pledges:{','.join(map(str, ids))}" if ids else f"member:{number}",
            {
                "pledges": ids,
                "mail_deleted": len(unsent),
                "mail_erased": len(sent),
                "stripe_events_erased": scrubbed,
                "member": number,
            },
        )
        return Erasure(ids, len(unsent), len(sent), number)


def _scrub_stripe_events(tx: Tx, pledge_ids: list[int]) -> int:
    """Erase stored Stripe events about these pledges: their payloads carry the
    backer's name, email and billing details. The event ids stay, so a webhook
    delivered again is still recognised and ignored."""
    if not pledge_ids:
        return 0
    rows = tx.execute(
        sa.select(
            schema.pledges.c.stripe_intent,
            schema.pledges.c.stripe_charge,
            schema.pledges.c.stripe_customer,
        ).where(schema.pledges.c.id.in_(pledge_ids))
    )
    stripe_ids = {value for row in rows for value in row if value}
    erased = 0
    for stripe_id in sorted(stripe_ids):
        done = tx.execute(
            schema.stripe_events.update()
            .where(schema.stripe_events.c.payload.contains(f'"{stripe_id}"', autoescape=True))
            .values(payload='{"erased": true}')
        )
        erased += done.rowcount or 0
    return erased


def _remainder_totals_due(conn: Connection, pledge_ids: list[int]) -> list[int]:
    if not pledge_ids:
        return []
    return sorted(
        set(
            conn.execute(
                sa.select(schema.remainders.c.pledge_id).where(
                    schema.remainders.c.pledge_id.in_(pledge_ids),
                    schema.remainders.c.status == RemainderStatus.DUE.value,
                )
            ).scalars()
        )
    )


def _check_member_erasable(conn: Connection, member: Any, today: str) -> None:
    number = member.number
    if member.ceased_on is None:
        held, _ = holding(conn, number)
        raise Refused(
            f"{member.email or 'this person'} is member {number} (holding {held} share(s)): "
            "a co-operative society must keep each member's name, postal address, holding "
            "and dates in its register of members (Co-operative and Community Benefit "
            "Societies Act 2014, s.30), so their details cannot be erased while they are a "
            "member. Correct wrong details instead; if they leave "
            f"(`fundraiser members withdraw {number} --shares {held}`), the entry is kept "
            f"for {RETENTION_YEARS} years after they cease"
        )
    ends = retention_ends(member.ceased_on)
    if date.fromisoformat(today) < ends:
        raise Refused(
            f"member {number} ceased on {member.ceased_on}: the register keeps former "
            "members' entries (Co-operative and Community Benefit Societies Act 2014, s.30; "
            f"kept here for {RETENTION_YEARS} years after they cease). "
            f"Their details can be erased from {ends.isoformat()}"
        )
