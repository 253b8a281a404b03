"""The share register: members, append-only entries, and issuing a plan.

Holdings are never stored: they are the sum of a member's entries (issue
adds, withdraw and cancel take away), so the register's history is its truth.
"""

from __future__ import annotations

import csv
import enum
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import outbox as outbox_mod
from fundraiser.allocation import PaidPledge, Plan, allocate
from fundraiser.config import Campaign
from fundraiser.gcpause import gc_paused
from fundraiser.ledger import (
    Ledger,
    Tx,
    allotments,
    bulk_insert,
    fetch_all,
    members,
    pledges,
    register_entries,
    remainders,
)
from fundraiser.money import Money
from fundraiser.pledges import Status


class EntryKind(enum.StrEnum):
    ISSUE = "issue"
    WITHDRAW = "withdraw"
    CANCEL = "cancel"


def _signed_shares() -> sa.ColumnElement[Any]:
    return sa.case(
        (register_entries.c.kind == EntryKind.ISSUE.value, register_entries.c.shares),
        else_=-register_entries.c.shares,
    )


def _signed_amount() -> sa.ColumnElement[Any]:
    return sa.case(
        (register_entries.c.kind == EntryKind.ISSUE.value, register_entries.c.amount),
        else_=-register_entries.c.amount,
    )


def existing_holdings(conn: Connection) -> dict[str, int]:
    """Shares held now, by person key (members only)."""
    rows = conn.execute(
        sa.select(members.c.person_key, sa.func.sum(_signed_shares()))
        .select_from(members.join(register_entries))
        .group_by(members.c.person_key)
    )
    return {key: int(shares) for key, shares in rows}


def paid_unallotted(conn: Connection, currency: str) -> list[PaidPledge]:
    """Paid pledges not yet turned into shares, with the money still held."""
    rows = fetch_all(
        conn,
        sa.select(
            pledges.c.id,
            pledges.c.person_key,
            pledges.c.name,
            pledges.c.email,
            pledges.c.address,
            pledges.c.paid_amount,
            pledges.c.refunded_amount,
            pledges.c.paid_at,
            pledges.c.currency,
        )
        .where(pledges.c.status == Status.PAID.value, pledges.c.allotted_at.is_(None))
        .order_by(pledges.c.id),
    )
    # Each pledge keeps its own currency: allocate() refuses one that differs.
    with gc_paused():
        return [
            PaidPledge(pid, key, name, email, address, Money(paid - refunded, code), at or "")
            for pid, key, name, email, address, paid, refunded, at, code in rows
            if paid > refunded
        ]


def make_plan(conn: Connection, campaign: Campaign, paid: list[PaidPledge] | None = None) -> Plan:
    return allocate(
        paid if paid is not None else paid_unallotted(conn, campaign.currency),
        campaign.shares,
        offer_max_shares=campaign.offer_max_shares,
        existing=existing_holdings(conn),
    )


@dataclass(frozen=True)
class IssueResult:
    members_admitted: int
    entries: int
    shares: int
    remainders: int
    refund_total: Money
    first_member: int | None
    last_member: int | None


def issue(ledger: Ledger, campaign: Campaign, *, today: str, now: str | None = None) -> IssueResult:
    """Apply the allotment plan in one transaction. With nothing new, changes nothing."""
    with ledger.write(now) as tx:
        paid = paid_unallotted(tx.conn, campaign.currency)
        plan = make_plan(tx.conn, campaign, paid)
        if not plan.allotments:
            return IssueResult(0, 0, 0, 0, Money(0, campaign.currency), None, None)
        return _apply(tx, plan, {p.pledge_id: p.amount.amount for p in paid}, today)


def _mark_allotted(tx: Tx, pledge_ids: list[int]) -> None:
    # Chunks keep each statement within every driver's parameter limit.
    for start in range(0, len(pledge_ids), 10_000):
        chunk = pledge_ids[start : start + 10_000]
        tx.execute(pledges.update().where(pledges.c.id.in_(chunk)).values(allotted_at=tx.now))


def _next(tx: Tx, column: sa.Column[Any]) -> int:
    return int(tx.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar() or 0) + 1


