"""CSV that opens safely in a spreadsheet: no cell is read as a formula.

Excel, LibreOffice and Google Sheets run a cell that starts with = + - @ (and,
in some versions, a tab or carriage return) as a formula; a backer's name
such as `=HYPERLINK(...)` would then run on the treasurer's machine (OWASP's
"CSV injection"). Such cells get a leading apostrophe (OWASP's advice): each
of them then reads the cell as text, never as a formula. Numbers we write ourselves
(amounts like -12.50) are passed as `Plain` so they stay numbers: what is
neutralised is text that came from people, not our own columns.

Also neutralised, as cheap precautions: the same characters after leading
spaces (some imports trim them) and their fullwidth forms (U+FF1D, U+FF0B, U+FF0D, U+FF20, which
CJK input methods and some spreadsheets read as the ASCII ones).

Why not the `defusedcsv` package: it decides by the cell's shape, not by who
wrote it (so our negative amounts would need its number pattern to escape
nothing), it rewrites `|` inside a person's text, and it is a thin wrapper
over the same `csv` module. One short module of ours, used by every writer,
states the rule where it is applied.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

from fundraiser import privatefiles

_TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\uff1d", "\uff0b", "\uff0d", "\uff20")
_SPACES = " \u00a0\u3000\n"
#: A cell can be risky only if it starts with one of these: most cells are
#: decided by their first character, without stripping a copy.
_RISKY_FIRST = frozenset(_TRIGGERS) | frozenset(_SPACES)


class Plain(str):
    """A value we formatted ourselves (an amount, a date): written as it is."""

    __slots__ = ()


_OURS = (Plain, int)  # built once: `Plain | int` in the check made a union per cell


def cell(value: Any) -> str:
    """One cell's text, neutralised when a spreadsheet would run it."""
    if value is None:
        return ""
    if isinstance(value, _OURS):
        return str(value)
    text = str(value)
    if text[:1] in _RISKY_FIRST and text.lstrip(_SPACES).startswith(_TRIGGERS):
        return "'" + text
    return text


def row(values: Iterable[Any]) -> list[str]:
    return [cell(v) for v in values]


def write(
    handle: IO[str],
    header: Sequence[str],
    rows: Iterable[Iterable[Any]],
    *,
    lineterminator: str = "\r\n",
) -> int:
    """Write a header and rows to an open text handle; the number of rows."""
    writer = csv.writer(handle, lineterminator=lineterminator)
    writer.writerow(row(header))
    count = 0
    for values in rows:
        writer.writerow(row(values))
        count += 1
    return count


def as_text(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> str:
    """The CSV as a string, lines ending in a newline (for standard output)."""
    out = io.StringIO(newline="")
    write(out, header, rows, lineterminator="\n")
    return out.getvalue()


def write_file(path: Path, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> int:
    """Write a CSV file 0600, whole or not at all (it carries people's data)."""
    with privatefiles.open_private(path) as handle:
        return write(handle, header, rows)
