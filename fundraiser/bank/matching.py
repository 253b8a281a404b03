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
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass

_SEP = r"\s*[-_/.:#]?\s*"
PLEDGE_REF = re.compile(r"P\s*L\s*E\s*D\s*G\s*E" + _SEP + r"0*(\d{1,12})(?!\d)", re.IGNORECASE)
REFUND_REF = re.compile(
    r"R\s*E\s*F\s*U\s*N\s*D" + _SEP + r"P" + _SEP + r"0*(\d{1,12})(?!\d)", re.IGNORECASE
)


def pledge_ids(text: str) -> list[int]:
    """Every pledge the text names, in order, each once."""
    numbers = PLEDGE_REF.findall(text)  # strings, no match objects: a line at a time adds up
    if len(numbers) == 1:
        return [int(numbers[0])]
    return list(dict.fromkeys(map(int, numbers)))


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
_NOT_ASCII = re.compile(r"[^\x00-\x7f]")


def _plain(text: str) -> str:
    """Text without case or accents: casefolded, decomposed, combining marks dropped.

    Each step maps a character (or a run of combining marks after it) on its own,
    so a text of many names joined by a separator comes out as the names would,
    one by one: the C code walks it once, not Python a character at a time.
    """
    plain = text.casefold()
    if plain.isascii():
        return plain
    plain = unicodedata.normalize("NFKD", plain)
    marks = {c for c in set(_NOT_ASCII.findall(plain)) if unicodedata.combining(c)}
    if not marks:
        return plain
    return re.sub("[" + re.escape("".join(sorted(marks))) + "]", "", plain)


def name_tokens(name: str) -> frozenset[str]:
    """A name's words, compared without case or accents: 'Dr. José Núñez' -> {jose, nunez}."""
    return frozenset(w for w in _WORDS.split(_plain(name)) if len(w) > 1 and w not in _TITLES)


_GAP = "\x00"  # between names in one text: never in a name (checked), never a word
_WORD_OR_GAP = re.compile(r"[0-9a-z]+|\x00")


def who_has(ids: Sequence[int], names: Sequence[str], words: Set[str]) -> dict[str, list[int]]:
    """For each of `words` (as name_tokens gives them), the ids whose name has it, in order.

    The same as indexing every name's name_tokens, for only the words asked
    for: a statement's few unmatched payers against a campaign's 100,000
    backers. The names are folded as one text, found word by word in C, and
    only the words asked for are kept in Python.
    """
    found: dict[str, list[int]] = {}
    if not ids or not words:
        return found
    text = _GAP.join(names)
    if text.count(_GAP) != len(names) - 1:  # a name holds the gap itself: one at a time
        for pid, name in zip(ids, names, strict=True):
            for word in name_tokens(name) & words:
                found.setdefault(word, []).append(pid)
        return found
    position, pid = 0, ids[0]
    for word in _WORD_OR_GAP.findall(_plain(text)):
        if word == _GAP:
            position += 1
            pid = ids[position]
        elif word in words:
            have = found.get(word)
            if have is None:
                found[word] = [pid]
            elif have[-1] != pid:  # a name that says a word twice counts once
                have.append(pid)
    return found


#: A pledge waiting for bank money: its id, the backer's name, what is still owed on it.
Awaiting = tuple[int, str, int]


@dataclass(frozen=True, slots=True)
class Suggestion:
    pledge_id: int
    why: str

    def as_json(self) -> dict[str, object]:
        return {"pledge_id": self.pledge_id, "why": self.why}


class Suggester:
    """Suggestions for the given payers' transfers among the pledges awaiting money.

    Only the words of those payers' names are indexed (a big statement's few
    unmatched transfers need nothing else), and a pledge's own words are made
    only when one of them finds it.
    """

    def __init__(self, awaiting: Iterable[Awaiting], payers: Iterable[str]) -> None:
        self.by_amount: dict[int, list[int]] = {}
        self.outstanding: dict[int, int] = {}
        self.names: dict[int, str] = {}
        ids: list[int] = []
        for pid, name, outstanding in awaiting:
            self.by_amount.setdefault(outstanding, []).append(pid)
            self.outstanding[pid] = outstanding
            self.names[pid] = name
            ids.append(pid)
        self._ids = ids
        self.by_token: dict[str, list[int]] = {}
        self._indexed: set[str] = set()
        self._tokens: dict[int, frozenset[str]] = {}
        self._index(frozenset().union(*map(name_tokens, payers)))

    def _index(self, words: Set[str]) -> None:
        """Index these words too (a payer not given at first is still found)."""
        new = words - self._indexed
        if new:
            names = self.names
            self.by_token.update(who_has(self._ids, [names[pid] for pid in self._ids], new))
            self._indexed |= new

    def tokens(self, pid: int) -> frozenset[str]:
        found = self._tokens.get(pid)
        if found is None:
            found = self._tokens[pid] = name_tokens(self.names[pid])
        return found

    def _named(self, payer: frozenset[str]) -> set[int]:
        """Pledges whose name has every word of the payer's name (at least two words),
        or the payer's only word when the name has no other."""
        if not payer:
            return set()
        self._index(payer)
        # The rarest word's pledges, kept when their name has every word of the payer's.
        rarest = min((self.by_token.get(t, []) for t in payer), key=len)
        tokens = self.tokens
        if len(payer) < 2:
            return {pid for pid in rarest if tokens(pid) == payer}
        return {pid for pid in rarest if payer <= tokens(pid)}

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
