"""Remainders: money owed back to backers because it did not become shares.

A remainder is money that did not become shares (below one share, over the
holding cap, scaled back, or left over after a cancellation). Card payments are
refunded through Stripe by the payments package, one refund per remainder with
the idempotency key `Keys.remainder_refund(pledge, remainder)`; bank transfers are
paid back by the treasurer, who records each with a reference.

Recording a refund marks the remainders refunded, adds the amount to the
pledge's refunded total (never beyond what was paid), and queues the "refund
sent" mail, all in one transaction. The register is untouched: remainders were
never shares.

A bank transfer that pays more than a pledge owes, or arrives for a pledge
that is over, leaves a remainder too (`OVERPAID`, `UNWANTED`). That money was
never counted in the pledge's paid total, so refunding it does not raise the
pledge's refunded total (`OUTSIDE_PAID`).

Bank refunds can leave by a payment file (`bank.payouts`): the remainders are
then `SENT`, between due and refunded, until a statement shows the money
leaving. The account a backer gives for it (`set_account`) is personal data:
never in the journal, erased with the person.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import csvsafe, outbox
from fundraiser.accounts import Account
from fundraiser.errors import FundraiserError, NotFound, UserInputError
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.money import Money
from fundraiser.pledges import Status
from fundraiser.stripekeys import Keys, stored_keys


class RemainderStatus(enum.StrEnum):
    DUE = "due"  # owed to the backer
    SENT = "sent"  # in a bank payment file; refunded once a statement shows it leaving
    REFUNDED = "refunded"  # paid back (card refund or bank transfer), with a reference


#: Still owed: the money has not been seen leaving the co-op's account.
OWED = frozenset({RemainderStatus.DUE, RemainderStatus.SENT})

#: Remainders a bank import makes (the reasons of allocation's are in
#: allocation.RemainderReason, and membership's "cancel").
OVERPAID = "overpaid"  # a transfer paid more than the pledge owed
UNWANTED = "unwanted"  # a transfer arrived for a pledge already paid, cancelled or ended
#: An all-or-nothing campaign missed its goal: a bank payment owed back in full (closing.py).
GOAL_MISSED = "goal missed"
#: Money outside the pledge's paid total: refunding it leaves refunded_amount alone.
OUTSIDE_PAID = frozenset({OVERPAID, UNWANTED})


CARD = "card"
BANK = "bank"
CARD_HINT = "to refund through Stripe: run `fundraiser refunds send`"
BANK_HINT = "to refund by bank transfer, then `fundraiser refunds mark-paid PLEDGE --reference REF`"


def method_of(row: Any) -> str:
    """Card when Stripe took the money, else bank (the money came by transfer)."""
    if row.source == "online" or row.stripe_intent or row.stripe_charge:
        return CARD
    return BANK


@dataclass(frozen=True)
class RemainderLine:
    id: int
    amount: int
    reason: str


@dataclass(frozen=True)
class RefundDue:
    """One pledge's due remainders: what to pay back, to whom, and how."""

    pledge_id: int
    name: str
    email: str
    method: str
    pledge_status: str
    pledge_reference: str | None
    currency: str
    lines: tuple[RemainderLine, ...]
    hold: str | None = None  # why it must not be paid now
    keys: Keys | None = None  # this ledger's Stripe keys, once it has any

    def idempotency_key(self, line: RemainderLine) -> str | None:
        """The exact key `refunds send` uses at Stripe for this line (card refunds only)."""
        if self.method != CARD or self.keys is None:
            return None
        return self.keys.remainder_refund(self.pledge_id, line.id)

    @property
    def total(self) -> Money:
        return Money(sum(line.amount for line in self.lines), self.currency)

    @property
    def transfer_reference(self) -> str:
        """What to write on the bank transfer so the backer recognises it."""
        return f"REFUND-P{self.pledge_id}"

    @property
    def action(self) -> str:
        if self.hold:
            return f"on hold: {self.hold}"
        return CARD_HINT if self.method == CARD else BANK_HINT

    def as_json(self) -> dict[str, Any]:
        return {
            "pledge_id": self.pledge_id,
            "name": self.name,
            "email": self.email,
            "method": self.method,
            "amount": self.total.amount,
            "currency": self.currency,
            "pledge_status": self.pledge_status,
            "pledge_reference": self.pledge_reference,
            "transfer_reference": self.transfer_reference,
            "remainders": [
                {
                    "id": line.id,
                    "amount": line.amount,
                    "reason": line.reason,
                    "idempotency_key": self.idempotency_key(line),
                }
                for line in self.lines
            ],
            "hold": self.hold,
            "action": self.action,
        }


