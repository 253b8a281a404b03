"""Refund a paid pledge, never more than was paid, whatever Stripe would accept.

The refund is made while the ledger's write lock is held, after re-reading the
charge's refunds from Stripe: two refund commands cannot both spend the same
headroom, and a refund that reached Stripe before a crash is counted on rerun.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

import stripe

from fundraiser import remainders
from fundraiser.errors import NotFound, UserInputError
from fundraiser.ledger import Ledger, schema
from fundraiser.money import Money
from fundraiser.payments.client import as_dict, opts, stripe_errors
from fundraiser.payments.events import (
    Context,
    apply_charge,
    cuts_into_shares,
    flag_shares,
    pledge_row,
    queue_refund_mail,
)
from fundraiser.pledges import HELD, Source, Status
from fundraiser.remainders import RemainderStatus, record_refund


@dataclass(frozen=True)
class Refunded:
    pledge_id: int
    refund_id: str
    amount: Money
    refunded_total: Money
    paid: Money
    status: Status


def refund(
    ledger: Ledger,
    client: stripe.StripeClient,
    ctx: Context,
    pledge_id: int,
    amount: Money | None = None,
    *,
    now: str | None = None,
) -> Refunded:
    """Refund `amount` (default: all that is left) of a pledge paid by card."""
    v1 = client.v1
    with ledger.write(now) as tx:
        row = pledge_row(tx.conn, id=pledge_id)
        if row is None:
            raise NotFound(f"pledge {pledge_id} does not exist: see `fundraiser pledges list`")
        current = Status(row.status)
        if current not in HELD or not row.stripe_charge:
            how = "by card through Stripe" if row.source == Source.ONLINE else "by card"
            raise UserInputError(
                f"pledge {pledge_id} is {current.value}: only a pledge paid {how} can be "
                "refunded here (return bank transfers by bank transfer)"
            )
        if amount is not None and amount.currency != row.currency:
            raise UserInputError(f"--amount must be in {row.currency}")
        with stripe_errors(f"reading pledge {pledge_id}'s refunds"):
            charge = as_dict(v1.charges.retrieve(row.stripe_charge))
            made = list(
                v1.refunds.list(
                    params={"charge": row.stripe_charge, "limit": 100}
                ).auto_paging_iter()
            )
        in_stripe = sum(int(r.amount) for r in made if r.status in ("succeeded", "pending"))
        paid = int(row.paid_amount)
        already = max(int(row.refunded_amount), in_stripe, int(charge.get("amount_refunded") or 0))
        left = paid - already
        wanted = left if amount is None else amount.amount
        if wanted <= 0:
            raise UserInputError(f"--amount must be more than zero (pledge {pledge_id})")
        if wanted > left:
            raise UserInputError(
                f"pledge {pledge_id} has {Money(left, row.currency).format()} left to refund "
                f"(paid {Money(paid, row.currency).format()}, refunded "
                f"{Money(already, row.currency).format()}): refund at most that"
            )
        number = len(made) + 1
        with stripe_errors(f"refunding pledge {pledge_id}"):
            made_now = v1.refunds.create(
                params={
                    "charge": row.stripe_charge,
                    "amount": wanted,
                    "metadata": ctx.keys.metadata(pledge_id, refund=number),
                },
                options=opts(ctx.keys.key(pledge_id, f"refund-{number}")),
            )
        total = already + wanted
        # Apply it as Stripe's charge.refunded would: the same code, so the
        # webhook that follows finds nothing left to do.
        apply_charge(
            tx,
            ctx,
            {
                "id": row.stripe_charge,
                "payment_intent": row.stripe_intent,
                "amount_refunded": total,
                "livemode": row.livemode,
            },
        )
        queue_refund_mail(tx, row, str(made_now.id), wanted)
        if cuts_into_shares(tx, pledge_id, total):
            flag_shares(tx, pledge_id, "refunded")
        fresh = tx.execute(schema.pledges.select().where(schema.pledges.c.id == pledge_id)).one()
    return Refunded(
        pledge_id,
        str(made_now.id),
        Money(wanted, row.currency),
        Money(int(fresh.refunded_amount), row.currency),
        Money(paid, row.currency),
        Status(fresh.status),
    )


def refund_due_remainders(
    ledger: Ledger, *, environ: Mapping[str, str] | None = None, now: str | None = None
) -> tuple[int, Money | None]:
    """Refund every card remainder due, one idempotent Stripe refund each.

    Returns how many were refunded and their total (None when there were none).
    A rerun after a crash finds the refunds already made (refund_remainder).
    """
    with ledger.read() as conn:
        lines = remainders.card_lines_due(conn)
    for _item, line in lines:
        refund_remainder(ledger, line.id, environ=environ, now=now)
    if not lines:
        return 0, None
    currency = lines[0][0].currency
    return len(lines), Money(sum(line.amount for _, line in lines), currency)


def refund_remainder(
    ledger: Ledger,
    remainder_id: int,
    *,
    environ: Mapping[str, str] | None = None,
    now: str | None = None,
) -> str:
    """Refund one remainder (money that never became shares) to the card it came from.

    Held under the ledger's write lock like `refund`. Stripe's refunds for the
    charge are read first: a refund already made for this remainder (before a
    crash) is recorded, not made again; the emulator ignores idempotency keys,
    so the metadata is what we trust. Returns the Stripe refund id.
    """
    from fundraiser.payments.client import client_from_env
    from fundraiser.stripekeys import ledger_keys

    client = client_from_env(os.environ if environ is None else environ)
    keys = ledger_keys(ledger)
    v1 = client.v1
    with ledger.write(now) as tx:
        rem = tx.execute(
            schema.remainders.select().where(schema.remainders.c.id == remainder_id)
        ).first()
        if rem is None or rem.status != RemainderStatus.DUE:
            raise NotFound(
                f"remainder {remainder_id} is not due for refund: see `fundraiser refunds list`"
            )
        pledge_id = int(rem.pledge_id)
        row = pledge_row(tx.conn, id=pledge_id)
        if row is None or not row.stripe_charge:
            raise UserInputError(
                f"pledge {pledge_id} was not paid by card: return remainder {remainder_id} by "
                "bank transfer and record it with `fundraiser refunds mark-paid`"
            )
        with stripe_errors(f"reading pledge {pledge_id}'s refunds"):
            made = list(
                v1.refunds.list(
                    params={"charge": row.stripe_charge, "limit": 100}
                ).auto_paging_iter()
            )
        mine = [
            r
            for r in made
            if keys.owns(as_dict(r).get("metadata")) == pledge_id
            and (as_dict(r).get("metadata") or {}).get("remainder") == str(remainder_id)
            and r.status in ("succeeded", "pending")
        ]
        in_stripe = sum(int(r.amount) for r in made if r.status in ("succeeded", "pending"))
        if mine:
            refund_id = str(mine[0].id)
        else:
            left = int(row.paid_amount) - max(int(row.refunded_amount), in_stripe)
            if int(rem.amount) > left:
                raise UserInputError(
                    f"pledge {pledge_id} has {Money(left, row.currency).format()} left to "
                    f"refund, less than remainder {remainder_id}: check it in Stripe"
                )
            with stripe_errors(f"refunding remainder {remainder_id} of pledge {pledge_id}"):
                created = v1.refunds.create(
                    params={
                        "charge": row.stripe_charge,
                        "amount": int(rem.amount),
                        "metadata": keys.metadata(pledge_id, remainder=remainder_id),
                    },
                    options=opts(keys.remainder_refund(pledge_id, remainder_id)),
                )
            refund_id = str(created.id)
            in_stripe += int(rem.amount)
        record_refund(
            tx,
            pledge_id,
            reference=refund_id,
            method="card",
            remainder_ids=[remainder_id],
            bump_refunded=False,
            mail=False,
        )
        # Stripe's cumulative total, never lowering ours: a webhook that already
        # counted this refund (after a crash) is not counted twice.
        refunded = min(max(int(row.refunded_amount), in_stripe), int(row.paid_amount))
        tx.update(schema.pledges, {"id": pledge_id}, refunded_amount=refunded, updated_at=tx.now)
        tx.record(
            "pledge.refund",
            f"pledge:{pledge_id}",
            {"id": pledge_id, "refunded": refunded, "paid": int(row.paid_amount)},
        )
        # The same key as the charge.refunded webhook's, so the backer gets one mail.
        queue_refund_mail(tx, row, refund_id, int(rem.amount))
    return refund_id
