"""fundraiser certificates / mail: documents for members, and their delivery."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.table import Table

from fundraiser.cli.app import App, fail, pass_app, plural, stderr_is_tty
from fundraiser.documents.mail import Sender, get_row, list_rows
from fundraiser.documents.postman import Postman, SendReport, requeue
from fundraiser.documents.printing import Documents
from fundraiser.documents.smtp import SmtpSettings
from fundraiser.outbox import MailStatus

if TYPE_CHECKING:
    pass


@contextmanager
def _progress(length: int, label: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar on a terminal for long work; nothing otherwise."""
    if length < 50 or not stderr_is_tty():
        yield None
        return
    with click.progressbar(length=length, label=label, file=sys.stderr) as bar:
        yield bar.update


def _utc_clock(app: App) -> Callable[[], datetime]:
    return lambda: app.now().astimezone(UTC)


# -- certificates --------------------------------------------------------------


@click.group()
def certificates() -> None:
    """Share certificates (or share-account statements) as PDF."""


@certificates.command("make")
@click.option("--member", type=int, help="Only this member's documents.")
@click.option(
    "--workers", type=click.IntRange(1, 16), help="Render in N processes [default: auto]."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def make(app: App, member: int | None, workers: int | None, as_json: bool) -> None:
    """Write a PDF per issue entry under var/certificates/; unchanged files stay as they are.

    When campaign.toml says `certificates = false`, writes one share-account
    statement per member instead. Restyle by copying the templates from
    fundraiser/documents/templates/certificates/ to templates/documents/certificates/
    beside campaign.toml; keep the `certificate.cancelled` block, which marks a
    certificate taken back.
    """
    docs = Documents(app.campaign)
    with app.ledger.read() as conn:
        total = sum(1 for _ in docs.specs(conn, member)) if stderr_is_tty() else 0
        with _progress(total, f"Making {docs.kind}s") as tick:
            result = docs.make(conn, member, workers=workers, progress=tick)
    if as_json:
        app.print_json(
            {
                "kind": result.kind,
                "folder": str(result.folder),
                "written": result.written,
                "unchanged": result.unchanged,
            }
        )
        return
    if result.total == 0:
        click.echo("No shares issued yet: nothing to make. Run `fundraiser shares issue` first.")
        return
    click.echo(
        f"Wrote {plural(len(result.written), result.kind)}, {result.unchanged} unchanged, "
        f"under {result.folder}."
    )


# -- mail ----------------------------------------------------------------------


@click.group()
def mail() -> None:
    """The outbox: mail queued by the ledger, sent over SMTP."""


def _sender(app: App, mail_from: str | None) -> Sender:
    return Sender.for_campaign(app.campaign, mail_from)


MAIL_FROM = click.option(
    "--from",
    "mail_from",
    envvar="MAIL_FROM",
    show_envvar=True,
    help="Sender address [default: coop.contact_email].",
)


@mail.command("send")
@click.option(
    "--smtp-url",
    envvar="SMTP_URL",
    show_envvar=True,
    help="smtp://user:password@host:587 (STARTTLS), smtps://host:465, smtp://host:25.",
)
@MAIL_FROM
@click.option("--limit", type=click.IntRange(min=1), help="Send at most N messages.")
@click.option("--dry-run", is_flag=True, help="Render what is due and list it; send nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def send(
    app: App,
    smtp_url: str | None,
    mail_from: str | None,
    limit: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Deliver queued messages, each once; temporary failures are retried on a later run."""
    postman = Postman(app.ledger, app.campaign, _sender(app, mail_from), clock=_utc_clock(app))
    if dry_run:
        report = postman.plan(limit)
        if as_json:
            app.print_json({"dry_run": True, "due": report.planned, **report.as_json()})
        else:
            for item in report.planned:
                click.echo(f"{item['id']:>6}  {item['kind']:<16} {item['to']}  {item['subject']}")
            click.echo(f"Dry run: {plural(len(report.planned), 'message')} due. Nothing was sent.")
        _explain_errors(report)
        if report.errors:
            raise SystemExit(1)
        return
    if not smtp_url:
        # Missing configuration, told like every other mistake: no usage banner.
        fail(
            "no mail server: set SMTP_URL (e.g. smtp://user:password@mail.example.org:587) "
            "or pass --smtp-url"
        )
        return
    settings = SmtpSettings.from_url(smtp_url)
    total = 0
    if stderr_is_tty():
        from fundraiser.documents.postman import count_due

        total = count_due(app.ledger, app.stored_now())
    with _progress(min(total, limit or total), "Sending") as tick:
        report = postman.send(settings, limit=limit, progress=tick)
    if as_json:
        app.print_json(report.as_json())
    else:
        click.echo(
            f"Sent {plural(report.sent, 'message')}; {report.retry} to retry later; "
            f"{report.failed} failed."
        )
    _explain_errors(report)
    if report.aborted:
        raise click.ClickException(f"stopped early: {report.aborted}")
    if not report.ok:
        raise SystemExit(1)


def _explain_errors(report: SendReport) -> None:
    for message_id, error in report.errors[:20]:
        click.echo(f"  message {message_id}: {error}", err=True)
    if len(report.errors) > 20:
        click.echo(f"  ... and {len(report.errors) - 20} more", err=True)


@mail.command("preview")
@click.argument("message_id", type=int)
@click.option("--html", "show_html", is_flag=True, help="Print the HTML part instead of the text.")
@MAIL_FROM
@pass_app
def preview(app: App, message_id: int, show_html: bool, mail_from: str | None) -> None:
    """Show a queued (or sent) message as it would go out, without sending it."""
    with app.ledger.read() as conn:
        row = get_row(conn, message_id)
    postman = Postman(app.ledger, app.campaign, _sender(app, mail_from), clock=_utc_clock(app))
    outgoing = postman.preview(row)
    for header in ("From", "To", "Reply-To", "Subject", "Message-ID"):
        if header in outgoing.headers:
            click.echo(f"{header}: {outgoing.headers[header]}")
    click.echo(f"Status: {row.status} ({plural(row.attempts, 'attempt')})")
    for item in outgoing.attachments:
        click.echo(f"Attachment: {item.filename} ({item.path.stat().st_size:,} bytes)")
    if row.kind == "welcome" and not outgoing.attachments:
        click.echo("Attachment: (the member's certificate, made when the mail is sent)")
    click.echo("")
    click.echo(outgoing.rendered.html if show_html else outgoing.rendered.text, nl=False)


@mail.command("list")
@click.option(
    "--status",
    type=click.Choice([s.value for s in MailStatus]),
    help="Only messages in this state.",
)
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print messages as JSON.")
@pass_app
def list_(app: App, status: str | None, limit: int, as_json: bool) -> None:
    """The newest messages in the outbox, with their state and last error."""
    with app.ledger.read() as conn:
        rows = list_rows(conn, status, limit)
    if as_json:
        app.print_json([r.as_json() for r in rows])
        return
    table = Table("ID", "Kind", "To", "Status", "Tries", "Sent", "Last error")
    for r in rows:
        table.add_row(
            str(r.id),
            r.kind,
            r.to_email,
            r.status,
            str(r.attempts),
            r.sent_at or "",
            r.last_error or "",
        )
    if rows:
        app.out.print(table)
    else:
        click.echo(f"No {status} messages." if status else "The outbox is empty.")


@mail.command("retry")
@click.argument("message_ids", type=int, nargs=-1)
@click.option("--all-failed", is_flag=True, help="Queue every failed message again.")
@pass_app
def retry(app: App, message_ids: tuple[int, ...], all_failed: bool) -> None:
    """Queue failed messages again (after fixing an address or a template)."""
    if not message_ids and not all_failed:
        fail("give the ids of the messages to send again, or --all-failed")
    count = requeue(app.ledger, None if all_failed else list(message_ids), now=app.stored_now())
    click.echo(f"Queued {plural(count, 'failed message')} again: `fundraiser mail send`.")


# -- refunds -------------------------------------------------------------------


def register(main: click.Group) -> None:
    for group in (certificates, mail):
        main.add_command(group)
