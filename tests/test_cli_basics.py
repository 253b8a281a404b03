"""The CLI as a person expects it: --version, --help everywhere, init, check, status."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from fundraiser import __version__
from fundraiser.cli import main
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
    assert json.loads(check.output) == {"ok": True, "problems": []}
    status = runner.invoke(main, ["--campaign", str(campaign), "status", "--json"], env=env)
    figures = json.loads(status.output)
    assert figures["pledged"] == 0 and figures["state"] == "open"
    assert (target / "var" / "ledger.sqlite").exists()
    # The starter site builds with the kit's theme and shows the new co-op's name.
    built = runner.invoke(main, ["--campaign", str(campaign), "site", "build"], env=env)
    assert built.exit_code == 0, built.output
    home = (target / "site" / "output" / "index.html").read_text()
    assert "Riverside Bakers" in home and "Hearth" not in home
    again = runner.invoke(main, ["init", str(target), "--yes"], env=env)
    assert again.exit_code == 2 and "already exists" in again.output


def test_init_asks_questions_with_defaults(tmp_path: Path) -> None:
    answers = (
        "\n".join(
            [
                "Hill Farm Co-op",
                "EUR",
                "50000",
                "25.00",
                "2",
                "400",
                "keep-it-all",
                "2027-06-30T18:00:00+02:00",
            ]
        )
        + "\n"
    )
    result = CliRunner().invoke(
        main,
        ["init", str(tmp_path / "farm")],
        input=answers,
        env={"FUNDRAISER_NOW": "2027-01-01T10:00:00+00:00"},
    )
    assert result.exit_code == 0, result.output
    text = (tmp_path / "farm" / "campaign.toml").read_text()
    assert 'currency = "EUR"' in text and 'goal = "50000.00"' in text
    assert 'mode = "keep-it-all"' in text and "min_shares = 2" in text


@pytest.mark.parametrize(
    "args,message",
    [
        (["--currency", "XYZ"], "unknown currency"),
        (["--goal", "12.345"], "too many decimals"),
        (["--deadline", "2027-03-01T10:00:00"], "no time zone"),
        (["--deadline", "2020-01-01T10:00:00+00:00"], "not in the future"),
        (["--min-shares", "10", "--max-shares", "5"], "min_shares"),
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
