"""csvsafe: no cell a spreadsheet would run as a formula, and every value read back."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fundraiser import csvsafe
from tests.spreadsheet import mode, open_csv, runs_as_formula

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


def test_look_alikes_and_leading_spaces_are_neutralised_too() -> None:
    for attack in (
        "  =1+1",
        "\u00a0=1+1",
        "\n-2+3",
        "\uff1dSUM(1)",
        "\uff0b1",
        "\uff20A1",
        "\uff0d1",
    ):
        assert csvsafe.cell(attack) == "'" + attack
    for harmless in ("Ada", "1 Road", "O'Brien", "a=b", "12.50", ""):
        assert csvsafe.cell(harmless) == harmless


@given(st.text(max_size=40))
def test_a_spreadsheet_runs_no_cell_it_reads(value: str) -> None:
    """Whatever a person types, the cell as read back runs nothing."""
    handle = io.StringIO(newline="")
    csvsafe.write(handle, ["name"], [[value]])
    [row] = open_csv(handle.getvalue())
    assert not runs_as_formula(row["name"]), repr(row["name"])
    assert row["name"] in (value, "'" + value)


def test_a_csv_file_is_written_whole_and_owner_only(tmp_path: Path) -> None:
    out = tmp_path / "x.csv"
    old = os.umask(0)  # the loosest umask: the mode is ours, not the umask's
    try:
        assert csvsafe.write_file(out, ["a"], [["=1"], [csvsafe.Plain("-1.00")]]) == 2
    finally:
        os.umask(old)
    assert mode(out) == 0o600
    assert [r["a"] for r in open_csv(out)] == ["'=1", "-1.00"]
