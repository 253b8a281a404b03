"""Which pledge a transfer is for: references, and suggestions by amount and name."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from fundraiser.bank.matching import Suggester, name_tokens, pledge_ids, who_has

_TITLES = {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "and"}


def _words_one_char_at_a_time(name: str) -> frozenset[str]:
    """The rule for a name's words, written plainly: the oracle for the fast code."""
    plain = unicodedata.normalize("NFKD", name.casefold())
    plain = "".join(c for c in plain if not unicodedata.combining(c))
    return frozenset(w for w in re.split(r"[^0-9a-z]+", plain) if len(w) > 1 and w not in _TITLES)


# Names as people (and banks) write them: accents precomposed and combining,
# titles, punctuation, ligatures, other scripts, and the index's own gap character.
_PIECES = st.sampled_from(
    [
        "Ann", "LEE", "José", "Jose\u0301", "Núñez", "Müller", "MULLER", "ﬁsher", "Ørsted",
        "Dr.", "mr", "and", "O'Neil", "Smith-Jones", "Smith", "smith", "Łukasz", "Σοφία",
        "İlkay", "straße", "STRASSE", "x", "42", "\u0301", "\x00", "-", " ", "  ",
    ]
)  # fmt: skip
_NAMES = st.lists(_PIECES, max_size=6).map(" ".join) | st.text(max_size=12)


@settings(max_examples=300)
@given(name=_NAMES)
def test_a_names_words_are_compared_without_case_accents_or_titles(name: str) -> None:
    assert name_tokens(name) == _words_one_char_at_a_time(name)


def test_a_names_words_by_example() -> None:
    assert name_tokens("Dr. José Núñez") == {"jose", "nunez"}
    assert name_tokens("MÜLLER, Anna-Lena") == {"muller", "anna", "lena"}
    assert name_tokens("Mr and Mrs X") == frozenset()


@settings(max_examples=200)
@given(names=st.lists(_NAMES, max_size=12), extra=st.lists(_NAMES, max_size=3))
def test_who_has_a_word_is_every_name_indexed_one_by_one(
    names: list[str], extra: list[str]
) -> None:
    ids = [10 * n + 7 for n in range(len(names))]
    wanted = frozenset().union(*map(name_tokens, names[::2] + extra))
    expected: dict[str, list[int]] = {}
    for pid, name in zip(ids, names, strict=True):
        for word in sorted(_words_one_char_at_a_time(name) & wanted):
            expected.setdefault(word, []).append(pid)
    assert who_has(ids, names, wanted) == expected


def test_a_payer_is_suggested_the_pledge_of_that_name_and_amount() -> None:
    awaiting = [
        (1, "Ann Lee", 50000),
        (2, "Anne Lee", 50000),
        (3, "José Núñez", 25000),
        (4, "Bo\x00Kim", 10000),  # a name with the index's gap in it is still found
        (5, "Cy Dee", 70000),
    ]
    payers = ["ANN LEE", "jose nunez", "Bo Kim", "Cy Dee", "Nobody Known"]
    suggester = Suggester(awaiting, payers)
    found, _ = suggester.suggest(50000, "ANN LEE")
    assert [(s.pledge_id, s.why) for s in found] == [
        (1, "the amount owed and the payer's name match")
    ]
    found, _ = suggester.suggest(25000, "jose nunez")
    assert [s.pledge_id for s in found] == [3]
    found, _ = suggester.suggest(10000, "Bo Kim")
    assert [s.pledge_id for s in found] == [4]
    # Less than owed, by name: a part payment.
    found, _ = suggester.suggest(20000, "Cy Dee")
    assert [(s.pledge_id, s.why) for s in found] == [
        (5, "the payer's name matches; less than is owed (a part payment?)")
    ]
    assert suggester.suggest(50000, "Nobody Known") == (
        [],
        "2 pledges await this amount and none by this name",
    )
    # A payer not named when it was made is found all the same.
    found, _ = suggester.suggest(25000, "Núñez José")
    assert [s.pledge_id for s in found] == [3]
    found, _ = suggester.suggest(70000, "Somebody Else")
    assert [(s.pledge_id, s.why) for s in found] == [(5, "the only pledge awaiting this amount")]


def test_references_are_found_however_they_are_written() -> None:
    assert pledge_ids("Shares PLEDGE-1 thank you") == [1]
    assert pledge_ids("pledge 42 and P L E D G E-42, PLEDGE0043") == [42, 43]
    assert pledge_ids("PLEDGE-12345678901234") == []  # a broken number is no reference
