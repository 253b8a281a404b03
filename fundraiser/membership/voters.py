"""The voter roll: one member, one vote, whatever they hold.

Current members only (a former member has no vote), by member number, in the
columns Loomio and Decidim import.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from fundraiser import csvsafe, register


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
    """The roll as CSV; a name a spreadsheet would run as a formula is neutralised."""
    return csvsafe.as_text(ROLL_COLUMNS, ([v.email or "", v.name, v.member_number] for v in voters))


def roll_json(voters: list[Voter]) -> str:
    data = {
        "votes_per_member": 1,
        "count": len(voters),
        "members": [
            {"member_number": v.member_number, "name": v.name, "email": v.email} for v in voters
        ],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
