"""fundraiser init, check, status."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from pathlib import Path

import click
from rich.progress_bar import ProgressBar
from rich.table import Table

from fundraiser import figures as figures_mod
from fundraiser.cli.app import App, fail, pass_app
from fundraiser.config import Mode, check_campaign
from fundraiser.errors import MoneyError
from fundraiser.money import parse
from fundraiser.scaffold import defaults, write_campaign
from fundraiser.starter import write_site


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", help="The co-op's name.")
@click.option("--currency", help="ISO 4217 code, e.g. GBP, EUR, JPY.")
@click.option("--goal", help="The campaign's goal, in major units (e.g. 100000.00).")
@click.option("--price", help="Price of one share, in major units.")
@click.option("--min-shares", type=click.IntRange(min=1), help="Fewest shares a member holds.")
@click.option("--max-shares", type=click.IntRange(min=1), help="Most shares a member holds.")
@click.option("--deadline", help="Closing date and time with offset, e.g. 2027-03-31T18:00+00:00.")
@click.option("--mode", type=click.Choice([m.value for m in Mode]), help="How cards are charged.")
@click.option("--yes", "-y", is_flag=True, help="Accept the default for every question.")
@pass_app
def init(
    app: App,
    directory: Path,
    name: str | None,
    currency: str | None,
    goal: str | None,
    price: str | None,
    min_shares: int | None,
    max_shares: int | None,
    deadline: str | None,
    mode: str | None,
    yes: bool,
) -> None:
    """Start a new campaign in DIRECTORY (asks, or takes options)."""
    base = defaults(app.now())

    def ask(value: str | None, prompt: str, default: str) -> str:
        if value is not None:
            return value
        if yes:
            return default
        return str(click.prompt(prompt, default=default))

    def ask_int(value: int | None, prompt: str, default: int) -> int:
        if value is not None:
            return value
        if yes:
            return default
        return int(click.prompt(prompt, default=default, type=click.IntRange(min=1)))

    answers = replace(
        base,
        name=ask(name, "Co-op name", base.name),
        currency=ask(currency, "Currency (ISO 4217)", base.currency).upper(),
        goal=ask(goal, "Goal", base.goal),
        price=ask(price, "Share price", base.price),
        min_shares=ask_int(min_shares, "Minimum shares per member", base.min_shares),
        max_shares=ask_int(max_shares, "Maximum shares per member", base.max_shares),
        mode=Mode(
            ask(mode, "Mode (all-or-nothing or keep-it-all)", base.mode.value)
            if mode or yes
            else click.prompt(
                "Mode", default=base.mode.value, type=click.Choice([m.value for m in Mode])
            )
        ),
    )
    raw_deadline = ask(deadline, "Deadline (with UTC offset)", base.deadline.isoformat())
    try:
        when = datetime.fromisoformat(str(raw_deadline))
    except ValueError:
        fail(
            f"--deadline {raw_deadline!r} is not a date and time: use e.g. "
            "2027-03-31T18:00:00+00:00"
        )
        return
    if when.tzinfo is None:
        fail(f"--deadline {raw_deadline!r} has no time zone: add the offset, e.g. +00:00")
    if when <= answers.opens:
        fail("--deadline is not in the future: choose a later date")
    try:
        parse(answers.goal, answers.currency)
        parse(answers.price, answers.currency)
    except MoneyError as exc:
        fail(f"--goal/--price: {exc}")
    target = write_campaign(directory, replace(answers, deadline=when))
    with_site = write_site(directory, answers.name, app.now())
    click.echo(f"Wrote {target}" + (" and a starter site (site/, content/)." if with_site else "."))
    click.echo(f"Next: cd {directory} && fundraiser check && fundraiser site build")


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print problems as JSON.")
@pass_app
def check(app: App, as_json: bool) -> None:
    """Check campaign.toml; list every problem (exit 1 if any)."""
    problems = check_campaign(app.campaign_path)
    if as_json:
        app.print_json({"ok": not problems, "problems": [p.as_dict() for p in problems]})
    elif problems:
        click.echo(f"{app.campaign_path} has {len(problems)} problem(s):", err=True)
        for problem in problems:
            click.echo(f"  - {problem}", err=True)
    else:
        campaign = app.campaign
        click.echo(
            f"{app.campaign_path}: OK ({campaign.coop.name}, goal "
            f"{campaign.campaign.goal.format()}, {campaign.campaign.mode.value})"
        )
    if problems:
        raise SystemExit(1)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Where the campaign stands: pledged, paid, backers, days left."""
    from fundraiser.payments import orphans

    campaign = app.campaign
    with app.ledger.read() as conn:
        figures = figures_mod.compute(conn, campaign, app.now())
        # For the organizer only (the public figures carry no pledge ids).
        attention = [o.describe() for o in orphans.still_open(conn)]
    if as_json:
        app.print_json({**figures.as_json(), "attention": attention})
        return
    out = app.out
    out.print(
        f"[bold]{campaign.coop.name}[/bold] — {figures.mode}, {figures.state}, "
        f"{figures.days_left} day(s) left (deadline {figures.deadline.isoformat()})"
    )
    out.print(
        f"Pledged {figures.pledged.format()} of {figures.goal.format()} "
        f"({figures.percent}%), paid {figures.paid.format()}, {figures.backers} backer(s)"
    )
    out.print(ProgressBar(total=100, completed=min(figures.percent, 100), width=40))
    table = Table("Round", "Pledged", title="By round")
    for round_id, amount in figures.by_round.items():
        table.add_row(round_id, amount.format())
    out.print(table)
    if figures.tiers:
        tiers = Table("Tier", "Shares", "Price", "Taken", "Left", title="Tiers")
        for tier in figures.tiers:
            tiers.add_row(
                tier.name,
                str(tier.shares),
                tier.price.format(),
                str(tier.taken),
                "unlimited" if tier.left is None else str(tier.left),
            )
        out.print(tiers)
    for line in attention:
        out.print(f"[bold yellow]Needs attention:[/bold yellow] {line}", highlight=False)


def register(main: click.Group) -> None:
    for command in (init, check, status):
        main.add_command(command)
