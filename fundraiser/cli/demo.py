"""fundraiser demo: everything running locally, no Stripe account needed."""

from __future__ import annotations

from pathlib import Path

import click

import fundraiser.demo  # whole path: `demo` is this module's command


@click.command()
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the demo's campaign and ledger here [default: a temporary folder].",
)
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=8000,
    show_default=True,
    help="Port for the site on 127.0.0.1.",
)
def demo(directory: Path | None, port: int) -> None:
    """Start the Stripe emulator, the pledge service and the example site.

    Everything listens on 127.0.0.1 only. Ctrl-C stops every process it started.
    """
    fundraiser.demo.run(directory, port, click.echo)


def register(main: click.Group) -> None:
    main.add_command(demo)
