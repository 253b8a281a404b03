"""fundraiser status: where the campaign stands.

A module of its own so that `status` loads only what it reads (the ledger, the
figures, the campaign), not `init`'s scaffolding: it is the command scripts
and monitors run most often, and its start-up is most of its time. It reads
through ledger.reader, so a ledger at the current schema is read without
loading SQLAlchemy at all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

import fundraiser.figures  # whole path: `figures` names what it computes
from fundraiser.cli.app import App, pass_app, plural

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

    from fundraiser.ledger.reader import Reader


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@pass_app
def status(app: App, as_json: bool) -> None:
    """Where the campaign stands: pledged, paid, backers, days left."""
    from fundraiser.ledger.reader import open_reader
    from fundraiser.payments import orphans

    campaign = app.campaign
    now = app.now()

    def read(conn: Reader | Connection) -> tuple[fundraiser.figures.Figures, list[str]]:
        figures = fundraiser.figures.compute(conn, campaign, now)
        # For the organizer only (the public figures carry no pledge ids).
        return figures, [o.describe() for o in orphans.still_open(conn)]

    # Read-only through the driver, without SQLAlchemy (its import alone is most of
    # this command's time); a ledger not made yet, or at an older schema, is opened
    # as a Ledger, which makes or migrates it, and read the same way.
    with open_reader(app.database_url) as reader:
        alone = None if reader is None else read(reader)
    if alone is None:
        with app.ledger.read() as conn:
            alone = read(conn)
    figures, attention = alone
    if as_json:
        app.print_json({**figures.as_json(), "attention": attention})
        return
    from rich.progress_bar import ProgressBar  # for people only: --json never loads rich
    from rich.table import Table

    out = app.out
    when = app.local_datetime(figures.deadline)
    if figures.state == "upcoming":
        timing = f"opens {app.local_datetime(figures.opens)}, closes {when}"
    elif figures.state == "open":
        timing = f"open, {plural(figures.days_left, 'day')} left (closes {when})"
    else:
        timing = f"closed on {when}"
    out.print(f"[bold]{campaign.coop.name}[/bold]: {figures.mode}, {timing}", highlight=False)
    out.print(
        f"Pledged {figures.pledged.format()} of the {figures.goal.format()} goal "
        f"({figures.percent}%); paid {figures.paid.format()}; "
        f"{plural(figures.backers, 'backer')}",
        highlight=False,
    )
    # The bar and its figure on one line; a grid ends its line, a bare bar does not.
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=100, completed=min(figures.percent, 100), width=40), f"{figures.percent}%"
    )
    out.print(bar)
    out.print()
    table = Table("Round", "Pledged", title="By round")
    for round_id, amount in figures.by_round.items():
        found = campaign.round(round_id)
        table.add_row(found.name if found else round_id, amount.format())
    out.print(table)
    if figures.tiers:
        tiers = Table("Tier", "Shares", "Price", "Taken", "Left", title="Tiers")
        for tier in figures.tiers:
            tiers.add_row(
                tier.name,
                f"{tier.shares:,}",
                tier.price.format(),
                f"{tier.taken:,}",
                "no limit" if tier.left is None else f"{tier.left:,}",
            )
        out.print(tiers)
    for line in attention:
        out.print(f"[bold yellow]Needs attention:[/bold yellow] {line}", highlight=False)


def register(main: click.Group) -> None:
    main.add_command(status)
