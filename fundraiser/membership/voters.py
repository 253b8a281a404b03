"""The voter roll: one member, one vote, whatever they hold.

Current members only (a former member has no vote), by member number, in the
columns Loomio and Decidim import. Members the rules suspend (their fee
lapsed or ended: fundraiser.membership.fees) are left off it, and listed
apart with the reason.

The census for Decidim is Decidim's own CSV census (decidim-verifications,
"csv_census"): one column, the email, one voter per line and no header row.
Decidim reads each row's first cell as the email, refuses a file with more
than one column and flags a header row as an error, and it verifies a
participant whose account email is on the list. Other census formats
(a document number and birth date, by plugins such as
decidim-file_authorization_handler) need identity documents the co-op does
not hold: the register knows members by email.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy.engine import Connection

from fundraiser import csvsafe, register
from fundraiser.config import Campaign
from fundraiser.membership import fees


@dataclass(frozen=True)
class Voter:
    member_number: int
    name: str
    email: str | None


def roll(
    conn: Connection, currency: str, suspended: Mapping[int, str] | None = None
) -> list[Voter]:
    """Current members, one vote each whatever they hold, by member number.

    `suspended`: member number -> why the rules suspend them; they are left off.
    """
    held_back = suspended or {}
    return [
        Voter(h.number, h.name, h.email)
        for h in register.holdings(conn, currency)
        if h.ceased_on is None and h.shares > 0 and h.number not in held_back
    ]


@dataclass(frozen=True)
class LeftOut:
    member_number: int
    name: str
    email: str | None
    why: str


def left_out(conn: Connection, currency: str, suspended: Mapping[int, str]) -> list[LeftOut]:
    """Current members the rules suspend, with why: the roll's other half."""
    return [
        LeftOut(h.number, h.name, h.email, suspended[h.number])
        for h in register.holdings(conn, currency, sorted(suspended))
        if h.ceased_on is None and h.shares > 0
    ]


LEFT_OUT_COLUMNS = ("email", "name", "member_number", "why")


def left_out_csv(people: list[LeftOut]) -> str:
    """Who the roll leaves out, and why; names neutralised as in the roll."""
    return csvsafe.as_text(
        LEFT_OUT_COLUMNS, ([p.email or "", p.name, p.member_number, p.why] for p in people)
    )


def census_csv(voters: list[Voter]) -> str:
    """Decidim's CSV census: one email per line, no header (voters without email are left
    off: tell them by post)."""
    return "".join(f"{v.email}\r\n" for v in voters if v.email)


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


def suspended_on(conn: Connection, campaign: Campaign, today: date) -> dict[int, str]:
    """Members the rules suspend today, with why (none when membership carries no fee)."""
    membership = campaign.membership
    if membership is None or membership.fee is None:
        return {}
    return fees.suspended(conn, today=today, grace_days=membership.grace_days)
