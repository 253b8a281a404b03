"""`fundraiser site ...` and `fundraiser update new`: the launch site's commands.

Thin: the work is in fundraiser.sitegen. Pelican is imported only by the
commands that run it, so `site figures` stays quick.
"""

from __future__ import annotations

from pathlib import Path

import click

from fundraiser.cli.app import App, pass_app

_output_option = click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder to write the site into [default: OUTPUT_PATH in the settings, site/output].",
)
_settings_option = click.option(
    "--settings",
    "settings",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Pelican settings file [default: site/pelicanconf.py beside campaign.toml, or in "
    "the current folder].",
)


def register(main: click.Group) -> None:
    main.add_command(site)
    main.add_command(update)


@click.group()
def site() -> None:
    """Build, preview and refresh the campaign's static site."""


@site.command("build")
@click.option(
    "--publish",
    is_flag=True,
    help="Use publishconf.py: absolute addresses for the public site, and the "
    "output folder emptied first.",
)
@_output_option
@_settings_option
@pass_app
def build_command(app: App, publish: bool, output: Path | None, settings: Path | None) -> None:
    """Render content/ with the theme and the campaign's current figures."""
    from fundraiser.sitegen.build import build_site, settings_file

    path = settings_file(app.campaign.directory, settings, publish)
    report = build_site(
        path,
        campaign_path=app.campaign_path,
        database_url=app.database_url,
        now=app.now(),
        output=output,
    )
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    figures = report.data.figures
    click.echo(
        f"Built {report.pages} pages into {report.output} in {report.seconds:.2f} s "
        f"({figures.pledged.format()} of {figures.goal.format()} pledged, "
        f"{figures.backers} backer{'' if figures.backers == 1 else 's'})."
    )


@site.command("serve")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8000,
    show_default=True,
    help="Port to serve on (0 picks a free one).",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on; keep 127.0.0.1 unless others must see the preview.",
)
@_output_option
@_settings_option
@pass_app
def serve_command(
    app: App, port: int, host: str, output: Path | None, settings: Path | None
) -> None:
    """Preview the site locally; rebuild when content, theme or settings change."""
    from fundraiser.sitegen.build import serve, settings_file

    path = settings_file(app.campaign.directory, settings)
    serve(
        path,
        campaign_path=app.campaign_path,
        database_url=app.database_url,
        now=app.now,
        host=host,
        port=port,
        output=output,
        echo=click.echo,
    )


@site.command("figures")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The built site's folder [default: site/output beside the settings file].",
)
@pass_app
def figures_command(app: App, output: Path | None) -> None:
    """Refresh only campaign.json in a built site, from the ledger (no rebuild)."""
    from fundraiser.sitegen.build import default_output
    from fundraiser.sitegen.data import refresh_figures

    folder = output if output is not None else default_output(app.campaign.directory)
    path, figures = refresh_figures(folder, app.campaign_path, app.database_url, app.now())
    click.echo(
        f"Refreshed {path}: {figures.pledged.format()} of {figures.goal.format()} "
        f"pledged, {figures.backers} backer{'' if figures.backers == 1 else 's'}."
    )


@click.group()
def update() -> None:
    """Campaign updates: the dated posts in content/updates/."""


@update.command("new")
@click.argument("title")
@click.option(
    "--content",
    "content_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The content folder [default: content/ beside campaign.toml].",
)
@pass_app
def new_update_command(app: App, title: str, content_dir: Path | None) -> None:
    """Write a new draft update, dated now, and print its path."""
    from fundraiser.sitegen.updates import new_update

    folder = content_dir if content_dir is not None else app.campaign.directory / "content"
    path = new_update(folder, title, app.now(), app.campaign.campaign.timezone)
    click.echo(str(path))
