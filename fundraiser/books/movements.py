"""Every money movement the ledger knows, as double-entry transactions. Reads only.

The chart: money comes in to the bank or Stripe and is owed to the pledge
(`pledges`: received for shares not yet issued) until shares are issued
(`share_capital`) or it becomes a remainder (`refunds_due`) and goes back.
A bank credit no pledge claims is owed to someone unknown (`unidentified`).
A withdrawal makes share capital owed to the member (`withdrawals`); paying
them is outside the ledger. A disputed card payment's money is held by the
card network (`disputed`).

Stripe's fees are not in the ledger (the Stripe balance transactions are not
fetched): each card payment is booked gross, and the `fees` account is
opened so the treasurer can book Stripe's monthly fee report against it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import remainders
from fundraiser.config import Books, Campaign
from fundraiser.ledger import schema
from fundraiser.pledges import BY_HAND, Source, Status

_SETTLED_IN_FULL = "included in the full refund"


@dataclass(frozen=True)
class Posting:
    account: str  # a key of the chart: "bank", "pledges", ...
    amount: int  # minor units; debits positive, credits negative


@dataclass(frozen=True)
class Movement:
    day: date
    kind: str  # card-payment, bank-receipt, ...
    narration: str  # our words only: never a person's
    ref: str  # the ledger record it comes from: "pledge:7", "bank-txn:12"
    postings: tuple[Posting, ...]
    links: dict[str, str] = field(default_factory=dict)  # pledge, register_entry, ...

    def __post_init__(self) -> None:
        assert sum(p.amount for p in self.postings) == 0, self


@dataclass
class BookData:
    currency: str
    chart: Books
    movements: list[Movement]
    totals: dict[str, int]  # the ledger's own totals, by chart key, to check the books against
    first_day: date

    def balances(self) -> dict[str, int]:
        found: dict[str, int] = defaultdict(int)
        for m in self.movements:
            for p in m.postings:
                found[p.account] += p.amount
        return dict(found)


def _day(stamp: str | None, zone: ZoneInfo, fallback: date) -> date:
    if not stamp:
        return fallback
    if len(stamp) == 10:
        return date.fromisoformat(stamp)
    return datetime.fromisoformat(stamp).astimezone(zone).date()


def _card(row: sa.Row[tuple[object, ...]]) -> bool:
    return remainders.method_of(row) == remainders.CARD


def collect(conn: Connection, campaign: Campaign) -> BookData:
    zone = ZoneInfo(campaign.campaign.timezone)
    opens = campaign.campaign.opens.astimezone(zone).date()
    currency = campaign.currency
    moves: list[Movement] = []
    pledge_rows = {
        r.id: r
        for r in conn.execute(
            sa.select(schema.pledges).where(
                schema.pledges.c.currency == currency, schema.pledges.c.paid_amount > 0
            )
        )
    }
    applied_by_bank: dict[int, int] = defaultdict(int)
    booked: dict[str, date] = {}  # "bank transaction N" -> the day the bank booked it
    txns = conn.execute(
        sa.select(schema.bank_transactions)
        .where(schema.bank_transactions.c.currency == currency)
        .order_by(schema.bank_transactions.c.id)
    ).all()
    for t in txns:
        booked[f"bank transaction {t.id}"] = date.fromisoformat(t.booked_on)
        if t.amount <= 0:
            continue  # money out is booked from the refund it confirms
        ref = f"bank-txn:{t.id}"
        links = {"bank_transaction": str(t.id)}
        if t.outcome == "unmatched":
            postings = (Posting("bank", t.amount), Posting("unidentified", -t.amount))
            moves.append(
                Movement(
                    date.fromisoformat(t.booked_on),
                    "bank-receipt",
                    "Bank transfer not yet matched to a pledge",
                    ref,
                    postings,
                    links,
                )
            )
            continue
        applied = int(t.applied)
        applied_by_bank[t.pledge_id] += applied
        links["pledge"] = str(t.pledge_id)
        postings_list = [Posting("bank", t.amount)]
        if applied:
            postings_list.append(Posting("pledges", -applied))
        if t.amount - applied:
            postings_list.append(Posting("refunds_due", -(t.amount - applied)))
            if t.remainder_id is not None:
                links["remainder"] = str(t.remainder_id)
        moves.append(
            Movement(
                date.fromisoformat(t.booked_on),
                "bank-receipt",
                f"Bank transfer for pledge {t.pledge_id}",
                ref,
                tuple(postings_list),
                links,
            )
        )
    for pid, r in pledge_rows.items():
        day = _day(r.paid_at or r.updated_at, zone, opens)
        links = {"pledge": str(pid)}
        if _card(r):
            moves.append(
                Movement(
                    day,
                    "card-payment",
                    f"Card payment for pledge {pid}",
                    f"pledge:{pid}",
                    (
                        Posting("stripe", int(r.paid_amount)),
                        Posting("pledges", -int(r.paid_amount)),
                    ),
                    links,
                )
            )
        elif r.source in {s.value for s in BY_HAND} or r.source == Source.OFFLINE.value:
            by_hand = int(r.paid_amount) - applied_by_bank.get(pid, 0)
            if by_hand > 0:
                moves.append(
                    Movement(
                        day,
                        "bank-receipt",
                        f"Bank transfer for pledge {pid}, marked paid by hand",
                        f"pledge:{pid}",
                        (Posting("bank", by_hand), Posting("pledges", -by_hand)),
                        links,
                    )
                )
    counted_refunds: dict[int, int] = defaultdict(int)
    for rem in conn.execute(
        sa.select(schema.remainders)
        .where(schema.remainders.c.currency == currency)
        .order_by(schema.remainders.c.id)
    ):
        pledge = pledge_rows.get(rem.pledge_id)
        links = {"pledge": str(rem.pledge_id), "remainder": str(rem.id)}
        ref = f"remainder:{rem.id}"
        amount = int(rem.amount)
        outside = rem.reason in remainders.OUTSIDE_PAID
        if not outside:
            moves.append(
                Movement(
                    _day(rem.created_at, zone, opens),
                    "remainder",
                    f"Owed back on pledge {rem.pledge_id} ({rem.reason})",
                    ref,
                    (Posting("pledges", amount), Posting("refunds_due", -amount)),
                    links,
                )
            )
        if rem.status != remainders.RemainderStatus.REFUNDED.value:
            continue
        day = booked.get(rem.refund_reference or "") or _day(rem.refunded_at, zone, opens)
        if (rem.refund_reference or "").startswith(_SETTLED_IN_FULL):
            # Returned inside the pledge's full refund, booked below with it.
            moves.append(
                Movement(
                    day,
                    "refund",
                    f"Remainder of pledge {rem.pledge_id} settled by its full refund",
                    ref,
                    (Posting("refunds_due", amount), Posting("pledges", -amount)),
                    links,
                )
            )
            continue
        if not outside:
            counted_refunds[rem.pledge_id] += amount
        source = "stripe" if pledge is not None and _card(pledge) else "bank"
        moves.append(
            Movement(
                day,
                "refund",
                f"Refund paid on pledge {rem.pledge_id}",
                ref,
                (Posting("refunds_due", amount), Posting(source, -amount)),
                links,
            )
        )
    for pid, r in pledge_rows.items():
        direct = int(r.refunded_amount) - counted_refunds.get(pid, 0)
        links = {"pledge": str(pid)}
        day = _day(r.updated_at, zone, opens)
        source = "stripe" if _card(r) else "bank"
        if direct > 0:
            moves.append(
                Movement(
                    day,
                    "refund",
                    f"Pledge {pid} refunded ({r.status})",
                    f"pledge:{pid}",
                    (Posting("pledges", direct), Posting(source, -direct)),
                    links,
                )
            )
        if r.status == Status.DISPUTED.value:
            held = int(r.paid_amount) - int(r.refunded_amount)
            moves.append(
                Movement(
                    day,
                    "dispute",
                    f"Card payment for pledge {pid} disputed",
                    f"pledge:{pid}",
                    (Posting("disputed", held), Posting("stripe", -held)),
                    links,
                )
            )
    for e in conn.execute(
        sa.select(schema.register_entries)
        .where(schema.register_entries.c.currency == currency)
        .order_by(schema.register_entries.c.id)
    ):
        amount = int(e.amount)
        links = {"register_entry": str(e.id), "member": str(e.member_number)}
        day = date.fromisoformat(e.entry_date)
        ref = f"register-entry:{e.id}"
        if e.kind == "issue":
            postings = (Posting("pledges", amount), Posting("share_capital", -amount))
            text = f"Shares issued to member {e.member_number}"
        elif e.kind == "withdraw":
            postings = (Posting("share_capital", amount), Posting("withdrawals", -amount))
            text = f"Shares withdrawn by member {e.member_number}"
        else:
            postings = (Posting("share_capital", amount), Posting("pledges", -amount))
            text = f"Shares of member {e.member_number} cancelled"
        moves.append(Movement(day, f"shares-{e.kind}", text, ref, postings, links))
    moves.sort(key=lambda m: (m.day, m.kind, m.ref))
    totals = _ledger_totals(conn, currency)
    first = min([m.day for m in moves], default=opens)
    return BookData(currency, campaign.books, moves, totals, min(first, opens))


def _ledger_totals(conn: Connection, currency: str) -> dict[str, int]:
    """What the ledger's own tables say each checked account holds (credits negative)."""
    entries = schema.register_entries
    signed = sa.case((entries.c.kind == "issue", entries.c.amount), else_=-entries.c.amount)
    shares = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(signed), 0)).where(entries.c.currency == currency)
    ).scalar()
    owed = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(schema.remainders.c.amount), 0)).where(
            schema.remainders.c.currency == currency,
            schema.remainders.c.status.in_([s.value for s in remainders.OWED]),
        )
    ).scalar()
    unknown = conn.execute(
        sa.select(sa.func.coalesce(sa.func.sum(schema.bank_transactions.c.amount), 0)).where(
            schema.bank_transactions.c.currency == currency,
            schema.bank_transactions.c.outcome == "unmatched",
        )
    ).scalar()
    return {
        "share_capital": -int(shares or 0),
        "refunds_due": -int(owed or 0),
        "unidentified": -int(unknown or 0),
    }


def accounts(chart: Books) -> Iterator[tuple[str, str]]:
    """(chart key, account name) for every account the books open."""
    for key in Books.ROOTS:
        yield key, getattr(chart, key)
