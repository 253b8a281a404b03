"""The books as CSV: one row per posting, every cell safe to open in a spreadsheet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fundraiser import csvsafe
from fundraiser.books.movements import BookData, accounts
from fundraiser.money import Money

HEADER = (
    "date",
    "transaction",
    "kind",
    "description",
    "account",
    "amount",
    "currency",
    "pledge",
    "register_entry",
    "bank_transaction",
    "remainder",
)


def rows(books: BookData) -> Iterator[tuple[object, ...]]:
    chart = dict(accounts(books.chart))
    cur = books.currency
    for m in books.movements:
        for p in m.postings:
            text = Money(abs(p.amount), cur).plain()
            yield (
                csvsafe.Plain(m.day.isoformat()),
                m.ref,
                m.kind,
                m.narration,
                chart[p.account],
                csvsafe.Plain(f"-{text}" if p.amount < 0 else text),
                cur,
                m.links.get("pledge", ""),
                m.links.get("register_entry", ""),
                m.links.get("bank_transaction", ""),
                m.links.get("remainder", ""),
            )


def write(books: BookData, path: Path) -> int:
    return csvsafe.write_file(path, HEADER, rows(books))
