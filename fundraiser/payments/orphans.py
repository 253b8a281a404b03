"""Money Stripe took for a pledge that is over (cancelled, released, failed).

It should not happen: a pledge's card form is closed at Stripe before the
pledge is cancelled. If it does (a race, a form closed by hand), the money is
never absorbed into a pledge that is over and never ignored either: it is
recorded once in the journal and listed by `fundraiser status` until Stripe
reports the charge refunded (the organizer refunds it from the dashboard).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fundraiser.ledger.reader import Reader, as_reader
from fundraiser.money import Money

# `fundraiser status` lists what is still open through ledger.reader, without SQLAlchemy.
if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from fundraiser.ledger import Tx

TAKEN = "payment.orphaned"
RETURNED = "payment.orphan_refunded"


@dataclass(frozen=True)
class Orphan:
    pledge_id: int
    status: str
    charge: str | None
    amount: Money
    at: str  # when it was recorded

    def describe(self) -> str:
        return (
            f"Stripe took {self.amount.format()} for pledge {self.pledge_id}, which is "
            f"{self.status} (charge {self.charge}, {self.at[:10]}): refund it from Stripe's "
            "dashboard"
        )


def _seen(tx: Tx, action: str, pledge_id: int, key: str, value: str | None) -> bool:
    tx.flush()  # entries a batch holds back (Tx.hold_journal) are read here too
    # The journal's data is canonical JSON, so a field is matched as written.
    found = Reader.over(tx.conn).rows(
        "SELECT 1 FROM journal WHERE action = ? AND subject = ? AND data LIKE ? LIMIT 1",
        (action, f"pledge:{pledge_id}", f"%{json.dumps(key)}:{json.dumps(value)}%"),
    )
    return bool(found)


def record(tx: Tx, row: Any, intent: str | None, charge: str | None, money: Money) -> str | None:
    """Journal the money once; the note for the organizer, or None if known already."""
    if _seen(tx, TAKEN, int(row.id), "intent", intent):
        return None
    data = {"id": row.id, "status": row.status, "intent": intent, "charge": charge}
    tx.record(
        TAKEN, f"pledge:{row.id}", {**data, "amount": money.amount, "currency": money.currency}
    )
    return (
        f"pledge {row.id} is {row.status} but Stripe took {money.format()} "
        f"(charge {charge}): refund it from Stripe's dashboard"
    )


def returned(tx: Tx, row: Any, charge: Mapping[str, Any]) -> bool:
    """Journal that an orphaned charge was refunded in full; True if this changed anything."""
    charge_id = str(charge.get("id") or "")
    if not charge_id or not _seen(tx, TAKEN, int(row.id), "charge", charge_id):
        return False
    if int(charge.get("amount_refunded") or 0) < int(charge.get("amount") or 0):
        return False
    if _seen(tx, RETURNED, int(row.id), "charge", charge_id):
        return False
    tx.record(RETURNED, f"pledge:{row.id}", {"id": row.id, "charge": charge_id})
    return True


def still_open(conn: Reader | Connection) -> list[Orphan]:
    """Orphaned payments not yet reported refunded, oldest first."""
    rows = as_reader(conn).rows(
        "SELECT action, data, at FROM journal WHERE action IN (?, ?) ORDER BY seq",
        (TAKEN, RETURNED),
    )
    returned_charges = {
        json.loads(data)["charge"] for action, data, _ in rows if action == RETURNED
    }
    found = []
    for action, text, at in rows:
        data = json.loads(text)
        if action == TAKEN and data.get("charge") not in returned_charges:
            found.append(
                Orphan(
                    int(data["id"]),
                    str(data["status"]),
                    data.get("charge"),
                    Money(int(data["amount"]), str(data["currency"])),
                    at,
                )
            )
    return found
