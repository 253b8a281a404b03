"""A member signs in with a link sent to their email: no passwords.

The link is signed (fundraiser.links, purpose MEMBER, short-lived) and works
once: using it writes a session row keyed by the link's digest, so a second
use finds the row and is refused. The session lasts until it expires or the
member signs out. A former member cannot start one.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import register
from fundraiser.errors import UserInputError
from fundraiser.ledger import Tx, schema


class Refusal(enum.StrEnum):
    USED = "used"  # the link opened a session before
    CEASED = "ceased"  # a former member
    UNKNOWN = "unknown"  # no such member


class Refused(UserInputError):
    def __init__(self, why: Refusal, detail: str = "") -> None:
        super().__init__(f"sign-in refused: {why.value}{f' ({detail})' if detail else ''}")
        self.why = why
        self.detail = detail


def digest(token: str) -> str:
    """What the ledger keeps of a link: enough to know it again, never the link."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def start(tx: Tx, number: int, token: str, expires_at: str) -> int:
    """Open a session for member `number` with this link, once; its id."""
    try:
        member = register.get_member(tx.conn, number)
    except Exception:
        raise Refused(Refusal.UNKNOWN) from None
    if member.ceased_on:
        raise Refused(Refusal.CEASED, str(member.ceased_on))
    seen = tx.conn.execute(
        sa.select(schema.member_sessions.c.id).where(
            schema.member_sessions.c.link_digest == digest(token)
        )
    ).first()
    if seen is not None:
        raise Refused(Refusal.USED)
    row = {
        "member_number": number,
        "link_digest": digest(token),
        "started_at": tx.now,
        "expires_at": expires_at,
    }
    tx.insert(schema.member_sessions, list(row), [tuple(row.values())])
    session = int(
        tx.conn.execute(sa.select(sa.func.max(schema.member_sessions.c.id))).scalar() or 0
    )
    tx.record("member.sign_in", f"member:{number}", {"member": number, "session": session})
    return session


def member_of(conn: Connection, session_id: int, now: str) -> Any:
    """The session's member row while the session stands (not ended, not expired), or None."""
    found = conn.execute(
        sa.select(schema.member_sessions).where(schema.member_sessions.c.id == session_id)
    ).first()
    if found is None or found.ended_at is not None or found.expires_at <= now:
        return None
    return register.get_member(conn, int(found.member_number))


def end(tx: Tx, session_id: int) -> bool:
    """Sign out: the session stops working at once."""
    done = tx.update(schema.member_sessions, {"id": session_id, "ended_at": None}, ended_at=tx.now)
    if done:
        tx.record("member.sign_out", f"session:{session_id}", {"session": session_id})
    return bool(done)


def used(conn: Connection, token: str) -> bool:
    """Whether this link opened a session already."""
    found = conn.execute(
        sa.select(schema.member_sessions.c.id).where(
            schema.member_sessions.c.link_digest == digest(token)
        )
    ).first()
    return found is not None
