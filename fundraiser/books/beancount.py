"""The books as a beancount file: `bean-check` (beancount's loader) takes it without errors.

Each account is opened on the books' first day in the campaign's currency;
each movement is a transaction whose metadata names the ledger record it
comes from. At the end, `balance` assertions state what the ledger's own
tables say (share capital from the register, refunds owed, unmatched bank
money), so the loader itself proves the books agree with the ledger.
"""

from __future__ import annotations

from datetime import timedelta

from fundraiser.books.movements import BookData, accounts
from fundraiser.money import Money


def _amount(minor: int, currency: str) -> str:
    text = Money(abs(minor), currency).plain()
    return f"-{text}" if minor < 0 else text


def _quoted(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(books: BookData, title: str) -> str:
    cur = books.currency
    chart = dict(accounts(books.chart))
    out = [
        f"; The co-op's money movements from the fundraiser ledger, in {cur}.",
        "; Each transaction's `ref` names its ledger record: pledge:ID, bank-txn:ID,",
        "; remainder:ID or register-entry:ID. Stripe's fees are not in the ledger:",
        f"; book them against {chart['fees']} from Stripe's fee report.",
        f"option {_quoted('title')} {_quoted(title)}",
        f"option {_quoted('operating_currency')} {_quoted(cur)}",
        "",
    ]
    opened = books.first_day.isoformat()
    for _, name in accounts(books.chart):
        out.append(f"{opened} open {name} {cur}")
    out.append("")
    for m in books.movements:
        out.append(f"{m.day.isoformat()} * {_quoted(m.narration)}")
        out.append(f"  ref: {_quoted(m.ref)}")
        for key, value in sorted(m.links.items()):
            out.append(f"  {key.replace('_', '-')}: {_quoted(value)}")
        for p in m.postings:
            out.append(f"  {chart[p.account]:<40} {_amount(p.amount, cur):>14} {cur}")
        out.append("")
    last = max([m.day for m in books.movements], default=books.first_day)
    check = (last + timedelta(days=1)).isoformat()
    out.append("; What the ledger's own tables say, checked by beancount.")
    for account, total in sorted(books.totals.items()):
        out.append(f"{check} balance {chart[account]:<40} {_amount(total, cur):>14} {cur}")
    return "\n".join(out) + "\n"
