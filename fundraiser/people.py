"""People: who a pledge or a member is, by their email, and the details the register needs.

One person, one member, one vote: every table keys a person by `person_key`,
so the holding cap and the voter roll see each person once. An address that
only looks like another (a zero-width space in it, full-width letters, a
Cyrillic "a" among Latin letters) must not make a second person, so:

- `person_key` normalises: NFKC (full-width and stylised letters become plain
  ones), case, surrounding space; a domain typed in Unicode and its ASCII
  (punycode) form give one key. A plain ASCII address keys as it always did
  (trimmed, lower case), so keys already stored stay valid.
- `email_problem` refuses what normalising cannot make safe: invisible
  characters, letters of two scripts in one part of the address, and any
  address email-validator (syntax only: no DNS here) does not accept.
- `normal_email` is the address as stored and mailed.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from fundraiser.errors import Problem

#: Characters that show as nothing (or as a blank) yet make a different string.
#: Whole categories below cover format controls (zero-width space and joiners,
#: bidi marks, soft hyphen, tags), controls, private use, unassigned and line
#: separators; these few are letters or marks that render as nothing.
_BLANKS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180e\u2800\u3164\uffa0"
    + "".join(chr(c) for c in range(0xFE00, 0xFE10))  # variation selectors
)
_INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Co", "Cs", "Cn", "Zl", "Zp"})

#: Scripts a single word may mix (Unicode TR 39, "highly restrictive").
_ALLOWED_MIXES = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)

# The everyday address, all ASCII: a dot-atom local part and LDH labels with a
# letters-only top-level domain. Everything it matches, email-validator accepts
# too (tests/test_people.py checks this with hypothesis); it saves 0.1 ms per
# address on a 100,000-row import. Anything else goes to email-validator.
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9]+(?:-[A-Za-z0-9]+)*"
_PLAIN = re.compile(
    rf"(?=[^@]{{1,64}}@){_ATOM}(?:\.{_ATOM})*@"  # a local part of at most 64
    rf"(?:(?=[A-Za-z0-9-]{{1,63}}\.){_LABEL}\.)+"  # labels of at most 63
    r"(?!(?i:arpa|invalid|local|localhost|onion|test)$)[A-Za-z]{2,63}"  # no reserved TLD
)


def _plain(email: str) -> bool:
    """The ASCII fast path: an address email-validator is sure to accept."""
    return len(email) <= 254 and _PLAIN.fullmatch(email) is not None


def _fold(text: str) -> str:
    """NFKC, lower case, trimmed, repeated until stable (lower casing can un-normalise)."""
    for _ in range(4):
        folded = unicodedata.normalize("NFKC", text).lower().strip()
        if folded == text:
            break
        text = folded
    return text


def person_key(email: str) -> str:
    """One member per person: the address normalised for comparison.

    Total (never raises): lookups pass whatever was typed. A plain ASCII
    address gives exactly what earlier versions stored (trimmed, lower case).
    """
    text = email.strip()
    if text.isascii():
        return text.lower()
    return _key(text)


@lru_cache(maxsize=4096)
def _key(text: str) -> str:
    folded = _fold(text)
    if folded.isascii():
        return folded
    from email_validator import EmailNotValidError, validate_email  # ~0.1 s: when used

    try:
        found = validate_email(folded, check_deliverability=False)
    except EmailNotValidError:
        return folded
    # The domain in its ASCII (punycode) form: one key for both ways of typing it.
    return _fold(f"{found.local_part}@{found.ascii_domain}")


def normal_email(email: str) -> str:
    """The address as stored and mailed: trimmed, NFKC, its domain in ASCII.

    Case is kept (the backer typed it so); `person_key` ignores it. Give it an
    address `email_problem` accepted; anything else comes back trimmed only.
    """
    text = email.strip()
    if text.isascii():
        return text
    normal = unicodedata.normalize("NFKC", text).strip()
    from email_validator import EmailNotValidError, validate_email  # ~0.1 s: when used

    try:
        found = validate_email(normal, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError:
        return normal
    return str(found.ascii_email or found.normalized)


def _invisible(char: str) -> bool:
    return char in _BLANKS or unicodedata.category(char) in _INVISIBLE_CATEGORIES


def _char_name(char: str) -> str:
    return f"{unicodedata.name(char, 'an unnamed character')}, U+{ord(char):04X}"


def _script(char: str) -> str | None:
    """A letter's script, from its Unicode name ("CYRILLIC SMALL LETTER A"); else None."""
    if not unicodedata.category(char).startswith("L"):
        return None
    word = unicodedata.name(char, "UNKNOWN").split(" ", 1)[0]
    return "HAN" if word == "CJK" else word


