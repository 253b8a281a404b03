"""`fundraiser site ...` and `fundraiser update new`: the launch site's commands.

Thin: the work is in fundraiser.sitegen. Pelican is imported only by the
commands that run it, so `site figures` stays quick.
"""

from __future__ import annotations

from pathlib import Path

import click

from fundraiser.cli.app import App, pass_app, plural

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
    main.add_command(theme)


@click.group()
def site() -> None:
    """Build, preview and refresh the campaign's static site."""


@site.command("build")
@click.option(
    "--publish",
    is_flag=True,
    help="Use publishconf.py: absolute addresses for the public site, and the "
    "output folder emptied first. Refused without STRIPE_PUBLISHABLE_KEY, or with a "
    "PLEDGE_API that is not https.",
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
        publish=publish,
    )
    for warning in report.warnings:
        click.echo(f"Warning: {warning}", err=True)
    figures = report.data.figures
    click.echo(
        f"Built {plural(report.pages, 'page')} into {report.output} in {report.seconds:.2f} s "
        f"({figures.pledged.format()} of {figures.goal.format()} pledged, "
        f"{plural(figures.backers, 'backer')})."
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
    help="The built site's folder [default: OUTPUT_PATH in the site's settings].",
)
@_settings_option
@pass_app
def figures_command(app: App, output: Path | None, settings: Path | None) -> None:
    """Refresh only campaign.json in a built site, from the ledger (no rebuild)."""
    from fundraiser.sitegen.build import default_output, output_from_settings, settings_file
    from fundraiser.sitegen.data import refresh_figures

    if output is not None:
        folder = output
    elif settings is not None:
        folder = output_from_settings(settings_file(app.campaign.directory, settings))
    else:
        folder = default_output(app.campaign.directory)
    path, figures = refresh_figures(folder, app.campaign_path, app.database_url, app.now())
    click.echo(
        f"Refreshed {path}: {figures.pledged.format()} of {figures.goal.format()} "
        f"pledged, {plural(figures.backers, 'backer')}."
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


@click.group()
def theme() -> None:
    """The kit's theme, and your own copies of its files."""


@theme.command("copy")
@click.option(
    "--template",
    "templates",
    multiple=True,
    metavar="NAME",
    help="A template to copy, e.g. base.html (repeatable) [default: every file].",
)
@click.option(
    "--static",
    "statics",
    multiple=True,
    metavar="PATH",
    help="A static file to copy, e.g. css/site.css (repeatable).",
)
@click.option("--force", is_flag=True, help="Replace copies you already have.")
@click.option(
    "--dir",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The co-op's folder [default: the one with campaign.toml].",
)
def theme_copy_command(
    templates: tuple[str, ...], statics: tuple[str, ...], force: bool, folder: Path | None
) -> None:
    """Copy the kit's theme files into theme/ beside campaign.toml, to change them.

    Your copy of a template (theme/templates/NAME) or a static file
    (theme/static/PATH) is used instead of the kit's at the next build; the
    files you do not copy keep following the kit. A template can also extend
    the kit's own with {% extends "!theme/base.html" %}.
    """
    from fundraiser import kit

    where = folder if folder is not None else _coop_folder()
    copied = kit.copy_theme(where, list(templates), list(statics), force=force)
    for path in copied.written:
        click.echo(f"Copied {path}")
    for path in copied.kept:
        click.echo(f"Kept your {path} (--force replaces it)", err=True)


def _coop_folder() -> Path:
    """The folder of the campaign file (--campaign / FUNDRAISER_CAMPAIGN), without loading it."""
    ctx = click.get_current_context()
    app = ctx.find_object(App)
    campaign = app.campaign_path if app is not None else Path("campaign.toml")
    return campaign.resolve().parent
