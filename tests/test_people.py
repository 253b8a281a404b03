"""A person is their email, once: look-alike addresses neither pass nor make a second person."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from fundraiser.ledger import open_ledger, schema
from fundraiser.people import email_problem, normal_email, person_key
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.stripe_fixtures import TestClient

localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

ZWSP = "gr\u200bace@example.org"  # a zero-width space after "gr"
CYRILLIC = "gr\u0430ce@example.org"  # CYRILLIC SMALL LETTER A
CYRILLIC_DOMAIN = "grace@ex\u0430mple.org"
PUNYCODE_LOOKALIKE = "grace@xn--exmple-4nf.org"  # the same Cyrillic domain, typed in ASCII


def fullwidth(text: str) -> str:
    """Full-width forms of a text's letters and digits (NFKC maps them back)."""
    return "".join(chr(ord(c) - 0x21 + 0xFF01) if c.isalnum() else c for c in text)


FULLWIDTH = fullwidth("grace@example.org")
MATH_BOLD = "\U0001d420\U0001d42b\U0001d41a\U0001d41c\U0001d41e@example.org"  # bold "grace"
REFUSED = {
    ZWSP: "invisible character (ZERO WIDTH SPACE, U+200B)",
    "grace@example.org\u2060": "invisible character (WORD JOINER",
    "grace\u00ad@example.org": "invisible character (SOFT HYPHEN",
    "gr\u200dace@example.org": "invisible character (ZERO WIDTH JOINER",
    "\u202egrace@example.org": "invisible character (RIGHT-TO-LEFT OVERRIDE",
    "gr\u3164ace@example.org": "invisible character (HANGUL FILLER",
    CYRILLIC: "mixes letters of different alphabets (cyrillic, latin) in 'gr\u0430ce'",
    CYRILLIC_DOMAIN: "mixes letters of different alphabets (cyrillic, latin) in 'ex\u0430mple'",
    PUNYCODE_LOOKALIKE: "mixes letters of different alphabets (cyrillic, latin)",
    "gr\u03b1ce@example.org": "mixes letters of different alphabets (greek, latin)",
    "ivan@\u043f\u0440\u0438m\u0435r.org": "mixes letters of different alphabets",
    "иван@example.org": "letters other than a-z before the @",
    "grace@example": "is not an email address",
    "grace@@example.org": "is not an email address",
    "grace@localhost.test": "special-use or reserved name",
    "gr ace@example.org": "contains a space",
}


# -- the rules, as functions --------------------------------------------------------


@pytest.mark.parametrize(("email", "why"), sorted(REFUSED.items()))
def test_look_alike_and_broken_addresses_are_refused_with_the_reason_and_fix(
    email: str, why: str
) -> None:
    problem = email_problem(email)
    assert problem is not None, email
    assert problem.where == "email" and why in problem.message, problem
    assert problem.fix, problem


def test_normalised_variants_are_one_person_and_stored_plainly() -> None:
    for variant in (FULLWIDTH, MATH_BOLD, "  GRACE@Example.ORG\t", "Grace@example.org"):
        assert email_problem(variant) is None, variant
        assert person_key(variant) == "grace@example.org", variant
    assert normal_email(FULLWIDTH) == "grace@example.org"
    assert normal_email(" Grace@Example.org ") == "Grace@Example.org"  # case kept for mail
    # A domain in Unicode and in punycode is one domain, one person, mailed in ASCII.
    assert email_problem("ada@bücher.example") is None
    assert person_key("ada@bücher.example") == person_key("ADA@xn--bcher-kva.example")
    assert normal_email("ada@bücher.example") == "ada@xn--bcher-kva.example"


def test_keys_stored_before_stay_valid() -> None:
    """A plain ASCII address keys exactly as before (trimmed, lower case), so old rows match."""
    for email in ("grace@example.org", " Backer.1@Example.org ", "a+b@x.org", "weird..@x"):
        assert person_key(email) == email.strip().lower()


# -- properties ---------------------------------------------------------------------

_ATOM_CHARS = string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-"
atoms = st.text(_ATOM_CHARS, min_size=1, max_size=12)
labels = st.from_regex(r"[a-z0-9]{1,10}(-[a-z0-9]{1,5})?", fullmatch=True).filter(
    lambda label: label[2:4] != "--"
)
tlds = st.sampled_from(["org", "com", "coop", "uk", "example", "museum"])


