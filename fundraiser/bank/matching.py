"""Which pledge a transfer is for: its reference first, then suggestions. Pure, no I/O.

A backer is asked to write `PLEDGE-<id>` on the transfer; banks and people
mangle it (`pledge 42`, `PLEDGE42`, `P L E D G E-42` after a line wrap), so
the pattern allows spaces, case and a missing hyphen, but never a broken
number. A transfer without a usable reference gets suggestions by amount and
the payer's name: shown to the organizer, applied only when they accept them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

_SEP = r"\s*[-_/.:#]?\s*"
PLEDGE_REF = re.compile(r"P\s*L\s*E\s*D\s*G\s*E" + _SEP + r"0*(\d{1,12})(?!\d)", re.IGNORECASE)
REFUND_REF = re.compile(
    r"R\s*E\s*F\s*U\s*N\s*D" + _SEP + r"P" + _SEP + r"0*(\d{1,12})(?!\d)", re.IGNORECASE
)


def pledge_ids(text: str) -> list[int]:
    """Every pledge the text names, in order, each once."""
    found: list[int] = []
    for match in PLEDGE_REF.finditer(text):
        number = int(match.group(1))
        if number not in found:
            found.append(number)
    return found


def refund_ids(text: str) -> list[int]:
    """Every pledge whose refund reference (`REFUND-P<id>`) the text names."""
    found: list[int] = []
    for match in REFUND_REF.finditer(text):
        number = int(match.group(1))
        if number not in found:
            found.append(number)
    return found


_TITLES = frozenset({"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "and"})


_WORDS = re.compile(r"[^0-9a-z]+")


def name_tokens(name: str) -> frozenset[str]:
    """A name's words, compared without case or accents: 'Dr. José Núñez' -> {jose, nunez}."""
    plain = name.casefold()
    if not plain.isascii():
        plain = unicodedata.normalize("NFKD", plain)
        plain = "".join(c for c in plain if not unicodedata.combining(c))
    return frozenset(w for w in _WORDS.split(plain) if len(w) > 1 and w not in _TITLES)


@dataclass(frozen=True, slots=True)
class Awaiting:
    """A pledge waiting for bank money: what is still owed on it."""

    pledge_id: int
    name: str
    outstanding: int


@dataclass(frozen=True, slots=True)
class Suggestion:
    pledge_id: int
    why: str

    def as_json(self) -> dict[str, object]:
        return {"pledge_id": self.pledge_id, "why": self.why}


class Suggester:
    """Suggestions for unmatched transfers among the pledges awaiting money."""

    def __init__(self, awaiting: Iterable[Awaiting]) -> None:
        self.by_amount: dict[int, list[int]] = {}
        self.by_token: dict[str, list[int]] = {}
        self.tokens: dict[int, frozenset[str]] = {}
        self.outstanding: dict[int, int] = {}
        for item in awaiting:
            self.by_amount.setdefault(item.outstanding, []).append(item.pledge_id)
            tokens = name_tokens(item.name)
            self.tokens[item.pledge_id] = tokens
            self.outstanding[item.pledge_id] = item.outstanding
            for token in tokens:
                self.by_token.setdefault(token, []).append(item.pledge_id)

    def _named(self, payer: frozenset[str]) -> set[int]:
        """Pledges whose name has every word of the payer's name (at least two words),
        or the payer's only word when the name has no other."""
        if not payer:
            return set()
        # The rarest word's pledges, kept when their name has every word of the payer's.
        rarest = min((self.by_token.get(t, []) for t in payer), key=len)
        tokens = self.tokens
        if len(payer) < 2:
            return {pid for pid in rarest if tokens[pid] == payer}
        return {pid for pid in rarest if payer <= tokens[pid]}

    def suggest(self, amount: int, payer: str, limit: int = 3) -> tuple[list[Suggestion], str]:
        """Up to `limit` suggestions, best first, and why there are none when so."""
        if amount <= 0:
            return [], "money out, not a payment for a pledge"
        same_amount = self.by_amount.get(amount, [])
        named = self._named(name_tokens(payer))
        both = sorted(pid for pid in named if self.outstanding[pid] == amount)
        if both:
            why = "the amount owed and the payer's name match"
            return [Suggestion(pid, why) for pid in both[:limit]], ""
        if len(same_amount) == 1:
            return [Suggestion(same_amount[0], "the only pledge awaiting this amount")], ""
        part = sorted(pid for pid in named if self.outstanding[pid] > amount)
        if part:
            why = "the payer's name matches; less than is owed (a part payment?)"
            return [Suggestion(pid, why) for pid in part[:limit]], ""
        if same_amount:
            return [], f"{len(same_amount)} pledges await this amount and none by this name"
        return [], "no pledge awaiting money matches the amount or the name"
