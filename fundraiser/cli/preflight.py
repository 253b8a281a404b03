"""fundraiser preflight (going live, checked) and fundraiser backup: thin over their modules."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import click

from fundraiser.cli.app import App, pass_app, plural


@click.command()
@click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    envvar="WEB_CONCURRENCY",
    show_envvar=True,
    show_default=True,
    help="How many `fundraiser serve` processes will share the ledger.",
)
@click.option(
    "--rehearsal",
    is_flag=True,
    help="A dress rehearsal with Stripe's test keys: then a live key is the problem.",
)
@click.option(
    "--site",
    "site_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The built public site [default: OUTPUT_PATH in site/publishconf.py].",
)
@click.option(
    "--backups",
    "backups_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the ledger's backups are [default: var/backups beside campaign.toml].",
)
@click.option("--json", "as_json", is_flag=True, help="Print problems and warnings as JSON.")
@pass_app
def preflight(
    app: App,
    processes: int,
    rehearsal: bool,
    site_dir: Path | None,
    backups_dir: Path | None,
    as_json: bool,
) -> None:
    """Check the live configuration before taking real money; list every problem.

    Reads the environment the service and the site build will have (Stripe's
    keys, STRIPE_WEBHOOK_SECRET, FUNDRAISER_SECRET, SITE_ORIGIN, PLEDGE_API,
    SMTP_URL, DATABASE_URL), campaign.toml, the ledger file, the built site and
    the backups. Exit 1 when there is any problem. Changes nothing.
    """
    from fundraiser import preflight as checks
    from fundraiser.backups import BACKUPS
    from fundraiser.sitegen import SiteBuildError
    from fundraiser.sitegen.build import default_output

    folder = app.campaign_path.resolve().parent
    if site_dir is None:
        try:
            site_dir = default_output(folder, publish=True)
        except SiteBuildError:
            site_dir = None
    setup = checks.Setup(
        environ=os.environ,
        campaign_path=app.campaign_path,
        database_url=_database_url(app, folder),
        processes=processes,
        site=site_dir,
        backups=backups_dir if backups_dir is not None else folder / BACKUPS,
        rehearsal=rehearsal,
    )
    report = checks.check(setup)
    if as_json:
        app.print_json(report.as_json())
    else:
        what = "a rehearsal" if rehearsal else "going live"
        if report.problems:
            click.echo(f"{plural(len(report.problems), 'problem')} before {what}:", err=True)
            for problem in report.problems:
                click.echo(f"  - {problem}", err=True)
        else:
            click.echo(f"Ready for {what}: no problem found.")
        if report.warnings:
            click.echo(f"{plural(len(report.warnings), 'warning')}:", err=True)
            for warning in report.warnings:
                click.echo(f"  - {warning}", err=True)
    if report.problems:
        raise SystemExit(1)


def _database_url(app: App, folder: Path) -> str:
    """The ledger the service will use; the default one beside campaign.toml if the
    campaign cannot be read (that problem is reported with the campaign's)."""
    from fundraiser.errors import FundraiserError

    try:
        return app.database_url
    except FundraiserError:
        return app.db_url or f"sqlite:///{folder / 'var' / 'ledger.sqlite'}"


@click.command()
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write the copy [default: var/backups beside campaign.toml].",
)
@pass_app
def backup(app: App, folder: Path | None) -> None:
    """Write a consistent copy of the ledger, while the service runs (pg_dump for PostgreSQL)."""
    from fundraiser.backups import BACKUPS
    from fundraiser.backups import backup as make_backup

    target = folder if folder is not None else app.campaign.directory / BACKUPS
    made = make_backup(app.database_url, target, datetime.now(UTC))
    click.echo(f"Backed up the ledger to {made.path} ({made.size:,} bytes).")


@click.command()
@click.argument("source", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check that the copy proves itself; change nothing.")
@pass_app
def restore(app: App, source: Path, dry_run: bool) -> None:
    """Put a backup in the ledger's place, only if its journal proves every table.

    A SQLite ledger being replaced is kept beside it (ledger.before-restore-TIME.sqlite);
    stop the pledge service first. A PostgreSQL copy goes into an empty database.
    """
    from fundraiser.backups import restore as put_back

    done = put_back(source, app.database_url, app.now(), dry_run=dry_run)
    proved = f"{done.entries:,} journal entries, head {done.head}"
    if dry_run:
        click.echo(f"{source} proves itself ({proved}). Nothing was changed.")
        return
    kept = f" The ledger it replaced is kept as {done.kept}." if done.kept else ""
    click.echo(f"Restored the ledger from {source} ({proved}).{kept}")


def register(main: click.Group) -> None:
    main.add_command(preflight)
    main.add_command(backup)
    main.add_command(restore)