def _hold(status: str) -> str | None:
    if status == Status.DISPUTED.value:
        return "the payment is disputed; wait for the bank's decision"
    if status == Status.REFUNDED.value:
        return (
            "the whole pledge was already refunded; settle it with "
            "`fundraiser members cancel-shares PLEDGE`"
        )
    return None


def due(
    conn: Connection,
    pledge_id: int | None = None,
    *,
    status: RemainderStatus = RemainderStatus.DUE,
) -> list[RefundDue]:
    """Every pledge with remainders still due (or in `status`), by pledge id."""
    query = (
        sa.select(
            schema.remainders.c.id,
            schema.remainders.c.pledge_id,
            schema.remainders.c.amount,
            schema.remainders.c.currency,
            schema.remainders.c.reason,
            schema.pledges.c.name,
            schema.pledges.c.email,
            schema.pledges.c.status,
            schema.pledges.c.reference,
            schema.pledges.c.source,
            schema.pledges.c.stripe_intent,
            schema.pledges.c.stripe_charge,
        )
        .select_from(
            schema.remainders.join(
                schema.pledges, schema.pledges.c.id == schema.remainders.c.pledge_id
            )
        )
        .where(schema.remainders.c.status == status.value)
        .order_by(schema.remainders.c.pledge_id, schema.remainders.c.id)
    )
    if pledge_id is not None:
        query = query.where(schema.remainders.c.pledge_id == pledge_id)
    keys = stored_keys(conn)
    grouped: dict[int, list[Any]] = {}
    for row in conn.execute(query):
        grouped.setdefault(row.pledge_id, []).append(row)
    result = []
    for pid, rows in grouped.items():
        first = rows[0]
        result.append(
            RefundDue(
                pledge_id=pid,
                name=first.name,
                email=first.email,
                method=method_of(first),
                pledge_status=first.status,
                pledge_reference=first.reference,
                currency=first.currency,
                lines=tuple(RemainderLine(r.id, int(r.amount), r.reason) for r in rows),
                hold=_hold(first.status),
                keys=keys,
            )
        )
    return result


def card_lines_due(conn: Connection) -> list[tuple[RefundDue, RemainderLine]]:
    """Remainders to refund to the card they came from now (none on hold), oldest first."""
    return [
        (item, line)
        for item in due(conn)
        if item.method == CARD and not item.hold
        for line in item.lines
    ]


