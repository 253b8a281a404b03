"""The CLI as a person expects it: --version, --help everywhere, init, check, status."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fundraiser import __version__
from fundraiser.cli import main
from fundraiser.sitegen import staging
from tests.conftest import Cli


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = [prefix]
    context = click.Context(group)
    for name in group.list_commands(context):
        command = group.get_command(context, name)
        if isinstance(command, click.Group):
            found.extend(all_commands(command, (*prefix, name)))
        else:
            found.append((*prefix, name))
    return found


def test_version() -> None:
    result = CliRunner().invoke(main, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.parametrize("path", all_commands(main), ids=lambda p: " ".join(p) or "main")
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(main, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "Show this message and exit." in result.output


def test_init_writes_a_campaign_that_passes_check(tmp_path: Path) -> None:
    target = tmp_path / "newcoop"
    runner = CliRunner()
    env = {"FUNDRAISER_NOW": "2027-01-01T10:00:00+00:00"}
    result = runner.invoke(
        main, ["init", str(target), "--yes", "--name", "Riverside Bakers"], env=env
    )
    assert result.exit_code == 0, result.output
    campaign = target / "campaign.toml"
    check = runner.invoke(main, ["--campaign", str(campaign), "check", "--json"], env=env)
    assert check.exit_code == 0, check.output
    report = json.loads(check.stdout)
    assert report["ok"] is True and report["problems"] == []
    # What --yes cannot know is left empty, and `check` says so without failing.
    assert [w["where"] for w in report["warnings"]] == [
        "campaign.toml: coop.registration_number",
        "campaign.toml: coop.contact_email",
    ]
    status = runner.invoke(main, ["--campaign", str(campaign), "status", "--json"], env=env)
    figures = json.loads(status.output)
    assert figures["pledged"] == 0 and figures["state"] == "open"
    assert (target / "var" / "ledger.sqlite").exists()
    # Git leaves out the ledger, the built site and the folder the preview builds in.
    ignored = set((target / ".gitignore").read_text().split())
    preview = staging.beside(Path("site") / "output").as_posix()
    assert {"var/", "site/output/", f"{preview}/"} <= ignored
    # The starter site builds with the kit's theme and shows the new co-op's name.
    built = runner.invoke(main, ["--campaign", str(campaign), "site", "build"], env=env)
    assert built.exit_code == 0, built.output
    home = (target / "site" / "output" / "index.html").read_text()
    assert "Riverside Bakers" in home and "Hearth" not in home
    again = runner.invoke(main, ["init", str(target), "--yes"], env=env)
    assert again.exit_code == 2 and "already exists" in again.output


def test_init_asks_questions_with_defaults(tmp_path: Path) -> None:
    answers = [
        "Hill Farm Co-op",  # name
        "FR",  # country
        "scop",  # legal form
        "",  # registration number: not yet
        "bonjour@hillfarm.example",  # contact email
        "",  # website: none yet
        "",  # time zone: the country's
        "",  # language: the country's
        "",  # currency: the country's
        "50000",  # goal
        "25.00",  # price
        "2",  # minimum shares
        "400",  # maximum shares
        "",  # opens: now
        "2027-06-30 18:00",  # deadline, in the co-op's time zone
        "keep-it-all",  # mode
    ]
    result = CliRunner().invoke(
        main,
        ["init", str(tmp_path / "farm")],
        input="\n".join(answers) + "\n",
        env={"FUNDRAISER_NOW": "2027-01-01T10:00:00+00:00"},
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "farm" / "campaign.toml").read_text()
    assert 'currency = "EUR"' in text and 'goal = "50000.00"' in text
    assert 'mode = "keep-it-all"' in text and "min_shares = 2" in text
    assert 'timezone = "Europe/Paris"' in text and 'language = "fr"' in text
    assert 'legal_form = "société coopérative et participative (SCOP)"' in text
    assert 'contact_email = "bonjour@hillfarm.example"' in text
    # Local times: the opening to the hour, the deadline as typed, both in Paris time.
    assert "opens = 2027-01-01T11:00:00+01:00" in text
    assert "deadline = 2027-06-30T18:00:00+02:00" in text


@pytest.mark.parametrize(
    "args,message",
    [
        (["--currency", "XYZ"], "unknown currency"),
        (["--goal", "12.345"], "too many decimals"),
        (["--deadline", "2027-03-01"], "no time of day"),
        (["--deadline", "next friday"], "is not a date and time"),
        (["--deadline", "2020-01-01T10:00:00+00:00"], "not in the future"),
        (["--opens", "2027-04-01 09:00", "--deadline", "2027-03-01 09:00"], "not after --opens"),
        (["--min-shares", "10", "--max-shares", "5"], "--min-shares (10) is more than"),
    ],
)
def test_init_refuses_bad_answers(tmp_path: Path, args: list[str], message: str) -> None:
    target = tmp_path / "bad"
    result = CliRunner().invoke(
        main,
        ["init", str(target), "--yes", *args],
        env={"FUNDRAISER_NOW": "2027-01-01T10:00:00+00:00"},
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (target / "campaign.toml").exists()


def test_status_for_people_and_scripts(sqlite_cli: Cli) -> None:
    human = sqlite_cli.ok("status")
    assert "Hearth Social Co-operative" in human.output and "£250,000.00" in human.output
    keys = json.loads(sqlite_cli.ok("status", "--json").output)
    assert {"currency", "goal", "pledged", "paid", "backers", "deadline", "mode"} <= set(keys)
    assert all(isinstance(keys[k], int) for k in ("goal", "pledged", "paid", "backers"))


def test_missing_campaign_file_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--campaign", str(tmp_path / "none.toml"), "status"])
    assert result.exit_code == 2
    assert "not found" in result.output and "fundraiser init" in result.output
    assert "Traceback" not in result.output


def test_bad_now_override_is_a_clear_error(sqlite_cli: Cli) -> None:
    result = sqlite_cli("status", env={"FUNDRAISER_NOW": "tomorrow"})
    assert result.exit_code == 2 and "FUNDRAISER_NOW" in result.output
