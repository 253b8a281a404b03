"""A bank statement as values: one `Line` per transfer, whatever the file's format.

The parsers in `bankfiles/` build these; the domain never sees XML, MT940
tags or CSV columns. A line without an id of the bank's own gets one made
from its contents and its place among identical lines, so an overlapping
statement, which repeats the same day's lines in the same order, gives the
same ids again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from fundraiser.errors import Problem, ProblemsError

FORMATS = ("camt053", "mt940", "ofx", "csv")


class StatementError(ProblemsError):
    """A statement that cannot be read or does not fit the campaign; nothing was changed."""


class Line(NamedTuple):
    """One booked transfer. `amount` is signed, in minor units: money in is positive.

    A named tuple, not a dataclass: a big statement is 50,000 of them, made in
    the reader and again in the importer (a frozen dataclass sets each field
    through object.__setattr__, several times slower)."""

    where: str  # how a person finds it in the file: "line 14", "Ntry[3]/NtryDtls/TxDtls[2]"
    bank_id: str  # the bank's id within the account ("" when the file gives none)
    booked_on: str  # ISO date
    amount: int
    currency: str
    text: str  # the remittance information (the payer's reference), one line
    payer: str = ""  # the payer's (or payee's) name: for suggestions only, never stored


@dataclass(frozen=True)
class Statement:
    path: str  # the file's name, for messages
    format: str
    account: str  # the account's identifier (IBAN, number) as the bank writes it
    currency: str
    lines: tuple[Line, ...]
    notes: tuple[str, ...] = ()  # what was read but not taken (pending entries...)


def problem(path: str, where: str, message: str, fix: str) -> Problem:
    return Problem(f"{path}: {where}" if where else path, message, fix)


def fail(path: str, where: str, message: str, fix: str) -> StatementError:
    return StatementError(f"{path} cannot be imported:", [problem(path, where, message, fix)])


def one_line(text: str, limit: int = 500) -> str:
    """Remittance text on one line, spaces collapsed, of a sane length."""
    return " ".join(text.split())[:limit]


def with_ids(account: str, lines: Iterable[Line]) -> tuple[Line, ...]:
    """Give every line without a bank id one made from its contents and occurrence."""
    seen: dict[str, int] = {}
    done = []
    for line in lines:
        if line.bank_id:
            done.append(line)
            continue
        material = "\x1f".join(
            (account, line.booked_on, str(line.amount), line.currency, line.text.casefold())
        )
        digest = hashlib.sha256(material.encode("utf-8")).hexdigest()[:24]
        count = seen[digest] = seen.get(digest, 0) + 1
        done.append(line._replace(bank_id=f"derived:{digest}:{count}"))
    return tuple(done)


def check_currency(statement: Statement, expected: str) -> None:
    """Every line in the campaign's currency, or StatementError naming each other one."""
    if statement.currency != expected:
        raise fail(
            statement.path,
            "the account's currency",
            f"the statement is in {statement.currency} and the campaign in {expected}",
            f"import the statement of the co-op's {expected} account",
        )
    others = [
        problem(
            statement.path,
            line.where,
            f"is in {line.currency}, the campaign in {expected}",
            "record this transfer by hand (`fundraiser pledges mark-paid`) and remove it "
            "from the file, or ask the bank for the account's statement in "
            f"{expected}",
        )
        for line in statement.lines
        if line.currency != expected
    ]
    if others:
        raise StatementError(f"{statement.path} cannot be imported:", others)
