"""fundraiser ledger verify: the journal's hash chain, and the tables proved by replaying it."""

from __future__ import annotations

import click

from fundraiser.cli.app import App, fail, pass_app
from fundraiser.ledger import audit


@click.group()
def ledger() -> None:
    """The ledger and its tamper-evident journal."""


@ledger.command()
@click.option(
    "--head", "head_hash", help="A head hash published earlier (the transparency page's)."
)
@click.option("--at", "head_at", type=click.IntRange(min=1), help="The entry number that head was.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def verify(app: App, head_hash: str | None, head_at: int | None, as_json: bool) -> None:
    """Check the journal's SHA-256 chain, a head published earlier, and every table.

    The tables are proved by replaying the journal into empty ones and
    comparing: each difference is named by table, row and column. Personal
    details are compared by their fingerprints and never printed.
    """
    if (head_hash is None) != (head_at is None):
        fail("--head and --at go together: give the published hash and its entry number")
    result = audit.verify(app.ledger, head_hash=head_hash, head_at=head_at)
    if as_json:
        app.print_json(result.as_json())
    else:
        for line in result.lines():
            click.echo(line, err=not result.ok)
    if not result.ok:
        raise SystemExit(1)


def register(main: click.Group) -> None:
    main.add_command(ledger)
