"""campaign.toml: the example loads; every mistake is named, explained and listed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from fundraiser.config import (
    Mode,
    Review,
    ScaleBack,
    check_campaign,
    load_campaign,
    review_campaign,
)
from fundraiser.errors import ConfigError, Problem
from fundraiser.money import Money

if TYPE_CHECKING:
    from conftest import Cli

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = (ROOT / "campaign.toml").read_text(encoding="utf-8")


def edit(old: str, new: str) -> Callable[[str], str]:
    """A bad variant of the example: one plain string edit that must apply."""

    def apply(text: str) -> str:
        assert text.count(old) == 1, f"{old!r} is not in the example exactly once"
        return text.replace(old, new)

    return apply


def without_table(name: str, following: str) -> Callable[[str], str]:
    """Drop the [name] table: everything from its header up to the next header."""

    def apply(text: str) -> str:
        start, end = text.index(f"[{name}]\n"), text.index(f"[{following}]\n")
        return text[:start] + text[end:]

    return apply


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


def assert_explained(problem: Problem, key: str) -> None:
    """A problem names the file and the key, and says how to fix it."""
    assert problem.where == f"campaign.toml: {key}"
    assert problem.message
    assert problem.fix.strip()
    text = str(problem)
    # The fix is its own sentence in the message: capitalised after the full stop.
    fix = problem.fix[:1].upper() + problem.fix[1:]
    assert "campaign.toml" in text and key in text and f". {fix}" in text


def assert_refused(path: Path, keys: list[str]) -> list[Problem]:
    problems = check_campaign(path)
    wheres = [p.where for p in problems]
    for key in keys:
        matching = [p for p in problems if p.where == f"campaign.toml: {key}"]
        assert matching, f"no problem for {key}; got {wheres}"
        for problem in matching:
            assert_explained(problem, key)
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    assert info.value.problems == problems
    message = str(info.value)
    assert f"has {len(problems)} {'problem' if len(problems) == 1 else 'problems'}:" in message
    for problem in problems:
        assert str(problem) in message
    return problems


# -- the example ------------------------------------------------------------------


def test_example_loads() -> None:
    campaign = load_campaign(ROOT / "campaign.toml")
    assert campaign.path == (ROOT / "campaign.toml").resolve()
    assert campaign.coop.name == "Hearth Social Co-operative"
    assert campaign.coop.legal_form == "co-operative society"
    assert campaign.coop.jurisdiction == (
        "England and Wales under the Co-operative and Community Benefit Societies Act 2014"
    )
    assert campaign.coop.country == "GB-ENG"
    assert campaign.coop.language == "en-GB"
    assert campaign.coop.registration_authority == "Financial Conduct Authority"
    assert campaign.coop.registration_number is None  # "" means not yet registered
    assert campaign.coop.certificates is True
    assert campaign.currency == "GBP"
    settings = campaign.campaign
    assert settings.goal == Money(25000000, "GBP")
    assert type(settings.goal.amount) is int
    assert settings.offer_maximum == Money(40000000, "GBP")
    assert settings.mode is Mode.ALL_OR_NOTHING
    assert settings.timezone == "Europe/London"
    assert settings.opens == datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    assert settings.deadline == datetime(2027, 2, 28, 18, 0, tzinfo=UTC)
    assert settings.deadline.utcoffset() == timedelta(0)
    shares = campaign.shares
    assert shares.price == Money(5000, "GBP")
    assert (shares.min_shares, shares.max_shares) == (1, 200)
    assert shares.scale_back is ScaleBack.SMALL_FIRST
    assert shares.max_holding == Money(1000000, "GBP")
    assert campaign.offer_max_shares == 8000
    assert [r.id for r in campaign.rounds] == ["seed", "crowd"]
    seed, crowd = campaign.rounds
    assert seed.name == "Seed round" and crowd.name == "Crowd round"
    assert seed.closes <= crowd.opens
    assert crowd.is_open(datetime(2026, 12, 10, 12, tzinfo=UTC))
    assert not seed.is_open(datetime(2026, 12, 10, 12, tzinfo=UTC))
    assert campaign.round("nope") is None
    assert [(t.id, t.shares, t.limit) for t in campaign.tiers] == [
        ("member", 1, None),
        ("neighbour", 4, None),
        ("founder", 20, 1000),
        ("cornerstone", 200, 50),
    ]
    founder = campaign.tier("founder")
    assert founder is not None and founder.name == "Founding builder"
    assert campaign.tier("nope") is None


def test_example_has_no_problems(campaign_dir: Path) -> None:
    assert check_campaign(ROOT / "campaign.toml") == []
    assert check_campaign(campaign_dir / "campaign.toml") == []
    copy = load_campaign(str(campaign_dir / "campaign.toml"))
    assert copy.directory == campaign_dir.resolve()
    assert copy.default_database_url().endswith("var/ledger.sqlite")


# -- one mistake at a time -------------------------------------------------------------

BAD = [
    pytest.param(without_table("coop", "campaign"), "[coop]", "missing", id="missing-coop"),
    pytest.param(
        edit('currency = "GBP"', 'currency = "XYZ"'),
        "campaign.currency",
        "unknown currency",
        id="unknown-currency",
    ),
    pytest.param(
        edit('goal = "250000.00"', 'goal = "-5"'), "campaign.goal", "negative", id="negative-goal"
    ),
    pytest.param(edit('goal = "250000.00"', 'goal = "0"'), "campaign.goal", "zero", id="zero-goal"),
    pytest.param(
        edit('goal = "250000.00"', 'goal = "100.001"'),
        "campaign.goal",
        "decimals",
        id="over-precise-goal",
    ),
    pytest.param(
        edit('goal = "250000.00"', "goal = 100000.0"),
        "campaign.goal",
        "floating-point",
        id="float-goal",
    ),
    pytest.param(
        edit('goal = "250000.00"', 'goal = "250,000.00"'),
        "campaign.goal",
        "not an amount",
        id="grouped-goal",
    ),
    pytest.param(
        edit('goal = "250000.00"', 'goal = "250000.00 EUR"'),
        "campaign.goal",
        "EUR",
        id="goal-in-other-currency",
    ),
    pytest.param(
        edit('goal = "250000.00"', 'goal = "25.00"'),
        "campaign.goal",
        "below the price of one share",
        id="goal-below-share-price",
    ),
    pytest.param(
        edit("deadline = 2027-02-28T18:00:00Z", "deadline = 2027-02-28T18:00:00"),
        "campaign.deadline",
        "time zone",
        id="deadline-local-datetime",
    ),
    pytest.param(
        edit("deadline = 2027-02-28T18:00:00Z", "deadline = 2027-02-28"),
        "campaign.deadline",
        "date without a time",
        id="deadline-date-only",
    ),
    pytest.param(
        edit("deadline = 2027-02-28T18:00:00Z", "deadline = 2026-08-01T18:00:00Z"),
        "campaign.deadline",
        "not after campaign.opens",
        id="deadline-before-opens",
    ),
    pytest.param(
        edit('timezone = "Europe/London"', 'timezone = "Europe/Narnia"'),
        "campaign.timezone",
        "not a known time zone",
        id="unknown-timezone",
    ),
    pytest.param(
        edit("min_shares = 1", "min_shares = 300"),
        "shares.min_shares",
        "more than shares.max_shares",
        id="min-over-max-shares",
    ),
    pytest.param(
        edit("max_shares = 200", "max_shares = 0"),
        "shares.max_shares",
        "at least 1",
        id="zero-max-shares",
    ),
    pytest.param(
        edit('mode = "all-or-nothing"', 'mode = "sometimes"'),
        "campaign.mode",
        "'sometimes' is not one of all-or-nothing, keep-it-all",
        id="unknown-mode",
    ),
    pytest.param(
        edit('scale_back = "small-first"', 'scale_back = "lottery"'),
        "shares.scale_back",
        "'lottery' is not one of pro-rata, first-come, small-first",
        id="unknown-scale-back",
    ),
    pytest.param(
        edit("shares = 200\ndescription", "shares = 201\ndescription"),
        "tiers[4].shares",
        "outside the holding limits (1 to 200)",
        id="tier-over-max-shares",
    ),
    pytest.param(
        edit('id = "neighbour"', 'id = "member"'),
        "tiers[2].id",
        "'member' is used twice",
        id="duplicate-tier-id",
    ),
    pytest.param(
        edit("limit = 1000", "limit = 0"), "tiers[3].limit", "at least 1", id="zero-tier-limit"
    ),
    pytest.param(
        edit('details = "Sort code 08-92-99, account 65432100"', 'details = ""'),
        "bank.details",
        "is empty",
        id="bank-without-details",
    ),
    pytest.param(
        edit("[bank]\n", '[bank]\niban_typo = "GB00"\n'),
        "bank.iban_typo",
        "not a known setting",
        id="unknown-bank-key",
    ),
    pytest.param(
        edit("[coop]\n", 'colour = "red"\n\n[coop]\n'),
        "colour",
        "not a known setting",
        id="unknown-top-level-key",
    ),
    pytest.param(
        edit('offer_maximum = "400000.00"', 'offer_maximum = "100000.00"'),
        "campaign.offer_maximum",
        "below the goal",
        id="offer-maximum-below-goal",
    ),
    pytest.param(
        edit("closes = 2027-02-28T18:00:00Z", "closes = 2027-03-31T18:00:00Z"),
        "rounds.crowd.closes",
        "after campaign.deadline",
        id="round-after-deadline",
    ),
    pytest.param(
        without_table("rounds.crowd", "[tiers]"), "rounds.crowd", "missing", id="no-crowd-round"
    ),
    pytest.param(
        edit("certificates = true", 'certificates = "yes"'),
        "coop.certificates",
        "true or false",
        id="certificates-not-bool",
    ),
    pytest.param(
        edit('name = "Hearth Social Co-operative"', 'name = "  "'),
        "coop.name",
        "empty",
        id="blank-coop-name",
    ),
    pytest.param(
        edit('name = "Hearth Social Co-operative"', 'name = "Hearth\\nStatus: draft"'),
        "coop.name",
        "line break",
        id="coop-name-on-two-lines",
    ),
    pytest.param(
        edit('legal_form = "co-operative society"', f'legal_form = "{"x" * 201}"'),
        "coop.legal_form",
        "201 characters long",
        id="oversized-legal-form",
    ),
    pytest.param(
        edit('country = "GB-ENG"', 'country = "XX"'),
        "coop.country",
        "'XX' is not a country code",
        id="unknown-country",
    ),
    pytest.param(
        edit('country = "GB-ENG"', 'country = "England"'),
        "coop.country",
        "not a country code",
        id="country-by-name",
    ),
    pytest.param(
        edit('language = "en-GB"', 'language = "english"'),
        "coop.language",
        "'english' is not a language Babel knows",
        id="unknown-language",
    ),
    pytest.param(
        edit('language = "en-GB"', 'language = "en_GB"'),
        "coop.language",
        "underscore",
        id="language-with-underscore",
    ),
    pytest.param(
        edit('website = "https://hearth.example"', 'website = "hearth.example"'),
        "coop.website",
        "not a web address",
        id="website-without-scheme",
    ),
    pytest.param(
        edit('website = "https://hearth.example"', 'website = "javascript:alert(1)"'),
        "coop.website",
        "not a web address",
        id="website-script",
    ),
    pytest.param(
        edit('contact_email = "members@hearth.example"', 'contact_email = "members at hearth"'),
        "coop.contact_email",
        "not an email address",
        id="contact-email-not-an-address",
    ),
    pytest.param(
        edit(
            'contact_email = "members@hearth.example"',
            'contact_email = "Hearth <members@hearth.example>"',
        ),
        "coop.contact_email",
        "not an email address",
        id="contact-email-with-a-name",
    ),
    # Regression: a table that is present but empty used to give no problems at
    # all, so `check` passed it and every other command failed with "0 problem(s)".
    pytest.param(
        edit(EXAMPLE[EXAMPLE.index("[coop]\n") : EXAMPLE.index("[campaign]\n")], "[coop]\n\n"),
        "[coop]",
        "empty",
        id="empty-coop-table",
    ),
    pytest.param(
        without_table("rounds.seed", "[tiers]"),
        "[rounds]",
        "missing",
        id="no-rounds-at-all",
    ),
    pytest.param(
        edit(
            EXAMPLE[EXAMPLE.index("[rounds.seed]\n") : EXAMPLE.index("[[tiers]]\n")],
            "[rounds]\n\n",
        ),
        "[rounds]",
        "empty",
        id="empty-rounds-table",
    ),
]


# -- misspelt keys: an error with the nearest key, never a setting silently dropped --------

MISSPELT = [
    pytest.param(
        edit("certificates = true", "certificate = false"),
        "coop.certificate",
        "certificates",
        id="certificate",
    ),
    pytest.param(
        edit('contact_email = "members', 'contact_emial = "members'),
        "coop.contact_emial",
        "contact_email",
        id="contact_emial",
    ),
    pytest.param(
        edit('offer_maximum = "400000.00"', 'offer_maximun = "400000.00"'),
        "campaign.offer_maximun",
        "offer_maximum",
        id="offer_maximun",
    ),
    pytest.param(
        edit('timezone = "Europe/London"', 'Timezone = "Europe/London"'),
        "campaign.Timezone",
        "timezone",
        id="capitalised-timezone",
    ),
    pytest.param(edit("[campaign]\n", "[campain]\n"), "campain", "campaign", id="unknown-table"),
    pytest.param(edit("limit = 1000", "limt = 1000"), "tiers[3].limt", "limit", id="tier-limt"),
    pytest.param(
        edit('name = "Crowd round"', 'nmae = "Crowd round"'),
        "rounds.crowd.nmae",
        "name",
        id="round-nmae",
    ),
    pytest.param(
        edit("[rounds.seed]\n", "[rounds.sead]\n"), "rounds.sead", "seed", id="round-sead"
    ),
    pytest.param(
        edit('account_name = "Hearth', 'acount_name = "Hearth'),
        "bank.acount_name",
        "account_name",
        id="bank-acount_name",
    ),
    pytest.param(
        edit('scale_back = "small-first"', 'scaleback = "small-first"'),
        "shares.scaleback",
        "scale_back",
        id="shares-scaleback",
    ),
]


@pytest.mark.parametrize(("change", "key", "meant"), MISSPELT)
def test_misspelt_key_is_refused_with_the_key_it_meant(
    tmp_path: Path, change: Callable[[str], str], key: str, meant: str
) -> None:
    problems = assert_refused(write(tmp_path, change(EXAMPLE)), [key])
    (problem,) = [p for p in problems if p.where == f"campaign.toml: {key}"]
    assert problem.message in ("is not a known setting", "is not a known round")
    assert problem.fix == f"did you mean `{meant}`?"


def test_a_misspelt_offer_maximum_no_longer_lifts_the_cap(tmp_path: Path) -> None:
    # Before: `offer_maximun` was ignored and the campaign loaded without a cap.
    path = write(tmp_path, EXAMPLE.replace("offer_maximum =", "offer_maximun ="))
    with pytest.raises(ConfigError) as info:
        load_campaign(path)
    assert "campaign.offer_maximun" in str(info.value)
    assert "Did you mean `offer_maximum`?" in str(info.value)


@pytest.mark.parametrize(
    ("change", "key", "listed"),
    [
        (edit("[coop]\n", 'colour = "red"\n\n[coop]\n'), "colour", "coop, campaign, shares"),
        (
            edit("[bank]\n", '[bank]\nrouting = "021000021"\n'),
            "bank.routing",
            "account_name, iban, bic, sort_code, account_number, details, csv",
        ),
        (
            edit("limit = 50", 'limit = 50\nperks = "a mug"'),
            "tiers[4].perks",
            "id, name, shares, description, limit",
        ),
        (
            edit("[rounds.crowd]\n", "[rounds.crowd]\nvisible = true\n"),
            "rounds.crowd.visible",
            "name, opens, closes",
        ),
        (edit("[rounds.seed]\n", "[rounds.bonus]\n"), "rounds.bonus", "seed, crowd"),
    ],
    ids=["top-level", "bank", "tier", "round-key", "round"],
)
def test_unknown_key_with_nothing_near_lists_what_the_table_takes(
    tmp_path: Path, change: Callable[[str], str], key: str, listed: str
) -> None:
    problems = assert_refused(write(tmp_path, change(EXAMPLE)), [key])
    (problem,) = [p for p in problems if p.where == f"campaign.toml: {key}"]
    assert problem.fix.startswith("remove it; ") and listed in problem.fix


def test_every_known_key_of_the_example_is_read() -> None:
    """The schema is what the loader asks for: the example uses every key and passes."""
    assert check_campaign(ROOT / "campaign.toml") == []
    for key in ("country", "language", "registration_authority", "offer_maximum", "limit"):
        assert f"\n{key} = " in EXAMPLE


@pytest.mark.parametrize(("change", "key", "message"), BAD)
def test_bad_campaign(tmp_path: Path, change: Callable[[str], str], key: str, message: str) -> None:
    path = write(tmp_path, change(EXAMPLE))
    problems = assert_refused(path, [key])
    assert any(p.where == f"campaign.toml: {key}" and message in p.message for p in problems), [
        str(p) for p in problems
    ]


def test_missing_file(tmp_path: Path) -> None:
    problems = assert_refused(tmp_path / "campaign.toml", ["(file)"])
    assert [p.message for p in problems] == ["not found"]
    assert "fundraiser init" in problems[0].fix


def test_directory_instead_of_file(tmp_path: Path) -> None:
    (tmp_path / "campaign.toml").mkdir()
    problems = assert_refused(tmp_path / "campaign.toml", ["(file)"])
    assert "directory" in problems[0].message


@pytest.mark.parametrize(
    "change",
    [
        edit('goal = "250000.00"', 'goal = "250000.00'),
        edit("[campaign]\n", "[campaign\n"),
        edit("min_shares = 1", "min_shares = "),
        edit("[shares]\n", "[coop]\n"),  # a table defined twice
    ],
    ids=["unterminated-string", "bad-header", "missing-value", "duplicate-table"],
)
def test_malformed_toml(tmp_path: Path, change: Callable[[str], str]) -> None:
    problems = assert_refused(write(tmp_path, change(EXAMPLE)), ["(syntax)"])
    assert len(problems) == 1
    assert "not valid TOML" in problems[0].message
    assert "line" in problems[0].message  # tomllib says where


MANY = [
    edit('goal = "250000.00"', 'goal = "-5"'),
    edit('mode = "all-or-nothing"', 'mode = "sometimes"'),
    edit("deadline = 2027-02-28T18:00:00Z", "deadline = 2027-02-28T18:00:00"),
    edit("min_shares = 1", "min_shares = 300"),
    edit('id = "neighbour"', 'id = "member"'),
    edit("[coop]\n", 'colour = "red"\n\n[coop]\n'),
    # The misspellings issue 13 found, and more, all in the same file.
    edit("certificates = true", "certificate = false"),
    edit('contact_email = "members', 'contact_emial = "members'),
    edit('offer_maximum = "400000.00"', 'offer_maximun = "400000.00"'),
    edit("limit = 1000", "limt = 1000"),
    edit('name = "Crowd round"', 'nmae = "Crowd round"'),
    edit('account_name = "Hearth', 'acount_name = "Hearth'),
]
MANY_KEYS = [
    "campaign.goal",
    "campaign.mode",
    "campaign.deadline",
    "shares.min_shares",
    "tiers[2].id",
    "colour",
    "coop.certificate",
    "coop.contact_emial",
    "campaign.offer_maximun",
    "tiers[3].limt",
    "rounds.crowd.nmae",
    "bank.acount_name",
]


def broken_text() -> str:
    text = EXAMPLE
    for change in MANY:
        text = change(text)
    return text


def test_every_problem_is_listed(tmp_path: Path) -> None:
    problems = assert_refused(write(tmp_path, broken_text()), MANY_KEYS)
    assert len(problems) >= len(MANY_KEYS)
    assert len({str(p) for p in problems}) == len(problems)  # no duplicates


# -- the command line --------------------------------------------------------------------


def test_cli_check_ok(sqlite_cli: Cli) -> None:
    result = sqlite_cli("check")
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    assert "Hearth Social Co-operative" in result.stdout
    assert "£250,000.00" in result.stdout


def test_cli_check_json_ok(sqlite_cli: Cli) -> None:
    result = sqlite_cli("check", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["ok"] is True and data["problems"] == []
    # The example is not registered yet: a warning, not a problem.
    assert [w["where"] for w in data["warnings"]] == ["campaign.toml: coop.registration_number"]


def test_cli_check_lists_every_problem(sqlite_cli: Cli) -> None:
    sqlite_cli.campaign.write_text(broken_text(), encoding="utf-8")
    expected = check_campaign(sqlite_cli.campaign)
    result = sqlite_cli("check")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    assert f"{len(expected)} problems" in result.stderr
    for problem in expected:
        assert str(problem) in result.stderr
    for key in MANY_KEYS:
        assert f"campaign.toml: {key}" in result.stderr
    for meant in ("certificates", "contact_email", "offer_maximum", "limit", "name"):
        assert f"Did you mean `{meant}`?" in result.stderr


def test_cli_check_json_problems(sqlite_cli: Cli) -> None:
    sqlite_cli.campaign.write_text(broken_text(), encoding="utf-8")
    result = sqlite_cli("check", "--json")
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert data["problems"] == [p.as_dict() for p in check_campaign(sqlite_cli.campaign)]
    for item in data["problems"]:
        assert set(item) == {"where", "message", "fix"}
        assert item["where"].startswith("campaign.toml: ")
        assert item["message"] and item["fix"]
    wheres = {item["where"] for item in data["problems"]}
    assert {f"campaign.toml: {key}" for key in MANY_KEYS} <= wheres


def test_cli_check_missing_file(sqlite_cli: Cli) -> None:
    sqlite_cli.campaign.unlink()
    result = sqlite_cli("check")
    assert result.exit_code == 1, result.output
    assert "campaign.toml: (file): not found" in result.stderr
    assert "Traceback" not in result.output


def test_cli_check_empty_table(sqlite_cli: Cli) -> None:
    start, end = EXAMPLE.index("[coop]\n"), EXAMPLE.index("[campaign]\n")
    sqlite_cli.campaign.write_text(EXAMPLE[:start] + "[coop]\n\n" + EXAMPLE[end:])
    result = sqlite_cli("check")
    assert result.exit_code == 1, result.output
    assert "campaign.toml: [coop]: the table is empty" in result.stderr


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (edit('goal = "250000.00"', 'goal = "-5"'), "campaign.goal"),
        (edit('mode = "all-or-nothing"', 'mode = "sometimes"'), "campaign.mode"),
        (edit('goal = "250000.00"', 'goal = "250000.00'), "(syntax)"),
    ],
    ids=["negative-goal", "unknown-mode", "malformed"],
)
def test_cli_status_with_broken_campaign(
    sqlite_cli: Cli, change: Callable[[str], str], key: str
) -> None:
    sqlite_cli.campaign.write_text(change(EXAMPLE), encoding="utf-8")
    result = sqlite_cli("status")
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output
    assert result.stderr.startswith("Error: ")
    assert f"campaign.toml: {key}" in result.stderr
    assert "Usage:" not in result.output


def test_cli_status_with_missing_campaign(sqlite_cli: Cli) -> None:
    sqlite_cli.campaign.unlink()
    result = sqlite_cli("status")
    assert result.exit_code == 2, result.output
    assert "campaign.toml: (file): not found" in result.stderr
    assert "Traceback" not in result.output


# -- warnings: what a co-op can campaign without, and where each gap shows ----------------

NO_CONTACT = edit('contact_email = "members@hearth.example"\n', "")
REGISTERED = edit('registration_number = ""', 'registration_number = "RS008765"')


def test_the_example_warns_only_that_it_is_not_registered_yet() -> None:
    review = review_campaign(ROOT / "campaign.toml")
    assert review.problems == []
    (warning,) = review.warnings
    assert warning.where == "campaign.toml: coop.registration_number"
    for place in ("every page", "share certificate", "share offer page", "mails"):
        assert place in warning.message
    assert warning.fix == (
        "fill it in once the co-op is registered with the Financial Conduct Authority"
    )


def test_no_warnings_once_registered_and_reachable(tmp_path: Path) -> None:
    assert review_campaign(write(tmp_path, REGISTERED(EXAMPLE))) == Review([], [])


def test_cli_check_warns_and_still_passes(sqlite_cli: Cli) -> None:
    sqlite_cli.campaign.write_text(NO_CONTACT(EXAMPLE), encoding="utf-8")
    result = sqlite_cli("check")
    assert result.exit_code == 0, result.output
    assert "OK" in result.stdout
    assert "2 warnings:" in result.stderr
    assert "campaign.toml: coop.registration_number: is empty" in result.stderr
    assert "campaign.toml: coop.contact_email: is empty" in result.stderr
    for place in ("site's footer", "pledge page", "MAIL_FROM"):
        assert place in result.stderr
    data = json.loads(sqlite_cli("check", "--json").stdout)
    assert data["ok"] is True and data["problems"] == []
    assert [w["where"] for w in data["warnings"]] == [
        "campaign.toml: coop.registration_number",
        "campaign.toml: coop.contact_email",
    ]
    assert all(w["message"] and w["fix"] for w in data["warnings"])


def test_warnings_are_listed_beside_problems(sqlite_cli: Cli) -> None:
    broken = edit('goal = "250000.00"', 'goal = "-5"')(NO_CONTACT(REGISTERED(EXAMPLE)))
    sqlite_cli.campaign.write_text(broken, encoding="utf-8")
    result = sqlite_cli("check", "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert [p["where"] for p in data["problems"]] == ["campaign.toml: campaign.goal"]
    assert [w["where"] for w in data["warnings"]] == ["campaign.toml: coop.contact_email"]
    human = sqlite_cli("check")
    assert "1 problem:" in human.stderr and "1 warning:" in human.stderr


@pytest.mark.parametrize(
    ("country", "language"),
    [('country = "FR"', "fr"), ('country = "DE"', "de"), ('country = "GB-SCT"', "en"), ("", "en")],
)
def test_the_language_defaults_to_the_countrys(tmp_path: Path, country: str, language: str) -> None:
    text = edit('language = "en-GB"\n', "")(EXAMPLE)
    text = edit('country = "GB-ENG"', country)(text)
    coop = load_campaign(write(tmp_path, text)).coop
    assert coop.language == language
    assert coop.country == (country.split('"')[1] if country else None)


# -- [books] path: the treasurer's books, beside campaign.toml ---------------------------------


def test_the_books_path_is_read_from_campaign_tomls_folder(tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE + '\n[books]\npath = "books/coop.beancount"\n')
    campaign = load_campaign(path)
    assert campaign.books.path == tmp_path.resolve() / "books" / "coop.beancount"
    # Whether the file is there is `check`'s and the site build's business: the pledge
    # service reads campaign.toml on servers that need not hold the books.
    assert check_campaign(path) == []
    assert load_campaign(write(tmp_path, EXAMPLE)).books.path is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('"books/"', "'books/' is a folder"),
        ('"books/a\\nb.beancount"', "has a line break"),
        ("3", "must be text"),
    ],
    ids=["folder", "line-break", "number"],
)
def test_a_books_path_that_cannot_be_a_file_is_refused(
    tmp_path: Path, value: str, message: str
) -> None:
    problems = assert_refused(write(tmp_path, EXAMPLE + f"\n[books]\npath = {value}\n"), [])
    (problem,) = [p for p in problems if p.where == "campaign.toml: books.path"]
    assert message in problem.message and problem.fix


def test_a_misspelt_books_path_is_named_with_the_key_it_meant(tmp_path: Path) -> None:
    problems = assert_refused(write(tmp_path, EXAMPLE + '\n[books]\npaht = "b.beancount"\n'), [])
    (problem,) = [p for p in problems if p.where == "campaign.toml: books.paht"]
    assert problem.fix == "did you mean `path`?"


# -- [membership]: joining after the campaign ------------------------------------------


def test_example_membership_reads_every_term() -> None:
    from fundraiser.config import Admission, Interval, Rate, Surplus

    membership = load_campaign(ROOT / "campaign.toml").membership
    assert membership is not None
    assert membership.open is True
    assert membership.min_shares_to_join == 1
    assert membership.admission is Admission.BOARD
    assert (membership.grace_days, membership.withdrawal_notice_days) == (30, 90)
    fee = membership.fee
    assert fee is not None
    assert fee.amount == Money(300, "GBP") and fee.interval is Interval.MONTH
    assert fee.reduced == Money(100, "GBP") and fee.supporter == Money(600, "GBP")
    assert fee.surplus is Surplus.FREE_PLACES
    assert fee.rates() == {
        Rate.STANDARD: Money(300, "GBP"),
        Rate.REDUCED: Money(100, "GBP"),
        Rate.SUPPORTER: Money(600, "GBP"),
        Rate.FREE: Money(0, "GBP"),
    }


def test_a_campaign_without_membership_lets_no_one_join(tmp_path: Path) -> None:
    start = EXAMPLE.index("\n# Joining after the campaign")
    campaign = load_campaign(write(tmp_path, EXAMPLE[:start] + "\n"))
    assert campaign.membership is None


def test_membership_without_a_fee_needs_no_fee_terms(tmp_path: Path) -> None:
    start = EXAMPLE.index("\nfee = ")
    end = EXAMPLE.index("\n# An unpaid fee")
    text = EXAMPLE[:start] + '\nfee = "none"' + EXAMPLE[end:].replace("grace_days = 30\n", "")
    membership = load_campaign(write(tmp_path, text)).membership
    assert membership is not None and membership.fee is None


BAD_MEMBERSHIP = [
    pytest.param(
        edit("min_shares = 1\n", "min_shares = 2\n"),
        "membership.min_shares_to_join",
        "outside the holding limits (2 to 200)",
        id="below-the-share-terms",
    ),
    pytest.param(
        edit("min_shares_to_join = 1", "min_shares_to_join = 201"),
        "membership.min_shares_to_join",
        "outside the holding limits (1 to 200)",
        id="above-the-cap",
    ),
    pytest.param(
        edit('admission = "board"', 'admission = "vote"'),
        "membership.admission",
        "is not one of automatic, board",
        id="admission",
    ),
    pytest.param(
        edit('fee_interval = "month"', 'fee_interval = "week"'),
        "membership.fee_interval",
        "is not one of year, month",
        id="interval",
    ),
    pytest.param(
        edit('reduced_fee = "1.00"', 'reduced_fee = "3.50"'),
        "membership.reduced_fee",
        "is not between nothing and the fee (£3.00)",
        id="reduced-above-fee",
    ),
    pytest.param(
        edit('supporter_fee = "6.00"', 'supporter_fee = "2.00"'),
        "membership.supporter_fee",
        "is not above the fee (£3.00)",
        id="supporter-below-fee",
    ),
    pytest.param(
        edit('fee = "3.00"', "fee = 3.0"),
        "membership.fee",
        "is a floating-point number",
        id="float-fee",
    ),
    pytest.param(
        edit('fee = "3.00"', 'fee = "0.00"'),
        "membership.fee",
        "is zero",
        id="zero-fee",
    ),
    pytest.param(
        edit('fee = "3.00"', 'fee = "none"'),
        "membership.fee_interval",
        "is given without a fee",
        id="terms-without-fee",
    ),
    pytest.param(
        edit("grace_days = 30", "grace_days = -1"),
        "membership.grace_days",
        "must be at least 0",
        id="negative-grace",
    ),
    pytest.param(
        edit("open = true", 'open = "yes"'),
        "membership.open",
        "must be true or false",
        id="open-not-bool",
    ),
    pytest.param(
        edit("withdrawal_notice_days = 90", "withdrawal_notice = 90"),
        "membership.withdrawal_notice",
        "is not a known setting",
        id="misspelt",
    ),
    pytest.param(
        edit('supporter_surplus = "free-places"', 'supporter_surplus = "parties"'),
        "membership.supporter_surplus",
        "is not one of free-places, running-costs",
        id="surplus",
    ),
]


@pytest.mark.parametrize(("change", "key", "message"), BAD_MEMBERSHIP)
def test_bad_membership_is_refused_by_name(
    tmp_path: Path, change: Callable[[str], str], key: str, message: str
) -> None:
    problems = assert_refused(write(tmp_path, change(EXAMPLE)), [key])
    assert any(p.where == f"campaign.toml: {key}" and message in p.message for p in problems), [
        str(p) for p in problems
    ]


def test_check_names_a_membership_problem(sqlite_cli: Cli, tmp_path: Path) -> None:
    path = write(tmp_path, EXAMPLE.replace('admission = "board"', 'admission = "vote"'))
    result = sqlite_cli("--campaign", str(path), "check")
    assert result.exit_code == 1
    assert "membership.admission" in result.output
    assert "is not one of automatic, board" in result.output
