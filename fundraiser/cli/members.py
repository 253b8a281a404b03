"""fundraiser members: list and export the share register."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from fundraiser import register as register_mod
from fundraiser.cli.app import App, pass_app


@click.group()
def members() -> None:
    """The share register: members and their holdings."""


@members.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print members as JSON.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """List members with their shares."""
    currency = app.campaign.currency
    with app.ledger.read() as conn:
        found = list(register_mod.holdings(conn, currency))
    if as_json:
        app.print_json([h.as_json() for h in found])
        return
    table = Table("No.", "Name", "Email", "Shares", "Paid", "Admitted", "Ceased")
    for h in found:
        table.add_row(
            str(h.number),
            h.name,
            h.email or "",
            str(h.shares),
            h.paid.format(),
            h.admitted_on,
            h.ceased_on or "",
        )
    app.out.print(table)
    app.out.print(f"{len(found)} member(s)")


@members.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the register.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@pass_app
def export(app: App, out: Path, fmt: str) -> None:
    """Write the register (name, address, email, shares, paid, dates) for the board."""
    if not out.parent.exists():
        raise click.UsageError(f"--out: folder {out.parent} does not exist; create it first")
    with app.ledger.read() as conn:
        count = register_mod.export(conn, app.campaign.currency, out, fmt)
    click.echo(f"Wrote {count} member(s) to {out}.")


def register(main: click.Group) -> None:
    main.add_command(members)
