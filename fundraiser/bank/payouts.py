"""Bank refunds paid by a payment file: which go in, and marking them sent.

A file holds the bank refunds due now (none on hold) to payers who gave an
account; the rest are listed with the reason and left due. Its remainders
become `sent` in the same transaction that names the file's message id
(its batch), so running the command again puts no refund in a second file;
`again` rewrites a lost file with the same id, which a bank refuses to pay
twice. A later statement import sees each payout leave (`REFUND-P<id>`) and
marks it refunded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import remainders
from fundraiser.accounts import Account
from fundraiser.errors import NotConfigured, UserInputError
from fundraiser.ledger import Ledger, schema
from fundraiser.money import Money
from fundraiser.remainders import RefundDue

#: The schemes a payment file can carry, by the campaign's currency.
SCHEMES = {"EUR": "sepa", "GBP": "uk"}


@dataclass(frozen=True)
class Payout:
    item: RefundDue
    account: Account

    @property
    def reference(self) -> str:
        return self.item.transfer_reference


@dataclass
class PayoutPlan:
    batch: str
    currency: str
    scheme: str
    payouts: list[Payout] = field(default_factory=list)
    skipped: list[tuple[RefundDue, str]] = field(default_factory=list)

    @property
    def total(self) -> Money:
        return Money(sum(p.item.total.amount for p in self.payouts), self.currency)


def scheme_for(currency: str) -> str:
    found = SCHEMES.get(currency)
    if found is None:
        raise UserInputError(
            f"bank refund files are made for EUR (SEPA) and GBP (UK bulk payments), and the "
            f"campaign is in {currency}: pay these refunds by hand, then record each with "
            "`fundraiser refunds mark-paid PLEDGE --reference REF`"
        )
    return found


def _usable(account: Account, scheme: str) -> tuple[Account | None, str]:
    """The account in the scheme's terms, or why it cannot be paid in this file."""
    if scheme == "sepa":
        if account.iban:
            return account, ""
        return None, "gave a UK sort code and account, not an IBAN: pay this one by hand"
    if account.sort_code and account.number:
        return account, ""
    if account.iban and account.iban.startswith("GB") and len(account.iban) == 22:
        # A UK IBAN holds the sort code and account: GBkk BANK SSSSSS AAAAAAAA.
        return Account(account.holder, sort_code=account.iban[8:14], number=account.iban[14:]), ""
    return None, "gave a foreign IBAN: pay this one by hand (an international payment)"


def _next_batch(conn: Connection, today: str) -> str:
    prefix = f"REFUNDS-{today.replace('-', '')}-"
    used = conn.execute(
        sa.select(schema.remainders.c.payout_batch)
        .where(schema.remainders.c.payout_batch.like(prefix + "%"))
        .distinct()
    ).scalars()
    numbers = [int(b.rsplit("-", 1)[1]) for b in used if b.rsplit("-", 1)[1].isdigit()]
    return f"{prefix}{max(numbers, default=0) + 1}"


def plan(conn: Connection, currency: str, today: str) -> PayoutPlan:
    """The bank refunds due now, split into those the file can pay and those it cannot."""
    scheme = scheme_for(currency)
    result = PayoutPlan(_next_batch(conn, today), currency, scheme)
    items = [i for i in remainders.due(conn) if i.method == remainders.BANK]
    accounts = remainders.accounts_for(conn, [i.pledge_id for i in items])
    for item in items:
        if item.hold:
            result.skipped.append((item, f"on hold: {item.hold}"))
            continue
        if item.currency != currency:
            result.skipped.append((item, f"is in {item.currency}: pay it by hand"))
            continue
        given = accounts.get(item.pledge_id)
        if given is None:
            result.skipped.append(
                (
                    item,
                    "gave no account: ask them for it, then `fundraiser refunds set-account "
                    f"{item.pledge_id} --iban ...` (or --sort-code and --account-number)",
                )
            )
            continue
        usable, why = _usable(given, scheme)
        if usable is None:
            result.skipped.append((item, why))
            continue
        result.payouts.append(Payout(item, usable))
    return result


def again(conn: Connection, batch: str, currency: str) -> PayoutPlan:
    """A file already marked sent, to write it again (refunds seen paid since are left out)."""
    scheme = scheme_for(currency)
    items = remainders.sent_in(conn, batch)
    if not items:
        raise UserInputError(
            f"no refund waits in batch {batch!r}: see `fundraiser refunds list` for the batches"
        )
    accounts = remainders.accounts_for(conn, [i.pledge_id for i in items])
    result = PayoutPlan(batch, currency, scheme)
    for item in items:
        given = accounts.get(item.pledge_id)
        usable, why = _usable(given, scheme) if given else (None, "its account was erased")
        if usable is None:
            result.skipped.append((item, why))
        else:
            result.payouts.append(Payout(item, usable))
    return result


def check_source(coop_iban: str | None, scheme: str) -> None:
    """A SEPA file names the account the money leaves from."""
    if scheme == "sepa" and not coop_iban:
        raise NotConfigured(
            "a SEPA payment file names the co-op's own account: add iban (and bic) to "
            "[bank] in campaign.toml"
        )


def mark_sent(ledger: Ledger, payout_plan: PayoutPlan, *, now: str) -> int:
    """Mark the file's refunds sent, in one transaction (the file is written by the caller)."""
    with ledger.write(now) as tx:
        return remainders.mark_sent(tx, [p.item for p in payout_plan.payouts], payout_plan.batch)