@st.composite
def addresses(draw: st.DrawFn) -> str:
    local = ".".join(draw(st.lists(atoms, min_size=1, max_size=3)))
    domain = ".".join([*draw(st.lists(labels, min_size=1, max_size=3)), draw(tlds)])
    return f"{local}@{domain}"


def _variant(email: str, data: st.DataObject) -> str:
    """The same address as someone might type it: case, full-width, stray spaces."""
    out = []
    for char in email:
        choice = data.draw(st.sampled_from(["keep", "upper", "lower", "fullwidth"]))
        if choice == "upper":
            char = char.upper()
        elif choice == "lower":
            char = char.lower()
        elif choice == "fullwidth" and "!" <= char <= "~":
            char = chr(ord(char) - 0x21 + 0xFF01)  # NFKC maps it back
        out.append(char)
    return (
        data.draw(st.sampled_from(["", " ", "\t"]))
        + "".join(out)
        + data.draw(st.sampled_from(["", " ", "\n"]))
    )


INVISIBLES = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u202e", "\u3164"]
LOOK_ALIKES = {"a": "\u0430", "e": "\u0435", "o": "\u043e", "p": "\u0440", "c": "\u0441"}


@settings(max_examples=300, deadline=None)
@given(addresses(), st.data())
def test_key_is_idempotent_and_shared_by_case_and_nfkc_variants(
    email: str, data: st.DataObject
) -> None:
    key = person_key(email)
    assert person_key(key) == key
    assert email_problem(email) is None
    variant = _variant(email, data)
    assert person_key(variant) == key, variant
    assert email_problem(variant) is None, variant
    assert person_key(normal_email(variant)) == key


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_key_of_any_text_is_idempotent(text: str) -> None:
    key = person_key(text)
    assert person_key(key) == key


@settings(max_examples=300, deadline=None)
@given(addresses(), st.sampled_from(INVISIBLES), st.data())
def test_an_invisible_character_anywhere_is_refused(
    email: str, invisible: str, data: st.DataObject
) -> None:
    at = data.draw(st.integers(0, len(email)))
    attacked = email[:at] + invisible + email[at:]
    problem = email_problem(attacked)
    assert problem is not None and "invisible character" in problem.message, attacked


@settings(max_examples=300, deadline=None)
@given(addresses(), st.data())
def test_a_look_alike_letter_among_plain_ones_is_refused(email: str, data: st.DataObject) -> None:
    spots = [i for i, c in enumerate(email) if c in LOOK_ALIKES]
    assume(spots)
    at = data.draw(st.sampled_from(spots))
    attacked = email[:at] + LOOK_ALIKES[email[at]] + email[at + 1 :]
    # The part it landed in: the whole local part, or one domain label.
    local = attacked.partition("@")[0]
    in_local = at < len(local)
    start = max(attacked.rfind(".", 0, at), attacked.rfind("@", 0, at)) + 1
    stop = attacked.find(".", at)
    word = local if in_local else attacked[start : stop if stop != -1 else len(attacked)]
    latin_beside = any(c.isascii() and c.isalpha() for c in word)
    assume(in_local or latin_beside)  # a label all in Cyrillic is another (real) domain
    problem = email_problem(attacked)
    assert problem is not None, attacked
    expected = "alphabets" if latin_beside else "before the @"
    assert expected in problem.message, (attacked, problem)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(
    st.from_regex(
        r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,70}@([A-Za-z0-9-]{1,64}\.){1,3}[A-Za-z]{2,64}",
        fullmatch=True,
    )
)
def test_the_fast_path_accepts_only_what_email_validator_accepts(email: str) -> None:
    """people.py skips email-validator for plain addresses; it must never accept more."""
    if email_problem(email) is None:
        try:
            validate_email(email, check_deliverability=False, allow_smtputf8=False)
        except EmailNotValidError as exc:  # pragma: no cover - the failure we look for
            pytest.fail(f"{email!r} passed our check but email-validator says: {exc}")


# -- everywhere a person comes in -----------------------------------------------------

PERSON = ("--name", "Grace Hopper", "--address", "1 Navy Yard")


def _pledges(cli: Cli) -> list[dict[str, object]]:
    return json.loads(cli.ok("pledges", "list", "--json").output)


@pytest.mark.parametrize("email", [ZWSP, CYRILLIC, CYRILLIC_DOMAIN, "grace@example.org\u200b"])
def test_pledges_add_refuses_look_alikes_and_changes_nothing(cli: Cli, email: str) -> None:
    cli.ok("pledges", "add", *PERSON, "--email", "grace@example.org", "--amount", "50.00")
    result = cli("pledges", "add", *PERSON, "--email", email, "--amount", "50.00")
    assert result.exit_code == 2, result.output
    assert "email" in result.output and "Traceback" not in result.output
    assert "invisible character" in result.output or "alphabets" in result.output
    assert len(_pledges(cli)) == 1


