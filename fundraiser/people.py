"""People: who a pledge or a member is, by their email, and the details the register needs.

One person, one member, one vote: every table keys a person by `person_key`,
so the holding cap and the voter roll see each person once.
"""

from __future__ import annotations

import re

from fundraiser.errors import Problem


def person_key(email: str) -> str:
    """One member per person: emails compare without case or surrounding space."""
    return email.strip().lower()


_EMAIL = re.compile(r"^[^@\s<>,;\"]+@[^@\s<>,;\"]+\.[^@\s<>,;\".]{2,}$")


def check_email(email: str) -> bool:
    return bool(_EMAIL.match(email.strip()))


def validate_person(name: str, email: str, address: str, where: str = "") -> list[Problem]:
    """Problems with the person's details (the register needs all three)."""
    problems = []
    prefix = f"{where} " if where else ""
    if not name.strip():
        problems.append(Problem(f"{prefix}name", "is empty", "give the backer's full name"))
    if not check_email(email):
        problems.append(
            Problem(
                f"{prefix}email",
                f"{email!r} is not an email address",
                "write it as name@example.org",
            )
        )
    if not address.strip():
        problems.append(
            Problem(
                f"{prefix}address",
                "is empty",
                "give a postal address: the share register needs one",
            )
        )
    return problems
