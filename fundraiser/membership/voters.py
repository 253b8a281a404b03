"""The voter roll: one member, one vote, whatever they hold.

Current members only (a former member has no vote), by member number, in the
columns Loomio and Decidim import.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from fundraiser import register


@dataclass(frozen=True)
class Voter:
    member_number: int
    name: str
    email: str | None


def roll(conn: Connection, currency: str) -> list[Voter]:
    """Current members, one vote each whatever they hold, by member number."""
    return [
        Voter(h.number, h.name, h.email)
        for h in register.holdings(conn, currency)
        if h.ceased_on is None and h.shares > 0
    ]


ROLL_COLUMNS = ("email", "name", "member_number")  # email first: what Decidim and Loomio read


def roll_csv(voters: list[Voter]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(ROLL_COLUMNS)
    for v in voters:
        writer.writerow([v.email or "", v.name, v.member_number])
    return out.getvalue()


def roll_json(voters: list[Voter]) -> str:
    data = {
        "votes_per_member": 1,
        "count": len(voters),
        "members": [
            {"member_number": v.member_number, "name": v.name, "email": v.email} for v in voters
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