def _apply(tx: Tx, plan: Plan, held: dict[int, int], today: str) -> IssueResult:
    rows = tx.execute(sa.select(members.c.person_key, members.c.number))
    number_of: dict[str, int] = {row.person_key: row.number for row in rows}
    next_member = _next(tx, members.c.number)
    next_entry = _next(tx, register_entries.c.id)
    next_certificate = _next(tx, register_entries.c.certificate_number)
    new_members: list[dict[str, Any]] = []
    entries: list[dict[str, Any]] = []
    links: list[dict[str, Any]] = []
    refunds: list[dict[str, Any]] = []
    journal: list[dict[str, Any]] = []
    allotted: list[int] = []
    first_member = None
    for allotment in plan.allotments:
        allotted.extend(allotment.pledge_ids)
        refunded_by_pledge: dict[int, int] = {}
        for rem in allotment.remainders:
            refunded_by_pledge[rem.pledge_id] = refunded_by_pledge.get(rem.pledge_id, 0) + (
                rem.amount.amount
            )
            refunds.append(
                {
                    "pledge_id": rem.pledge_id,
                    "person_key": allotment.person_key,
                    "amount": rem.amount.amount,
                    "currency": rem.amount.currency,
                    "reason": rem.reason.value,
                    "status": "due",
                    "created_at": tx.now,
                }
            )
        if allotment.shares == 0:
            continue
        number = number_of.get(allotment.person_key)
        if number is None:
            number = next_member
            next_member += 1
            first_member = first_member or number
            number_of[allotment.person_key] = number
            new_members.append(
                {
                    "number": number,
                    "person_key": allotment.person_key,
                    "name": allotment.name,
                    "email": allotment.email,
                    "address": allotment.address,
                    "admitted_on": today,
                    "ceased_on": None,
                    "created_at": tx.now,
                }
            )
        amount = (plan.price * allotment.shares).amount
        entries.append(
            {
                "id": next_entry,
                "member_number": number,
                "kind": EntryKind.ISSUE.value,
                "shares": allotment.shares,
                "amount": amount,
                "currency": plan.currency,
                "pledge_id": None,
                "certificate_number": next_certificate,
                "entry_date": today,
                "note": None,
                "created_at": tx.now,
            }
        )
        journal.append(
            {
                "entry": next_entry,
                "member": number,
                "shares": allotment.shares,
                "amount": amount,
                "certificate": next_certificate,
                "pledges": list(allotment.pledge_ids),
                "admitted": allotment.existing_shares == 0,
            }
        )
        for pledge_id in allotment.pledge_ids:
            kept = held[pledge_id] - refunded_by_pledge.get(pledge_id, 0)
            if kept > 0:
                links.append({"entry_id": next_entry, "pledge_id": pledge_id, "amount": kept})
        next_entry += 1
        next_certificate += 1
    bulk_insert(tx.conn, members, new_members)
    bulk_insert(tx.conn, register_entries, entries)
    bulk_insert(tx.conn, allotments, links)
    bulk_insert(tx.conn, remainders, refunds)
    _mark_allotted(tx, allotted)
    # The welcome mail is queued with the change that causes it.
    welcome = [
        outbox_mod.message(
            outbox_mod.Kind.WELCOME,
            f"welcome:member:{m['number']}",
            to_email=m["email"],
            to_name=m["name"],
            data={"member_number": m["number"], "admitted_on": today},
            now=tx.now,
            member_number=m["number"],
        )
        for m in new_members
    ]
    outbox_mod.queue_many(tx, welcome)
    refund_total = sum(r["amount"] for r in refunds)
    # The whole issue is one change, so one journal entry records all of it.
    tx.record(
        "shares.issue",
        "register",
        {
            "members_admitted": len(new_members),
            "shares": plan.total_shares,
            "currency": plan.currency,
            "entries": journal,
            "remainders": [[r["pledge_id"], r["amount"], r["reason"]] for r in refunds],
        },
    )
    return IssueResult(
        len(new_members),
        len(entries),
        plan.total_shares,
        len(refunds),
        Money(refund_total, plan.currency),
        first_member,
        (next_member - 1) if new_members else None,
    )


@dataclass(frozen=True)
class Holding:
    number: int
    name: str
    email: str | None
    address: str
    admitted_on: str
    ceased_on: str | None
    shares: int
    paid: Money

    def as_json(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "name": self.name,
            "email": self.email,
            "address": self.address,
            "admitted_on": self.admitted_on,
            "ceased_on": self.ceased_on,
            "shares": self.shares,
            "amount_paid": self.paid.amount,
            "currency": self.paid.currency,
        }


def holdings(
    conn: Connection, currency: str, numbers: list[int] | None = None
) -> Iterator[Holding]:
    """Members (all, or these numbers) with shares and amount paid, from the entries."""
    totals = sa.select(
        register_entries.c.member_number.label("number"),
        sa.func.sum(_signed_shares()).label("shares"),
        sa.func.sum(_signed_amount()).label("amount"),
    ).group_by(register_entries.c.member_number)
    query = sa.select(members).order_by(members.c.number)
    if numbers is not None:
        totals = totals.where(register_entries.c.member_number.in_(numbers))
        query = query.where(members.c.number.in_(numbers))
    subquery = totals.subquery()
    query = query.add_columns(
        sa.func.coalesce(subquery.c.shares, 0).label("shares"),
        sa.func.coalesce(subquery.c.amount, 0).label("amount"),
    ).select_from(members.outerjoin(subquery, subquery.c.number == members.c.number))
    for row in conn.execution_options(yield_per=5000).execute(query):
        yield Holding(
            row.number,
            row.name,
            row.email,
            row.address,
            row.admitted_on,
            row.ceased_on,
            int(row.shares),
            Money(int(row.amount), currency),
        )


EXPORT_COLUMNS = (
    "number",
    "name",
    "address",
    "email",
    "shares",
    "amount_paid",
    "currency",
    "admitted_on",
    "ceased_on",
)


def export(conn: Connection, currency: str, path: Path, fmt: str = "csv") -> int:
    """Write the register for the board; returns the number of members."""
    count = 0
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        if fmt == "json":
            items = []
            for holding in holdings(conn, currency):
                items.append(holding.as_json())
            json.dump(
                {"currency": currency, "members": items}, handle, indent=2, ensure_ascii=False
            )
            count = len(items)
        else:
            writer = csv.writer(handle)
            writer.writerow(EXPORT_COLUMNS)
            for h in holdings(conn, currency):
                writer.writerow(
                    [
                        h.number,
                        h.name,
                        h.address,
                        h.email or "",
                        h.shares,
                        h.paid.plain(),
                        currency,
                        h.admitted_on,
                        h.ceased_on or "",
                    ]
                )
                count += 1
    tmp.replace(path)  # readers never see a half-written export
    return count