def _mixed(part: str) -> list[str]:
    """The scripts one part of an address mixes, or [] when it keeps to one."""
    scripts = {s for s in map(_script, part) if s is not None}
    if len(scripts) < 2 or any(scripts <= allowed for allowed in _ALLOWED_MIXES):
        return []
    return sorted(scripts)


_FIX = "write it as name@example.org"


def email_problem(email: str, where: str = "email") -> Problem | None:
    """Why `email` cannot identify a person, naming the field and the fix; None if it can."""
    text = email.strip()
    if _plain(text):
        return None
    if not text:
        return Problem(where, "is empty", f"give the backer's email address: {_FIX}")
    for index, char in enumerate(text):
        if _invisible(char):
            return Problem(
                where,
                f"{text!r} contains an invisible character ({_char_name(char)}) "
                f"after {text[:index]!r}",
                "type the address again by hand rather than pasting it",
            )
        if unicodedata.category(char) == "Zs":
            return Problem(where, f"{text!r} contains a space", "remove the space")
    normal = unicodedata.normalize("NFKC", text)
    local, at, domain = normal.rpartition("@")
    mixed = _mixed_part([local, *domain.split(".")] if at else [normal])
    if mixed is None:
        if at and not local.isascii():
            return Problem(
                where,
                f"{text!r} has letters other than a-z before the @, which our mail cannot reach",
                "give an address written in plain letters before the @",
            )
        from email_validator import EmailNotValidError, validate_email  # ~0.1 s: when used

        try:
            found = validate_email(normal, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:
            reason = str(exc).rstrip(".")
            return Problem(where, f"{text!r} is not an email address: {reason}", _FIX)
        # A domain typed in punycode is checked as the letters it stands for.
        mixed = _mixed_part(str(found.domain).split("."))
    if mixed is None:
        return None
    part, scripts = mixed
    odd = "".join(c for c in part if not c.isascii())
    return Problem(
        where,
        f"{text!r} mixes letters of different alphabets ({', '.join(scripts).lower()}) "
        f"in {part!r}: {odd!r} only looks like a plain letter",
        "type the address again using one alphabet (usually your keyboard's plain letters)",
    )


def _mixed_part(parts: list[str]) -> tuple[str, list[str]] | None:
    """The first part that mixes scripts, with the scripts it mixes."""
    for part in parts:
        scripts = _mixed(part)
        if scripts:
            return part, scripts
    return None


def check_email(email: str) -> bool:
    """True when `email` can identify a person (see `email_problem`)."""
    return email_problem(email) is None


def validate_person(name: str, email: str, address: str, where: str = "") -> list[Problem]:
    """Problems with the person's details (the register needs all three)."""
    problems = []
    prefix = f"{where} " if where else ""
    if not name.strip():
        problems.append(Problem(f"{prefix}name", "is empty", "give the backer's full name"))
    problem = email_problem(email, f"{prefix}email")
    if problem is not None:
        problems.append(problem)
    if not address.strip():
        problems.append(
            Problem(
                f"{prefix}address",
                "is empty",
                "give a postal address: the share register needs one",
            )
        )
    return problems
