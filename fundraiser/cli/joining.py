"""fundraiser members (after the campaign): fees, applications, withdrawals, census.

Added to the `members` group (cli/members.py) when it loads.
"""

from __future__ import annotations

from datetime import date

import click

from fundraiser.cli.app import App, pass_app, plural
from fundraiser.config import Membership
from fundraiser.errors import NotConfigured
from fundraiser.membership import fees


def _membership(app: App) -> Membership:
    found = app.campaign.membership
    if found is None:
        raise NotConfigured(
            "campaign.toml has no [membership] table: add one to let people join "
            "after the campaign (see the example campaign.toml)"
        )
    return found


@click.command("fees")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def fees_(app: App, as_json: bool) -> None:
    """Membership fees due, late and lapsed today (by the rules' grace days)."""
    membership = _membership(app)
    with app.ledger.read() as conn:
        report = fees.report(
            conn,
            today=date.fromisoformat(app.today()),
            grace_days=membership.grace_days,
            currency=app.campaign.currency,
        )
    if as_json:
        app.print_json(report.as_json())
        return
    counts = report.counts
    click.echo(
        f"Fees on {report.today}: {counts['current']} current, {counts['due']} due, "
        f"{counts['late']} late, {counts['lapsed']} lapsed, {counts['ended']} ended; "
        f"{report.per_month.format()} a month from the fees still standing."
    )
    if not report.attention:
        return
    from rich.table import Table  # loaded only when a person is shown it

    table = Table("Member", "Standing", "Rate", "Fee", "Unpaid since", "Lapses after")
    for fee in report.attention:
        table.add_row(
            str(fee.member_number or ""),
            fee.standing.value,
            fee.rate,
            f"{fee.amount.format()} a {fee.interval}",
            fee.overdue_since or "",
            fee.lapses_on or "",
        )
    app.out.print(table)
    app.out.print(plural(len(report.attention), "fee") + " to look at")


COMMANDS = (fees_,)


def register(main: click.Group) -> None:
    group = main.commands["members"]
    assert isinstance(group, click.Group)
    for command in COMMANDS:
        group.add_command(command)