@pytest.mark.keep_it_all  # shares issued before the deadline
def test_a_full_width_address_is_the_same_member_and_is_found_by_any_form(cli: Cli) -> None:
    """Holding cap and one member one vote: the variants are one person."""
    pay = ("pledges", "add", *PERSON, "--status", "paid")
    cli.ok(*pay, "--email", "grace@example.org", "--amount", "100.00", "--reference", "R1")
    cli.ok(*pay, "--email", FULLWIDTH, "--amount", "100.00", "--reference", "R2")
    cli.ok(*pay, "--email", MATH_BOLD, "--amount", "50.00", "--reference", "R3")
    stored = {p["email"] for p in _pledges(cli)}
    assert stored == {"grace@example.org"}  # stored plainly, so mail can reach it
    cli.ok("shares", "issue")
    members = json.loads(cli.ok("members", "list", "--json").output)
    assert len(members) == 1 and members[0]["shares"] == 5
    for typed in (FULLWIDTH, " GRACE@EXAMPLE.ORG", MATH_BOLD):
        shown = json.loads(cli.ok("members", "show", typed, "--json").output)
        assert shown["member"]["number"] == 1 and len(shown["pledges"]) == 3, typed
    roll = cli.ok("members", "roll", "--format", "csv").output
    assert roll.count("Grace Hopper") == 1


def test_forget_finds_a_backer_by_a_full_width_form(cli: Cli) -> None:
    cli.ok("pledges", "add", *PERSON, "--email", "eve@example.org", "--amount", "50.00")
    cli.ok("pledges", "cancel", "1")
    result = json.loads(
        cli.ok("members", "forget", fullwidth("eve") + "@example.org", "--json").output
    )
    assert result["pledges"] == [1]


def test_import_refuses_look_alike_rows_by_line(sqlite_cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "seed.csv"
    source.write_text(
        "name,email,amount,round,status,reference,address\n"
        "Grace,grace@example.org,100.00,seed,paid,R1,1 Road\n"
        f"Grace again,{ZWSP},100.00,seed,paid,R2,1 Road\n"
        f"Grace too,{CYRILLIC},100.00,seed,paid,R3,1 Road\n",
        encoding="utf-8",
    )
    result = sqlite_cli("pledges", "import", str(source))
    assert result.exit_code == 2, result.output
    assert "line 3 email" in result.output and "invisible character" in result.output
    assert "line 4 email" in result.output and "alphabets" in result.output
    assert _pledges(sqlite_cli) == []


def test_import_keys_full_width_rows_as_the_same_person(sqlite_cli: Cli, tmp_path: Path) -> None:
    source = tmp_path / "seed.csv"
    source.write_text(
        "name,email,amount,round,status,reference,address\n"
        "Grace,grace@example.org,100.00,seed,paid,R1,1 Road\n"
        f"Grace,{FULLWIDTH},100.00,seed,paid,R2,1 Road\n",
        encoding="utf-8",
    )
    sqlite_cli.ok("pledges", "import", str(source))
    ledger = open_ledger(sqlite_cli.db_url)
    try:
        with ledger.read() as conn:
            keys = set(conn.execute(sa.select(schema.pledges.c.person_key)).scalars())
    finally:
        ledger.dispose()
    assert keys == {"grace@example.org"}


PLEDGE = {
    "name": "Grace Hopper",
    "address": "1 Navy Yard",
    "consent": True,
}


@pytest.mark.parametrize("email", [ZWSP, CYRILLIC, CYRILLIC_DOMAIN])
def test_the_pledge_service_refuses_look_alikes(service: TestClient, email: str) -> None:
    answer = service.post("/api/pledges", json={**PLEDGE, "shares": 1, "email": email})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "email"


def test_the_holding_cap_counts_a_full_width_address_as_the_same_backer(
    service: TestClient,
) -> None:
    first = service.post("/api/pledges", json={**PLEDGE, "shares": 200, "email": "g@example.org"})
    assert first.status_code == 201, first.text
    again = service.post(
        "/api/pledges", json={**PLEDGE, "shares": 1, "email": fullwidth("G") + "@example.org"}
    )
    assert again.status_code == 422, again.text
    assert "no one may hold more than 200" in again.json()["error"]
