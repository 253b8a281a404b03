"""`fundraiser preflight` against wrong configurations, each problem named with its fix;
`site build --publish` refusing the same missing keys; `fundraiser backup`."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fundraiser.cli import main
from tests.conftest import Cli

#: Everything the service, the site and mail need, right, for a co-op at riverside.example.
GOOD_ENV: dict[str, str | None] = {
    "STRIPE_SECRET_KEY": "sk_live_riverside0000000000",
    "STRIPE_PUBLISHABLE_KEY": "pk_live_riverside0000000000",
    "STRIPE_WEBHOOK_SECRET": "whsec_riverside000000000000",
    "FUNDRAISER_SECRET": "a-long-random-value-for-links-0123456789",
    "SITE_ORIGIN": "https://riverside.example",
    "PLEDGE_API": "https://pledge.riverside.example",
    "SMTP_URL": "smtp://bakers:secret@mail.riverside.example:587",
    # Whatever the machine running the tests has, the co-op's shell has none of these.
    "STRIPE_API_BASE": None,
    "STRIPE_JS_URL": None,
    "SITEURL": None,
    "WEB_CONCURRENCY": None,
    "DATABASE_URL": None,
    "FUNDRAISER_NOW": None,
    "FUNDRAISER_CAMPAIGN": None,
}


def fundraiser(coop: Path, *args: str, **env: str | None) -> Result:
    return CliRunner().invoke(
        main, ["--campaign", str(coop / "campaign.toml"), *args], env={**GOOD_ENV, **env}
    )


def problems(coop: Path, *args: str, **env: str | None) -> list[dict[str, str]]:
    result = fundraiser(coop, "preflight", "--json", *args, **env)
    answer = json.loads(result.stdout)
    assert result.exit_code == (1 if answer["problems"] else 0), result.output
    assert answer["ok"] is (not answer["problems"])
    found: list[dict[str, str]] = answer["problems"]
    return found


def named(found: list[dict[str, str]], where: str, words: str) -> dict[str, str]:
    hits = [p for p in found if p["where"] == where and words in p["message"]]
    assert len(hits) == 1, f"{where}: {words!r} not named once in:\n" + json.dumps(found, indent=1)
    assert hits[0]["fix"], hits[0]
    return hits[0]


@pytest.fixture
def coop(tmp_path: Path) -> Path:
    """A co-op made by init, published as it should be, its ledger backed up: ready."""
    folder = tmp_path / "riverside"
    made = CliRunner().invoke(
        main,
        [
            "init",
            str(folder),
            "--yes",
            "--name",
            "Riverside Bakers",
            "--contact-email",
            "hello@riverside.example",
            "--website",
            "https://riverside.example",
        ],
        env={"FUNDRAISER_NOW": "2027-01-01T10:00:00+00:00"},
    )
    assert made.exit_code == 0, made.output
    published = fundraiser(folder, "site", "build", "--publish")
    assert published.exit_code == 0, published.output
    backed_up = fundraiser(folder, "backup")
    assert backed_up.exit_code == 0, backed_up.output
    return folder


def test_a_ready_configuration_passes(coop: Path) -> None:
    assert problems(coop) == []
    result = fundraiser(coop, "preflight")
    assert result.exit_code == 0, result.output
    assert "Ready for going live: no problem found." in result.stdout


def test_a_deliberately_wrong_configuration_names_each_problem(coop: Path) -> None:
    # A preview built without the publishable key, as a hurried organizer might upload it.
    preview = fundraiser(coop, "site", "build", STRIPE_PUBLISHABLE_KEY=None, PLEDGE_API=None)
    assert preview.exit_code == 0, preview.output
    ledger = coop / "var" / "ledger.sqlite"
    ledger.chmod(0o644)
    for old in (coop / "var" / "backups").iterdir():
        os.utime(old, (0, 0))  # the last backup, long ago
    campaign = coop / "campaign.toml"
    text = campaign.read_text()
    text = text.replace('contact_email = "hello@riverside.example"', 'contact_email = ""')
    campaign.write_text(text.replace("min_shares = 5", "min_shares = 0"))
    wrong: dict[str, str | None] = {
        "STRIPE_SECRET_KEY": "sk_test_riverside000000000",
        "STRIPE_PUBLISHABLE_KEY": "pk_live_riverside000000000",
        "STRIPE_WEBHOOK_SECRET": None,
        "FUNDRAISER_SECRET": "short",
        "SITE_ORIGIN": "http://riverside.example",
        "PLEDGE_API": "http://pledge.riverside.example",
        "SMTP_URL": None,
        "WEB_CONCURRENCY": "4",
        "FUNDRAISER_NOW": "2027-03-01T09:00:00+00:00",
        "SITEURL": "https://www.riverside.example",
    }
    found = problems(coop, **wrong)
    expected = [
        ("STRIPE_SECRET_KEY", "is a test key (sk_test_…): pledges would take no real money"),
        ("STRIPE_PUBLISHABLE_KEY", "is a live key and STRIPE_SECRET_KEY a test key"),
        ("STRIPE_WEBHOOK_SECRET", "is not set"),
        ("FUNDRAISER_SECRET", "is shorter than 16 characters"),
        ("SITE_ORIGIN", "'http://riverside.example' is not https"),
        ("SITE_ORIGIN", "but the site is published at https://www.riverside.example"),
        ("PLEDGE_API", "'http://pledge.riverside.example' is not an https address"),
        ("WEB_CONCURRENCY", "4 service processes would share one SQLite ledger"),
        ("SMTP_URL", "is not set"),
        ("campaign.toml: coop.contact_email", "is empty"),
        ("campaign.toml: shares.min_shares", ""),
        ("site", "is a preview build"),
        ("site: pledge.html", "was built without the publishable key"),
        ("site: pledge.html", "sends pledges to the site's own origin, but PLEDGE_API is http"),
        ("ledger", f"{coop / 'var' / 'ledger.sqlite'} can be read by other users"),
        ("backups", f"no backup of the ledger in {coop / 'var' / 'backups'} since 1970-01-01"),
        ("FUNDRAISER_NOW", "is set (2027-03-01T09:00:00+00:00)"),
    ]
    for where, words in expected:
        named(found, where, words)
    assert len(found) == len(expected), json.dumps(found, indent=1)
    # For a person: every problem with its fix, on stderr, and exit 1.
    told = fundraiser(coop, "preflight", **wrong)
    assert told.exit_code == 1
    assert f"{len(expected)} problems before going live:" in told.stderr
    assert "chmod 600" in told.stderr and "Traceback" not in told.output
    # Nothing was changed by looking.
    assert stat.S_IMODE(ledger.stat().st_mode) == 0o644
    assert 'contact_email = ""' in campaign.read_text()


def test_books_that_do_not_load_are_named_by_file_and_line(coop: Path) -> None:
    campaign = coop / "campaign.toml"
    campaign.write_text(campaign.read_text() + '\n[books]\npath = "books/coop.beancount"\n')
    named(problems(coop), "campaign.toml: books.path", "books/coop.beancount does not exist")
    books = coop / "books" / "coop.beancount"
    books.parent.mkdir()
    books.write_text("2027-01-01 open Assets:Bank:Current GBP\n2027-01-02 open Nonsense\n")
    named(problems(coop), "books/coop.beancount:2", "Invalid token")


@pytest.mark.parametrize(
    ("env", "args", "where", "words"),
    [
        (
            {"STRIPE_API_BASE": "http://127.0.0.1:8420"},
            [],
            "STRIPE_API_BASE",
            "sends live keys to http://127.0.0.1:8420, not to Stripe",
        ),
        (
            {"STRIPE_PUBLISHABLE_KEY": "sk_live_riverside0000000000"},
            [],
            "STRIPE_PUBLISHABLE_KEY",
            "starts 'sk_': it is not a publishable key",
        ),
        (
            {"STRIPE_SECRET_KEY": "pk_live_riverside0000000000"},
            [],
            "STRIPE_SECRET_KEY",
            "starts 'pk_': it is not a Stripe secret key",
        ),
        (
            {"STRIPE_WEBHOOK_SECRET": "sk_live_not_a_webhook_secret"},
            [],
            "STRIPE_WEBHOOK_SECRET",
            "is not a webhook signing secret",
        ),
        (
            {"SMTP_URL": "http://mail.riverside.example"},
            [],
            "SMTP_URL",
            "must start with smtp:// or smtps://",
        ),
        (
            {"SITE_ORIGIN": "https://riverside.example/pledge"},
            [],
            "SITE_ORIGIN",
            "'https://riverside.example/pledge' is not an origin",
        ),
        ({}, ["--rehearsal"], "STRIPE_SECRET_KEY", "is a live key (sk_live_…) in a rehearsal"),
        ({}, ["--processes", "2"], "WEB_CONCURRENCY", "2 service processes"),
    ],
)
def test_each_wrong_key_or_address_is_named(
    coop: Path, env: dict[str, str], args: list[str], where: str, words: str
) -> None:
    found = problems(coop, *args, **env)
    named(found, where, words)


def test_a_site_built_for_other_keys_or_another_service_is_named(coop: Path) -> None:
    rebuilt = fundraiser(
        coop,
        "site",
        "build",
        "--publish",
        STRIPE_PUBLISHABLE_KEY="pk_test_riverside0000000000",
        PLEDGE_API="https://elsewhere.example",
        STRIPE_JS_URL="http://127.0.0.1:8420/js.stripe.com/v3/",
    )
    assert rebuilt.exit_code == 0, rebuilt.output
    found = problems(coop)
    named(found, "site: pledge.html", "carries a test publishable key (pk_test_…)")
    named(found, "site: pledge.html", "sends pledges to https://elsewhere.example")
    named(found, "site: pledge.html", "loads Stripe.js from http://127.0.0.1:8420")
    assert len(found) == 3, found
    # A rehearsal with test keys on the same build: only the other service remains.
    rehearsal = problems(
        coop,
        "--rehearsal",
        STRIPE_SECRET_KEY="sk_test_riverside0000000000",
        STRIPE_PUBLISHABLE_KEY="pk_test_riverside0000000000",
    )
    assert [p["message"] for p in rehearsal] == [
        "sends pledges to https://elsewhere.example, but PLEDGE_API is "
        "https://pledge.riverside.example"
    ]


@pytest.mark.parametrize(
    ("env", "where"),
    [
        ({"STRIPE_PUBLISHABLE_KEY": None}, "STRIPE_PUBLISHABLE_KEY"),
        ({"STRIPE_PUBLISHABLE_KEY": "live_riverside0000000000"}, "STRIPE_PUBLISHABLE_KEY"),
        ({"PLEDGE_API": "http://pledge.riverside.example"}, "PLEDGE_API"),
    ],
)
def test_publishing_refuses_the_missing_keys_with_preflights_words(
    coop: Path, env: dict[str, str | None], where: str
) -> None:
    index = coop / "site" / "output" / "index.html"
    before = index.read_bytes()
    refused = fundraiser(coop, "site", "build", "--publish", **env)
    assert refused.exit_code == 2, refused.output
    assert "the public site would not take pledges:" in refused.output
    said = [p for p in problems(coop, **env) if p["where"] == where]
    assert said, "preflight names it too"
    for problem in said:
        fix = problem["fix"][:1].upper() + problem["fix"][1:]  # a sentence of its own
        line = f"{problem['where']}: {problem['message']}. {fix}"
        assert line in refused.output
    assert index.read_bytes() == before  # the published site is left as it was


# -- fundraiser backup ------------------------------------------------------------------


def test_backup_is_a_consistent_private_copy_that_verifies(sqlite_cli: Cli) -> None:
    for n in range(3):
        sqlite_cli.ok(
            "pledges", "add", "--name", f"Backer {n}", "--email", f"b{n}@example.org",
            "--address", "1 High Street", "--amount", "250.00", "--round", "seed",
        )  # fmt: skip
    made = sqlite_cli.ok("backup")
    (copy,) = (sqlite_cli.campaign.parent / "var" / "backups").glob("ledger-*.sqlite")
    assert str(copy) in made.output
    assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT count(*) FROM pledges").fetchone() == (3,)
    verified = CliRunner().invoke(
        main,
        ["--campaign", str(sqlite_cli.campaign), "--db", f"sqlite:///{copy}", "ledger", "verify"],
        env={"FUNDRAISER_NOW": None},
    )
    assert verified.exit_code == 0, verified.output
    # A second backup in the same second gets its own name.
    sqlite_cli.ok("backup")
    sqlite_cli.ok("backup")
    assert len(list(copy.parent.glob("ledger-*.sqlite"))) == 3
