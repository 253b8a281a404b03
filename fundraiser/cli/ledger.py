"""fundraiser ledger: verify the journal's hash chain."""

from __future__ import annotations

import click

from fundraiser.cli.app import App, pass_app, plural


@click.group()
def ledger() -> None:
    """The ledger and its tamper-evident journal."""


@ledger.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def verify(app: App, as_json: bool) -> None:
    """Recompute the journal's SHA-256 chain; report the first broken entry."""
    report = app.ledger.verify()
    if as_json:
        app.print_json(
            {
                "ok": report.ok,
                "entries": report.entries,
                "head": report.head,
                "broken_at": report.broken_at,
                "reason": report.reason or None,
            }
        )
    elif report.ok:
        click.echo(
            f"OK: {plural(report.entries, 'journal entry', 'journal entries')}, head {report.head}"
        )
    else:
        click.echo(
            f"BROKEN at entry {report.broken_at}: {report.reason}. "
            f"The chain is intact up to entry {report.broken_at - 1 if report.broken_at else 0}"
            f" (hash {report.head}).",
            err=True,
        )
    if not report.ok:
        raise SystemExit(1)


def register(main: click.Group) -> None:
    main.add_command(ledger)
