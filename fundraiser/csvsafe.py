"""CSV that opens safely in a spreadsheet: no cell is read as a formula.

Excel, LibreOffice and Google Sheets run a cell that starts with = + - @ (and,
in some versions, a tab or carriage return) as a formula; a backer's name
such as `=HYPERLINK(...)` would then run on the treasurer's machine (OWASP's
"CSV injection"). Such cells get a leading apostrophe, which every one of
them shows as text and drops from the value. Numbers we write ourselves
(amounts like -12.50) are passed as `Plain` so they stay numbers.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


class Plain(str):
    """A value we formatted ourselves (an amount, a date): written as it is."""

    __slots__ = ()


def cell(value: Any) -> str:
    """One cell's text, neutralised when a spreadsheet would run it."""
    if value is None:
        return ""
    if isinstance(value, Plain | int):
        return str(value)
    text = str(value)
    if text.startswith(_TRIGGERS):
        return "'" + text
    return text


def row(values: Iterable[Any]) -> list[str]:
    return [cell(v) for v in values]


def write(handle: IO[str], header: Sequence[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write a header and rows to an open text handle; the number of rows."""
    writer = csv.writer(handle, lineterminator="\r\n")
    writer.writerow(row(header))
    count = 0
    for values in rows:
        writer.writerow(row(values))
        count += 1
    return count


def write_file(path: Path, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write a CSV file whole or not at all (through a temporary file beside it)."""
    tmp = path.with_name(path.name + ".part")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        count = write(handle, header, rows)
    tmp.replace(path)
    return count
