"""fundraiser books: the co-op's money movements for the treasurer (beancount or CSV)."""

from __future__ import annotations

from pathlib import Path

import click

from fundraiser import privatefiles
from fundraiser.cli.app import App, fail, pass_app, plural


@click.group()
def books() -> None:
    """The co-op's books, from the ledger."""


@books.command("export")
@click.option("--format", "fmt", type=click.Choice(["beancount", "csv"]), required=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True)
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@pass_app
def export(app: App, fmt: str, out: Path, as_json: bool) -> None:
    """Every money movement the ledger knows, on the chart of accounts in [books].

    Card payments, bank receipts, remainders and refunds, disputes, share
    capital issued, withdrawn and cancelled; each line names its ledger record
    (pledge, bank transaction, remainder, register entry) and no person.
    Stripe's fees are not in the ledger: book them from Stripe's fee report.
    """
    from fundraiser.books import beancount, movements, table

    if not out.parent.exists():
        fail(f"--out: folder {out.parent} does not exist; create it first")
    with app.ledger.read() as conn:
        data = movements.collect(conn, app.campaign)
    if fmt == "beancount":
        privatefiles.write(out, beancount.render(data, f"{app.campaign.coop.name}: books"))
    else:
        table.write(data, out)
    balances = data.balances()
    if as_json:
        app.print_json(
            {
                "file": str(out),
                "format": fmt,
                "currency": data.currency,
                "transactions": len(data.movements),
                "balances": {getattr(data.chart, k): v for k, v in sorted(balances.items())},
            }
        )
        return
    click.echo(f"Wrote {plural(len(data.movements), 'transaction')} to {out} ({fmt}).")


def register(main: click.Group) -> None:
    main.add_command(books)
