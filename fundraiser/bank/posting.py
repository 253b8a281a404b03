"""A statement's import, posted: the plan (fundraiser.bank.receipts) written to the
ledger in one transaction, journalled as one entry: the bank lines kept, pledges
paid in full or in part, remainders owed back, refunds seen leaving, receipts
queued with `--notify`. A dry run plans and writes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import sqlalchemy as sa

from fundraiser import offline, outbox, remainders
from fundraiser.bank.receipts import (
    AWAITING,
    REMITTANCE_KEPT,
    ImportReport,
    Outcome,
    Pledges,
    PledgeState,
    plan,
    shown,
)
from fundraiser.bank.statement import Statement
from fundraiser.errors import UserInputError
from fundraiser.ledger import Ledger, Tx, schema
from fundraiser.money import Money
from fundraiser.pledges import TRANSITIONS, Status

#: An outcome's text by the outcome: `.value` is a property, looked up 50,000 times.
_TEXT: dict[Outcome | None, str] = {None: "", **{o: o.value for o in Outcome}}
_STATUS_TEXT = {s: s.value for s in Status}


def import_statement(
    ledger: Ledger,
    statement: Statement | Callable[[], Statement],
    *,
    currency: str,
    accept: Mapping[str, int] | None = None,
    accept_suggested: bool = False,
    dry_run: bool = False,
    notify: bool = False,
    now: str | None = None,
) -> ImportReport:
    """Place every line of the statement; with `dry_run`, only say what would happen.

    `statement` may be a callable that gives it (a file being read in another
    process): the ledger's pledges are read meanwhile, then it is called.
    """
    if dry_run:
        with ledger.read(bulk_work=True) as conn:
            pledges = Pledges.read(conn)
            report, _ = plan(
                conn,
                statement if isinstance(statement, Statement) else statement(),
                currency=currency,
                accept=accept,
                accept_suggested=accept_suggested,
                pledges=pledges,
            )
        return report
    with ledger.write(now, bulk_work=True) as tx:
        pledges = Pledges.read(tx.conn)
        report, moved = plan(
            tx.conn,
            statement if isinstance(statement, Statement) else statement(),
            currency=currency,
            accept=accept,
            accept_suggested=accept_suggested,
            pledges=pledges,
        )
        report.dry_run = False
        _write(tx, report, moved, notify)
        return report


def _next_id(tx: Tx, column: sa.Column[Any]) -> int:
    return int(tx.execute(sa.select(sa.func.coalesce(sa.func.max(column), 0))).scalar() or 0) + 1


def _write(tx: Tx, report: ImportReport, pledges: dict[int, PledgeState], notify: bool) -> None:
    statement = report.statement
    recorded = [p for p in report.placed if p.outcome is not None]
    if not recorded:
        return  # nothing new: a statement imported again changes nothing, journal included
    # Remainders first: the transactions name them. Numbered here, as every
    # journalled insert is (Tx.insert): the journal names each row it makes.
    remainder_rows = []
    remainder_of: dict[int, int] = {}
    owed = []
    next_remainder = _next_id(tx, schema.remainders.c.id)
    refunded = {p.pledge_id for p in recorded if p.refund and p.pledge_id is not None}
    person = Pledges.personal(tx.conn, refunded)
    for item in recorded:
        if item.refund and item.pledge_id is not None:
            pledge = pledges[item.pledge_id]
            reason = (
                remainders.UNWANTED if item.outcome is Outcome.UNWANTED else remainders.OVERPAID
            )
            new_id, next_remainder = next_remainder, next_remainder + 1
            owed.append(
                (new_id, pledge.id, person[pledge.id][0], item.refund, pledge.currency, reason)
            )
            remainder_rows.append((new_id, pledge.id, item.refund, reason))
            remainder_of[id(item)] = new_id
    # One insert for them all: one change in the journal, not one per remainder.
    tx.insert(
        schema.remainders,
        ("id", "pledge_id", "person_key", "amount", "currency", "reason"),
        owed,
        {"status": remainders.RemainderStatus.DUE.value, "created_at": tx.now},
    )
    # The transactions: new ones inserted, stored unmatched ones now accepted updated.
    next_row = _next_id(tx, schema.bank_transactions.c.id)
    new_rows = []
    for item in recorded:
        line = item.line
        remittance = line.text[:REMITTANCE_KEPT] if item.outcome is Outcome.UNMATCHED else None
        if item.stored_id is not None:
            item.row_id = item.stored_id
            done = tx.update(
                schema.bank_transactions,
                {"id": item.stored_id, "outcome": Outcome.UNMATCHED.value},
                outcome=item.outcome.value if item.outcome else None,
                pledge_id=item.pledge_id,
                applied=item.applied,
                remainder_id=remainder_of.get(id(item)),
                remittance=None,
                updated_at=tx.now,
            )
            if done != 1:
                raise UserInputError(
                    f"transaction {line.bank_id} changed while we worked: import again"
                )
            continue
        item.row_id = next_row
        next_row += 1
        new_rows.append(
            (
                item.row_id,
                line.bank_id,
                line.booked_on,
                line.amount,
                line.currency,
                _TEXT[item.outcome],
                item.pledge_id,
                item.applied,
                remainder_of.get(id(item)),
                remittance,
            )
        )
    # What every line of one statement shares is given once, not copied into 50,000 rows.
    tx.insert(
        schema.bank_transactions,
        (
            "id",
            "bank_id",
            "booked_on",
            "amount",
            "currency",
            "outcome",
            "pledge_id",
            "applied",
            "remainder_id",
            "remittance",
        ),
        new_rows,
        {
            "account": statement.account,
            "source": statement.format,
            "imported_at": tx.now,
            "updated_at": tx.now,
        },
    )
    moved = _move_pledges(tx, pledges)
    # The rows themselves are in the changes this entry (or the parts before
    # it) carries: the entry adds only what the import was, in sums.
    tx.record(
        "bank.import",
        f"bank:{recorded[0].row_id}-{recorded[-1].row_id}",
        {
            "source": statement.format,
            "lines": len(recorded),
            "accepted": sum(p.stored_id is not None for p in recorded),
            "applied": sum(p.applied for p in recorded),
            "remainders": len(remainder_rows),
            "to_refund": sum(r[2] for r in remainder_rows),
            "pledges": moved,
        },
    )
    for item in recorded:
        if item.outcome is Outcome.REFUND and item.pledge_id is not None:
            remainders.record_refund(
                tx,
                item.pledge_id,
                reference=f"bank transaction {item.row_id}",
                method=remainders.BANK,
                remainder_ids=list(item.remainder_ids),
                status=remainders.RemainderStatus.SENT,
                mail=notify,
            )
    if notify:
        paid = [
            p for p in pledges.values() if p.status is Status.PAID and p.first_status is AWAITING
        ]
        person = Pledges.personal(tx.conn, [p.id for p in paid])
        rows = [
            offline.receipt(
                p.id,
                email=person[p.id][2],
                name=person[p.id][1],
                paid=Money(p.paid, p.currency),
                now=tx.now,
            )
            for p in paid
        ]
        report.queued_mail = outbox.queue_many(tx, rows)


def _move_pledges(tx: Tx, pledges: dict[int, PledgeState]) -> int:
    """Write every pledge this import changed, guarded on what was read; how many."""
    # In id order: the updates walk the table's pages once, not at random.
    changed = [
        p
        for _, p in sorted(pledges.items())
        if (p.status, p.paid) != (p.first_status, p.first_paid)
    ]
    rows = []
    for p in changed:
        if p.status is not p.first_status and p.status not in TRANSITIONS[p.first_status]:
            raise UserInputError(
                f"pledge {p.id} cannot become {p.status.value}"
            )  # pragma: no cover
        if p.status is Status.PAID:
            reason = "bank transfer received"
            paid_at: str | None = tx.now
        else:
            reason = (
                f"part paid by bank transfer: {shown(Money(p.paid, p.currency))} of "
                f"{shown(Money(p.amount, p.currency))} received"
            )
            paid_at = None
        rows.append(
            (
                _STATUS_TEXT[p.status],
                p.paid,
                paid_at,
                reason,
                tx.now,
                p.id,
                _STATUS_TEXT[p.first_status],
                p.first_paid,
            )
        )
    if rows:
        # Each guarded on what was read: a pledge another writer moved is not overwritten.
        done = tx.update_rows(
            schema.pledges,
            ("id", "status", "paid_amount"),
            ("status", "paid_amount", "paid_at", "status_reason", "updated_at"),
            rows,
        )
        if done != len(rows):
            raise UserInputError("pledges changed while the statement was imported: import again")
    return len(changed)
