"""The register in public: counts and totals by holding band, safe to publish.

No names, addresses, emails or per-person amounts: a band's count of members
and shares is the finest grain shown.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlalchemy.engine import Connection

from fundraiser import register
from fundraiser.config import Campaign


def _bands(max_shares: int) -> list[tuple[int, int]]:
    edges = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000]
    lows = [e for e in edges if e <= max_shares]
    return [
        (low, (lows[i + 1] - 1) if i + 1 < len(lows) else max_shares) for i, low in enumerate(lows)
    ]


def public_summary(conn: Connection, campaign: Campaign) -> dict[str, Any]:
    """Counts and totals only: no names, addresses, emails or per-person amounts."""
    bands = _bands(campaign.shares.max_shares)
    counts = [[0, 0] for _ in bands]
    current = former = shares = paid = 0
    for h in register.holdings(conn, campaign.currency):
        if h.ceased_on is not None or h.shares <= 0:
            former += 1
            continue
        current += 1
        shares += h.shares
        paid += h.paid.amount
        for i, (low, high) in enumerate(bands):
            if low <= h.shares <= high:
                counts[i][0] += 1
                counts[i][1] += h.shares
                break
    return {
        "coop": campaign.coop.name,
        "members": current,
        "former_members": former,
        "shares": shares,
        "capital": paid,
        "currency": campaign.currency,
        "share_price": campaign.shares.price.amount,
        "votes_per_member": 1,
        "bands": [
            {
                "band": f"{low}" if low == high else f"{low}-{high}",
                "min_shares": low,
                "max_shares": high,
                "members": n,
                "shares": s,
            }
            for (low, high), (n, s) in zip(bands, counts, strict=True)
        ],
    }


def public_csv(summary: dict[str, Any]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["band", "min_shares", "max_shares", "members", "shares"])
    for band in summary["bands"]:
        writer.writerow(
            [band["band"], band["min_shares"], band["max_shares"], band["members"], band["shares"]]
        )
    writer.writerow(["total", "", "", summary["members"], summary["shares"]])
    return out.getvalue()
