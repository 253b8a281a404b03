"""A big statement read in a child process: the same lines, the same refusals, no child left."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from fundraiser import bankfiles
from fundraiser.bank.statement import Statement, StatementError
from fundraiser.bankfiles import aside
from tests.bankfixtures import Tx, camt053

TXS = [
    Tx(f"E{n}", f"{n}.{n % 100:02d}", f"PLEDGE-{n} Café «{n}»", f"Ann {n}") for n in range(1, 400)
] + [Tx("OUT", "-80.00", "Office rent", "Landlord Ltd")]


def test_a_statement_read_aside_is_the_one_read_here(tmp_path: Path) -> None:
    path = camt053(tmp_path / "big.xml", TXS)
    here = bankfiles.read(path, currency="EUR")
    with aside.reading(path, currency="EUR", aside_from=0) as source:
        assert callable(source)  # read in a child, waited for on demand
        there = source()
    assert isinstance(there, Statement) and there == here
    assert len(there.lines) == 400 and there.lines[0].text == "PLEDGE-1 Café «1»"
    assert not multiprocessing.active_children()


def test_a_statement_without_lines_read_aside_is_the_one_read_here(tmp_path: Path) -> None:
    path = camt053(tmp_path / "quiet.xml", [])
    with aside.reading(path, currency="EUR", aside_from=0) as source:
        assert callable(source)
        there = source()
    assert there == bankfiles.read(path, currency="EUR") and there.lines == ()


def test_a_small_statement_is_read_at_once(tmp_path: Path) -> None:
    path = camt053(tmp_path / "small.xml", TXS[:3])
    with aside.reading(path, currency="EUR") as source:
        assert source == bankfiles.read(path, currency="EUR")
    assert not multiprocessing.active_children()


def test_a_refusal_in_the_child_names_the_same_line_as_one_here(tmp_path: Path) -> None:
    full = camt053(tmp_path / "cut.xml", TXS).read_text()
    path = tmp_path / "cut.xml"
    path.write_text(full[: len(full) // 2])
    with pytest.raises(StatementError) as here:
        bankfiles.read(path, currency="EUR")
    with aside.reading(path, currency="EUR", aside_from=0) as source:
        assert callable(source)
        with pytest.raises(StatementError) as there:
            source()
    assert str(there.value) == str(here.value)
    assert "cut.xml: line " in str(there.value) and "ends early" in str(there.value)


def test_a_child_not_waited_for_is_stopped(tmp_path: Path) -> None:
    path = camt053(tmp_path / "big.xml", TXS)
    with (
        pytest.raises(RuntimeError, match="the ledger failed"),
        aside.reading(path, currency="EUR", aside_from=0) as source,
    ):
        assert callable(source)
        raise RuntimeError("the ledger failed before the lines were wanted")
    assert not multiprocessing.active_children()
