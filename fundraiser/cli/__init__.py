"""The `fundraiser` command: a thin shell over the modules of the package."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import import_module
from pathlib import Path
from typing import Any

import click

from fundraiser import __version__
from fundraiser.cli.app import App, converted_errors

# Each command's module, imported only when the command runs: an organizer's
# `fundraiser status` need not load the PDF, mail and web-service code.
# `pledges` also loads payments, which adds `pledges refund`.
_MODULES: dict[str, tuple[str, ...]] = {
    "init": ("campaign",),
    "check": ("campaign",),
    "status": ("status",),
    "ledger": ("ledger",),
    "pledges": ("pledges", "payments"),
    "shares": ("shares",),
    "members": ("members", "joining"),
    "certificates": ("documents",),
    "mail": ("documents",),
    "refunds": ("refunds",),
    "serve": ("payments",),
    "collect": ("payments",),
    "stripe": ("payments",),
    "site": ("site",),
    "update": ("site",),
    "theme": ("site",),
    "demo": ("demo",),
    "preflight": ("preflight",),
    "backup": ("preflight",),
    "restore": ("preflight",),
    "bank": ("bank",),
    "books": ("books",),
}
_loaded: set[str] = set()


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Importing a command's module builds SQLAlchemy's classes, our tables and the
    campaign's types: objects that all live as long as the process. The cyclic
    collector would scan them over and over as they arrive, for no garbage
    (measured: 50-150 ms of the 0.5 s `status --json` takes). What was built is
    then frozen, as main() freezes it too: else the collector's first run after
    would scan it all at once (measured: one pass of 64 ms)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


class FundraiserGroup(click.Group):
    """Loads commands on demand; converts expected failures to clean messages, once."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(self.commands) | set(_MODULES))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        for module in _MODULES.get(cmd_name, ()):
            if module not in _loaded:
                with _collector_paused():
                    import_module(f"fundraiser.cli.{module}").register(self)
                _loaded.add(module)
        return self.commands.get(cmd_name)

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
    # Everything imported so far lives as long as the process: the cyclic
    # collector need never scan it again. On a 100,000-pledge issue that
    # scanning cost about a second, and as much again at exit.
    gc.freeze()
