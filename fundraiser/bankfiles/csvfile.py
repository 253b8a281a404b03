"""A bank's CSV export, read by the column mapping in campaign.toml's [bank.csv].

Every column the mapping names must be in the header (a bank that renames a
column must not make transfers vanish); amounts in major units with the
mapping's decimal mark, a minus sign or brackets for money out, or credit and
debit in two columns.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import datetime

from fundraiser.bank.statement import (
    Line,
    Statement,
    StatementError,
    fail,
    one_line,
    problem,
    with_ids,
)
from fundraiser.bankfiles import decode
from fundraiser.config import BankCsv, did_you_mean
from fundraiser.errors import MoneyError, Problem
from fundraiser.money import parse

_GROUPING = re.compile(r"[\s'\u00a0\u202f]")


def _amount(raw: str, settings: BankCsv, currency: str) -> int:
    text = _GROUPING.sub("", raw.strip())
    negative = False
    if text.startswith("(") and text.endswith(")"):
        negative, text = True, text[1:-1]
    if text.startswith("-"):
        negative, text = True, text[1:]
    elif text.startswith("+"):
        text = text[1:]
    elif text.endswith("-"):
        negative, text = True, text[:-1]
    other = "," if settings.decimal == "." else "."
    text = text.replace(other, "").replace(settings.decimal, ".")
    minor = parse(text, currency, allow_zero=True).amount
    return -minor if negative else minor


def read(
    name: str, data: bytes, settings: BankCsv, currency: str, encoding: str | None
) -> Statement:
    text = decode(name, data, encoding or settings.encoding)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=settings.delimiter)
    try:
        header = [h.strip() for h in next(reader)]
    except StopIteration:
        raise fail(
            name, "line 1", "has no header", "export the statement with its header"
        ) from None
    wanted = settings.columns()
    missing = [(key, column) for key, column in wanted.items() if column not in header]
    if missing:
        wrong: list[Problem] = []
        for key, column in missing:
            guess = did_you_mean(column, header)
            fix = (
                f"did you mean {guess!r}? set bank.csv.{key.split('[')[0]} to it"
                if guess
                else f"set bank.csv.{key.split('[')[0]} in campaign.toml to one of the file's "
                f"columns: {', '.join(header)}"
            )
            wrong.append(
                problem(name, "line 1 (the header)", f"has no column {column!r} ({key})", fix)
            )
        raise StatementError(f"{name} does not match [bank.csv]:", wrong)
    at = {column: header.index(column) for column in wanted.values()}
    lines: list[Line] = []
    problems: list[Problem] = []
    for row in reader:
        number = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))

        def cell(column: str | None, row: list[str] = row) -> str:
            return row[at[column]].strip() if column else ""

        where = f"line {number}"
        try:
            booked = datetime.strptime(cell(settings.date), settings.date_format).date()
        except ValueError:
            problems.append(
                problem(
                    name,
                    f"{where}, column {settings.date!r}",
                    f"{cell(settings.date)!r} is not a date in the form {settings.date_format}",
                    'set bank.csv.date_format to the file\'s form, e.g. "%d/%m/%Y"',
                )
            )
            continue
        ccy = (cell(settings.currency) or currency).upper()
        try:
            if settings.amount:
                amount = _amount(cell(settings.amount), settings, ccy)
            else:
                credit = cell(settings.credit)
                debit = cell(settings.debit)
                amount = (_amount(credit, settings, ccy) if credit else 0) - (
                    abs(_amount(debit, settings, ccy)) if debit else 0
                )
        except MoneyError as exc:
            column = settings.amount or settings.credit or ""
            problems.append(
                problem(
                    name,
                    f"{where}, column {column!r}",
                    str(exc),
                    f"check bank.csv.decimal ({settings.decimal!r}) matches the file",
                )
            )
            continue
        if amount == 0:
            continue
        remittance = " ".join(cell(c) for c in settings.text)
        lines.append(
            Line(
                where,
                cell(settings.id),
                booked.isoformat(),
                amount,
                ccy,
                one_line(remittance),
                one_line(cell(settings.name)),
            )
        )
    if problems:
        raise StatementError(f"{name} has {len(problems)} line(s) that cannot be read:", problems)
    # A CSV names no account currency: the campaign's, unless every line says another.
    currencies = {line.currency for line in lines}
    statement_currency = currencies.pop() if len(currencies) == 1 else currency
    return Statement(
        name, "csv", settings.account, statement_currency, with_ids(settings.account, lines)
    )
