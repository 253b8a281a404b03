"""The register in public: counts and totals by holding band, safe to publish.

No names, addresses, emails or per-person amounts: a band's count of members
and shares is the finest grain shown. The bands are the site's pledge-size
bands (fundraiser.bands).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Connection

from fundraiser import csvsafe, register
from fundraiser.bands import size_bands
from fundraiser.config import Campaign


def public_summary(conn: Connection, campaign: Campaign) -> dict[str, Any]:
    """Counts and totals only: no names, addresses, emails or per-person amounts."""
    bands = size_bands(campaign.shares.max_shares)
    counts = [[0, 0] for _ in bands]
    current = former = shares = paid = 0
    for h in register.holdings(conn, campaign.currency):
        if h.ceased_on is not None or h.shares <= 0:
            former += 1
            continue
        current += 1
        shares += h.shares
        paid += h.paid.amount
        for i, band in enumerate(bands):
            if h.shares in band:
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
                "band": band.label,
                "min_shares": band.low,
                "max_shares": band.high,
                "members": n,
                "shares": s,
            }
            for band, (n, s) in zip(bands, counts, strict=True)
        ],
    }


def public_csv(summary: dict[str, Any]) -> str:
    rows: list[list[Any]] = [
        [band["band"], band["min_shares"], band["max_shares"], band["members"], band["shares"]]
        for band in summary["bands"]
    ]
    rows.append(["total", "", "", summary["members"], summary["shares"]])
    return csvsafe.as_text(["band", "min_shares", "max_shares", "members", "shares"], rows)
