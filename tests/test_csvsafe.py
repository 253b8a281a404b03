"""csvsafe: no cell a spreadsheet would run as a formula, and every value read back."""

from __future__ import annotations

import csv
import io

from hypothesis import given
from hypothesis import strategies as st

from fundraiser import csvsafe

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


@given(st.lists(st.text(max_size=40), min_size=1, max_size=6))
def test_no_cell_starts_a_formula_and_the_text_comes_back(values: list[str]) -> None:
    handle = io.StringIO(newline="")
    csvsafe.write(handle, [f"c{i}" for i in range(len(values))], [values])
    _, row = list(csv.reader(io.StringIO(handle.getvalue(), newline="")))
    assert len(row) == len(values)
    for written, original in zip(row, values, strict=True):
        assert not written.startswith(TRIGGERS)
        assert written == original or written == "'" + original


def test_amounts_we_format_stay_numbers() -> None:
    assert csvsafe.cell(csvsafe.Plain("-12.50")) == "-12.50"
    assert csvsafe.cell("-12.50") == "'-12.50"
    assert csvsafe.cell('=HYPERLINK("http://evil")') == '\'=HYPERLINK("http://evil")'
    assert csvsafe.cell(None) == "" and csvsafe.cell(7) == "7"
