"""Size bands for public figures: the one list of how shares are grouped when published.

Public output never shows what one person pledged or holds; it shows how many
pledges or members fall in each band of shares. The site's pledge sizes and
the register's public summary use this same list, so the two read alike and a
band means the same thing in both.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Bands start at these numbers of shares; the last one in reach of the
#: holding limit runs up to it.
BAND_STARTS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclass(frozen=True)
class SizeBand:
    low: int  # shares
    high: int  # shares, inclusive

    @property
    def label(self) -> str:
        return f"{self.low}" if self.low == self.high else f"{self.low}\u2013{self.high}"

    def __contains__(self, shares: int) -> bool:
        return self.low <= shares <= self.high


def band_starts(max_shares: int) -> list[int]:
    """Where each band starts, in shares, for an offer's holding limit."""
    return [start for start in BAND_STARTS if start <= max_shares] or [1]


def size_bands(max_shares: int) -> list[SizeBand]:
    """The bands for an offer whose holding limit is `max_shares`, smallest first."""
    starts = band_starts(max_shares)
    ends = [start - 1 for start in starts[1:]] + [max(max_shares, starts[-1])]
    return [SizeBand(low, high) for low, high in zip(starts, ends, strict=True)]
