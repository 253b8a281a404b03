"""The one list of size bands that public figures are grouped by."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from fundraiser.bands import band_starts, size_bands


def test_band_starts_follow_the_holding_limit() -> None:
    assert band_starts(200) == [1, 2, 5, 10, 20, 50, 100, 200]
    assert band_starts(1) == [1]
    assert band_starts(30) == [1, 2, 5, 10, 20]
    assert band_starts(20_000)[-3:] == [2000, 5000, 10000]


def test_labels_name_a_single_number_or_a_range() -> None:
    assert [b.label for b in size_bands(30)] == [
        "1",
        "2\u20134",
        "5\u20139",
        "10\u201319",
        "20\u201330",
    ]
    assert [b.label for b in size_bands(200)][-2:] == ["100\u2013199", "200"]
    assert [(b.low, b.high) for b in size_bands(12_000)][-2:] == [(5000, 9999), (10000, 12000)]


@given(st.integers(1, 25_000))
def test_every_holding_up_to_the_limit_is_in_exactly_one_band(limit: int) -> None:
    bands = size_bands(limit)
    assert bands[0].low == 1 and bands[-1].high == limit
    for before, after in pairwise(bands):
        assert before.low <= before.high == after.low - 1
    for shares in {1, limit, limit // 2 or 1, (limit + 1) // 3 or 1}:
        assert sum(shares in b for b in bands) == 1
