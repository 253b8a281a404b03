"""fundraiser members (after the campaign): fees, applications, withdrawals, census.

Added to the `members` group (cli/members.py) when it loads.
"""

from __future__ import annotations

import os
from datetime import date

import click

from fundraiser.cli.app import App, listing, pass_app, plural
from fundraiser.config import Membership
from fundraiser.errors import NotConfigured
from fundraiser.links import ServiceLinks, Signer
from fundraiser.membership import admission, dunning, fees


def _membership(app: App) -> Membership:
    found = app.campaign.membership
    if found is None:
        raise NotConfigured(
            "campaign.toml has no [membership] table: add one to let people join "
            "after the campaign (see the example campaign.toml)"
        )
    return found


@click.command("fees")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@pass_app
def fees_(app: App, as_json: bool) -> None:
    """Membership fees due, late and lapsed today (by the rules' grace days)."""
    membership = _membership(app)
    with app.ledger.read() as conn:
        report = fees.report(
            conn,
            today=date.fromisoformat(app.today()),
            grace_days=membership.grace_days,
            currency=app.campaign.currency,
        )
    if as_json:
        app.print_json(report.as_json())
        return
    counts = report.counts
    click.echo(
        f"Fees on {report.today}: {counts['current']} current, {counts['due']} due, "
        f"{counts['late']} late, {counts['lapsed']} lapsed, {counts['ended']} ended; "
        f"{report.per_month.format()} a month from the fees still standing."
    )
    if not report.attention:
        return
    from rich.table import Table  # loaded only when a person is shown it

    table = Table("Member", "Standing", "Rate", "Fee", "Unpaid since", "Lapses after")
    for fee in report.attention:
        table.add_row(
            str(fee.member_number or ""),
            fee.standing.value,
            fee.rate,
            f"{fee.amount.format()} a {fee.interval}",
            fee.overdue_since or "",
            fee.lapses_on or "",
        )
    app.out.print(table)
    app.out.print(plural(len(report.attention), "fee") + " to look at")


@click.command()
@click.option(
    "--status",
    type=click.Choice([s.value for s in admission.AppStatus]),
    help="Only applications in this state.",
)
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def applications(app: App, status: str | None, as_json: bool) -> None:
    """People who paid for shares after the campaign: joins and top-ups, and where each stands.

    Payments recorded since the last look become applications here.
    """
    found = admission.applications(
        app.ledger,
        app.campaign,
        status=admission.AppStatus(status) if status else None,
        now=app.stored_now(),
    )
    if as_json:
        app.print_json([a.as_json() for a in found])
        return
    if not found:
        click.echo("No applications.")
        return
    from rich.table import Table  # loaded only when a person is shown it

    table = Table("ID", "Kind", "Status", "Name", "Email", "Paid", "Shares", "Member", "Decided")
    for a in found:
        table.add_row(
            str(a.id),
            a.kind,
            a.status,
            a.name,
            a.email,
            a.amount.format(),
            str(a.shares),
            str(a.member_number or ""),
            a.decided_on or "",
        )
    app.out.print(table)
    waiting = sum(1 for a in found if a.status == admission.AppStatus.WAITING)
    app.out.print(
        plural(len(found), "application")
        + (f", {waiting} waiting: `fundraiser members admit ID...`" if waiting else "")
    )


@click.command()
@click.argument("ids", nargs=-1, type=int, required=True)
@click.option("--dry-run", is_flag=True, help="Check, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def admit(app: App, ids: tuple[int, ...], dry_run: bool, as_json: bool) -> None:
    """Admit waiting applications: shares issued, members numbered on from the register."""
    result = admission.admit(
        app.ledger,
        app.campaign,
        list(ids),
        today=app.today(),
        now=app.stored_now(),
        dry_run=dry_run,
    )
    if as_json:
        app.print_json({"dry_run": dry_run, **result.as_json()})
        return
    if dry_run:
        click.echo(f"Would admit {listing(result.applications, 'application')}. Nothing written.")
        return
    members = (
        f"members {result.first_member} to {result.last_member}"
        if result.first_member != result.last_member
        else f"member {result.first_member}"
    )
    click.echo(
        f"Admitted {listing(result.applications, 'application')}: "
        f"{plural(result.shares, 'share')} issued"
        + (f"; welcome {members}" if result.members_admitted else "")
        + "."
    )
    if result.refunds.amount:
        click.echo(
            f"{result.refunds.format()} did not make whole shares and is owed back "
            "(`fundraiser refunds list`)."
        )
    click.echo("Certificates: `fundraiser certificates make`; mail: `fundraiser mail send`.")


@click.command()
@click.argument("application_id", type=int)
@click.option("--reason", required=True, help="Why, in words the person will read in the mail.")
@click.option("--dry-run", is_flag=True, help="Check, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def decline(app: App, application_id: int, reason: str, dry_run: bool, as_json: bool) -> None:
    """Decline a waiting application: no shares; the payment is owed back; the person is mailed."""
    result = admission.decline(
        app.ledger,
        app.campaign,
        application_id,
        reason=reason,
        today=app.today(),
        now=app.stored_now(),
        dry_run=dry_run,
    )
    if as_json:
        app.print_json({"dry_run": dry_run, **result.as_json()})
        return
    verb = "Would decline" if dry_run else "Declined"
    how = (
        "refund it to the card with `fundraiser refunds send`"
        if result.method == "card"
        else "pay it back by bank transfer, then `fundraiser refunds mark-paid "
        f"{result.pledge_id} --reference REF`"
    )
    click.echo(
        f"{verb} application {application_id}; {result.amount.format()} is owed back: {how}."
        + ("" if dry_run else " The mail telling them is queued (`fundraiser mail send`).")
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def lapse(app: App, as_json: bool) -> None:
    """Mail each member whose fee lapsed today (grace days over), once; run it daily.

    Lapsing is read from the day, not written by an event, so nothing else
    notices the day it happens: this run does, and queues the mail (`mail send`).
    """
    membership = _membership(app)
    secret = os.environ.get("FUNDRAISER_SECRET", "").strip()
    base = os.environ.get("PLEDGE_API", "").strip().rstrip("/")
    links = None
    if secret and base:
        links = ServiceLinks(Signer(secret), base, app.campaign.campaign.deadline)
    expires = app.now() + dunning.LINK_LIFETIME

    def link_for(number: int) -> str | None:
        return links.member_url(number, expires) if links else None

    queued = dunning.lapsed(
        app.ledger,
        today=date.fromisoformat(app.today()),
        grace_days=membership.grace_days,
        link_for=link_for,
        now=app.stored_now(),
    )
    if as_json:
        app.print_json({"queued": queued, "links": links is not None})
        return
    click.echo(f"Queued {plural(queued, 'lapse mail')} (`fundraiser mail send` delivers them).")
    if links is None:
        click.echo(
            "  Without FUNDRAISER_SECRET and PLEDGE_API the mails carry no sign-in link: "
            "export both to give members one.",
            err=True,
        )


COMMANDS = (fees_, applications, admit, decline, lapse)


def register(main: click.Group) -> None:
    group = main.commands["members"]
    assert isinstance(group, click.Group)
    for command in COMMANDS:
        group.add_command(command)
