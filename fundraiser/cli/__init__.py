"""The `fundraiser` command: a thin shell over the modules of the package."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from fundraiser import __version__
from fundraiser.cli.app import App, converted_errors


class FundraiserGroup(click.Group):
    """Converts expected failures to clean messages, once, for every command."""

    def invoke(self, ctx: click.Context) -> Any:
        with converted_errors():
            return super().invoke(ctx)


@click.group(cls=FundraiserGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="fundraiser")
@click.option(
    "--campaign",
    "campaign_path",
    type=click.Path(path_type=Path),
    default="campaign.toml",
    envvar="FUNDRAISER_CAMPAIGN",
    show_default=True,
    show_envvar=True,
    help="The campaign's settings file.",
)
@click.option(
    "--db",
    "db_url",
    envvar="DATABASE_URL",
    show_envvar=True,
    default=None,
    help="Ledger database URL [default: sqlite file under var/ beside campaign.toml].",
)
@click.pass_context
def main(ctx: click.Context, campaign_path: Path, db_url: str | None) -> None:
    """Raise a co-operative's founding capital from its future members.

    Record pledges, watch the campaign, collect at the close, and turn paid
    pledges into founding-member shares.
    """
    ctx.obj = App(campaign_path=campaign_path, db_url=db_url)


def _register() -> None:
    from fundraiser.cli import (
        campaign,
        demo,
        documents,
        ledger,
        members,
        payments,
        pledges,
        shares,
        site,
    )

    modules = (campaign, ledger, pledges, shares, members, documents, payments, site, demo)
    for module in modules:
        module.register(main)


_register()