def record_refund(
    tx: Tx,
    pledge_id: int,
    *,
    reference: str,
    method: str,
    remainder_ids: list[int] | None = None,
    bump_refunded: bool = True,
    mail: bool = True,
    status: RemainderStatus = RemainderStatus.DUE,
) -> Money:
    """Mark a pledge's due (or `status`) remainders refunded, in the caller's transaction.

    The payments package calls this after Stripe confirms a remainder refund
    (with `mail=False` when its webhook already queues the mail, and
    `bump_refunded=False` when it takes Stripe's cumulative refunded total).
    A statement import calls it with `status=SENT` for a bank payout it sees.
    """
    items = due(tx.conn, pledge_id, status=status)
    if not items:
        raise NotFound(f"pledge {pledge_id} has no refund due: see `fundraiser refunds list`")
    item = items[0]
    lines = [line for line in item.lines if remainder_ids is None or line.id in set(remainder_ids)]
    missing = set(remainder_ids or []) - {line.id for line in lines}
    if missing or not lines:
        raise NotFound(
            f"remainder(s) {', '.join(map(str, sorted(missing)))} of pledge {pledge_id} "
            "are not due: see `fundraiser refunds list`"
        )
    if item.hold and status is RemainderStatus.DUE:
        raise UserInputError(f"pledge {pledge_id}'s refund is on hold: {item.hold}")
    amount = sum(line.amount for line in lines)
    # Overpaid money was never in the pledge's paid total: returning it is not
    # a refund of the pledge.
    counted = sum(line.amount for line in lines if line.reason not in OUTSIDE_PAID)
    ids = [line.id for line in lines]
    done = tx.update(
        schema.remainders,
        {"id": ids, "status": status.value},
        status=RemainderStatus.REFUNDED.value,
        refunded_at=tx.now,
        refund_reference=reference,
    )
    if done != len(ids):
        raise FundraiserError(f"pledge {pledge_id}'s remainders changed while we worked: try again")
    if bump_refunded and counted:
        found = tx.execute(
            sa.select(schema.pledges.c.paid_amount, schema.pledges.c.refunded_amount).where(
                schema.pledges.c.id == pledge_id
            )
        ).one()
        paid, refunded = int(found.paid_amount), int(found.refunded_amount)
        bumped = 0
        if refunded + counted <= paid:  # never beyond what was paid
            bumped = tx.update(
                schema.pledges,
                {"id": pledge_id, "refunded_amount": refunded},
                refunded_amount=refunded + counted,
                updated_at=tx.now,
            )
        if bumped != 1:
            raise UserInputError(
                f"pledge {pledge_id}: refunding {Money(counted, item.currency)} would return "
                "more than was paid; check its refunds with `fundraiser members show EMAIL`"
            )
    tx.record(
        "refund.record",
        f"pledge:{pledge_id}",
        {"pledge": pledge_id, "remainders": ids, "amount": amount, "method": method},
    )
    if mail:
        reasons = sorted({line.reason for line in lines})
        outbox.queue(
            tx,
            outbox.Kind.REFUND_SENT,
            f"refund-remainders-{pledge_id}-{'-'.join(map(str, ids))}",
            to_email=item.email,
            to_name=item.name,
            data={
                "pledge_id": pledge_id,
                "amount": amount,
                "currency": item.currency,
                "reason": reasons[0] if len(reasons) == 1 else "several",
                "reasons": reasons,
                "method": method,
                "reference": reference,
            },
            pledge_id=pledge_id,
        )
    return Money(amount, item.currency)


def mark_bank_refund(
    ledger: Ledger, pledge_id: int, *, reference: str, now: str, dry_run: bool = False
) -> RefundDue:
    """The treasurer paid a bank refund: record it (refuses card payments)."""
    reference = reference.strip()
    if not reference:
        raise UserInputError("--reference is empty: give the bank transfer's reference")
    with ledger.write(now) as tx:
        status = RemainderStatus.DUE
        items = due(tx.conn, pledge_id)
        if not items:  # sent in a bank file: the treasurer saw it leave before a statement did
            status = RemainderStatus.SENT
            items = due(tx.conn, pledge_id, status=status)
        if not items:
            raise NotFound(f"pledge {pledge_id} has no refund due: see `fundraiser refunds list`")
        item = items[0]
        if item.method == CARD:
            raise UserInputError(
                f"pledge {pledge_id} was paid by card: refund it through Stripe "
                "(`fundraiser refunds send`), not by hand"
            )
        if dry_run:
            if item.hold:
                raise UserInputError(f"pledge {pledge_id}'s refund is on hold: {item.hold}")
            return item
        record_refund(tx, pledge_id, reference=reference, method=BANK, status=status)
        return item


BANK_CSV_COLUMNS = (
    "pledge_id",
    "name",
    "amount",
    "currency",
    "refund_reference",
    "paid_with_reference",
    "reasons",
)


def write_bank_csv(items: list[RefundDue], path: Path) -> int:
    """The bank refunds to pay now (none on hold), one row per pledge (0600; csvsafe)."""
    rows = [i for i in items if i.method == BANK and not i.hold]
    return csvsafe.write_file(
        path,
        BANK_CSV_COLUMNS,
        (
            [
                i.pledge_id,
                i.name,
                csvsafe.Plain(i.total.plain()),
                csvsafe.Plain(i.currency),
                csvsafe.Plain(i.transfer_reference),
                i.pledge_reference or "",
                " ".join(sorted({line.reason for line in i.lines})),
            ]
            for i in rows
        ),
    )


# -- where a bank refund goes ---------------------------------------------------


def set_account(ledger: Ledger, pledge_id: int, account: Account, *, now: str) -> bool:
    """Record (or replace) the account a bank payer gave for their refund.

    The journal notes that an account was given, and its scheme, never its number
    or holder. True when one was there before (replaced).
    """
    with ledger.write(now) as tx:
        row = tx.execute(
            sa.select(
                schema.pledges.c.id,
                schema.pledges.c.source,
                schema.pledges.c.stripe_intent,
                schema.pledges.c.stripe_charge,
            ).where(schema.pledges.c.id == pledge_id)
        ).first()
        if row is None:
            raise NotFound(f"pledge {pledge_id} does not exist: see `fundraiser pledges list`")
        if method_of(row) == CARD:
            raise UserInputError(
                f"pledge {pledge_id} was paid by card: its refunds go back to the card "
                "through Stripe, so no bank account is needed"
            )
        values = {
            "holder": account.holder,
            "iban": account.iban,
            "bic": account.bic,
            "sort_code": account.sort_code,
            "account_number": account.number,
            "updated_at": tx.now,
        }
        table = schema.refund_accounts
        replaced = tx.update(table, {"pledge_id": pledge_id}, **values) == 1
        if not replaced:
            fresh = {"pledge_id": pledge_id, "created_at": tx.now, **values}
            tx.insert(table, list(fresh), [tuple(fresh.values())])
        tx.record(
            "refund.account",
            f"pledge:{pledge_id}",
            {"pledge": pledge_id, "scheme": account.scheme, "replaced": replaced},
        )
        return replaced


def accounts_for(conn: Connection, pledge_ids: list[int]) -> dict[int, Account]:
    """The refund accounts given for these pledges."""
    table = schema.refund_accounts
    found: dict[int, Account] = {}
    for start in range(0, len(pledge_ids), 500):
        chunk = pledge_ids[start : start + 500]
        for r in conn.execute(sa.select(table).where(table.c.pledge_id.in_(chunk))):
            found[r.pledge_id] = Account(r.holder, r.iban, r.bic, r.sort_code, r.account_number)
    return found


def mark_sent(tx: Tx, items: list[RefundDue], batch: str) -> int:
    """Mark these pledges' due remainders as sent in the payment file `batch`."""
    ids = [line.id for item in items for line in item.lines]
    done = tx.update(
        schema.remainders,
        {"id": ids, "status": RemainderStatus.DUE.value},
        status=RemainderStatus.SENT.value,
        sent_at=tx.now,
        payout_batch=batch,
    )
    if done != len(ids):
        raise FundraiserError("the refunds changed while the payment file was made: try again")
    tx.record(
        "refund.sent",
        f"batch:{batch}",
        {
            "batch": batch,
            "pledges": [item.pledge_id for item in items],
            "remainders": ids,
            "amount": sum(item.total.amount for item in items),
        },
    )
    return done


def sent_in(conn: Connection, batch: str) -> list[RefundDue]:
    """What a payment file held and is not yet seen paid, to write it again (it may be lost)."""
    query = sa.select(schema.remainders.c.id).where(schema.remainders.c.payout_batch == batch)
    ids = set(conn.execute(query).scalars())
    found = []
    for item in due(conn, status=RemainderStatus.SENT):
        lines = tuple(line for line in item.lines if line.id in ids)
        if lines:
            found.append(replace(item, lines=lines))
    return found
