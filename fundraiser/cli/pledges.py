"""fundraiser pledges: add, import, list, cancel, mark-paid."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

import fundraiser.pledges  # whole path: `pledges` is this module's command group
import fundraiser.register
from fundraiser import acknowledge, cancel, importer, offline
from fundraiser.cli.app import App, pass_app, plural
from fundraiser.errors import Problem, ProblemsError
from fundraiser.money import Money
from fundraiser.people import person_key
from fundraiser.pledges import BY_HAND, Pledge, Source, Status

NOTIFY_HELP = (
    "Queue each backer's 'we have your pledge' mail; unpaid pledges get the "
    "bank details from campaign.toml's [bank]."
)


@click.group()
def pledges() -> None:
    """Record and look after pledges."""


@pledges.command("add")
@click.option("--name", required=True, help="The backer's full name (for the register).")
@click.option("--email", required=True, help="The backer's email address.")
@click.option("--address", required=True, help="The backer's postal address.")
@click.option("--amount", required=True, help="Amount in major units, e.g. 2500.00.")
@click.option(
    "--round", "round_id", default="seed", show_default=True, help="The round: seed or crowd."
)
@click.option(
    "--status",
    type=click.Choice(["pledged", "paid"]),
    default="pledged",
    show_default=True,
    help="pledged (promised) or paid (money received).",
)
@click.option("--reference", help="Bank transfer reference, unique per payment.")
@click.option("--display-name", help="Public name, only if the backer asked to be shown.")
@click.option("--notify", is_flag=True, help=NOTIFY_HELP)
@click.option("--dry-run", is_flag=True, help="Check everything, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def add(
    app: App,
    name: str,
    email: str,
    address: str,
    amount: str,
    round_id: str,
    status: str,
    reference: str | None,
    display_name: str | None,
    notify: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Record an offline pledge (a seed commitment or a bank transfer).

    After the campaign, a paid one from a member is a top-up, issued at once;
    from anyone else an application to join (`fundraiser members applications`).
    """
    with app.ledger.read() as conn:
        held = fundraiser.register.held_by(conn, person_key(email))
    item, problems = importer.check_offline(
        app.campaign,
        name=name,
        email=email,
        address=address,
        amount=amount,
        round_id=round_id,
        status=status,
        held_shares=held,
    )
    if item is None:
        # Each problem under the option that gave the value: "--email: ...".
        raise ProblemsError(
            "the pledge was not recorded:",
            [Problem(f"--{p.where.replace('_', '-')}", p.message, p.fix) for p in problems],
        )
    item = replace(
        item,
        reference=(reference or "").strip() or None,
        display_name=display_name,
        source=Source.OFFLINE,
    )
    if notify:
        acknowledge.check_bank(app.campaign, [item])
    pledge_id = offline.record_offline(
        app.ledger, item, dry_run=dry_run, now=app.stored_now(), notify=notify
    )
    if as_json:
        app.print_json(
            {
                "id": pledge_id,
                "dry_run": dry_run,
                "amount": item.amount.amount,
                "currency": item.amount.currency,
                "status": item.status.value,
                "notified": notify and not dry_run,
            }
        )
    elif dry_run:
        click.echo(
            f"Dry run: would record {item.amount.format()} from {item.name} "
            f"({_added(item.status)}, {_round_name(app, item.round)}). Nothing was written."
        )
    else:
        click.echo(
            f"Recorded pledge {pledge_id}: {item.amount.format()} from {item.name} "
            f"({_added(item.status)})."
            + (" The backer's mail is queued: `fundraiser mail send`." if notify else "")
        )
    if not dry_run and item.status is Status.PAID:
        _settle(app)


def _settle(app: App) -> None:
    """A payment after the campaign: top-ups issued at once, joins as the rules say."""
    from fundraiser.membership import admission

    if app.campaign.membership is None:
        return
    done = admission.settle(app.ledger, app.campaign, today=app.today(), now=app.stored_now())
    if done.shares:
        click.echo(
            f"Issued {plural(done.shares, 'share')} after the campaign"
            + (f", welcoming member {done.first_member}" if done.members_admitted else "")
            + ": `fundraiser certificates make`.",
            err=True,
        )
    with app.ledger.read() as conn:
        waiting = admission.listing(conn, app.campaign, status=admission.AppStatus.WAITING)
    if waiting:
        click.echo(
            f"{plural(len(waiting), 'application')} to join waiting for the board: "
            "`fundraiser members applications`.",
            err=True,
        )


def _added(status: Status) -> str:
    """How an offline pledge stands once recorded, in `pledges add`'s own words."""
    return "paid" if status is Status.PAID else "pledged, not paid yet"


def _round_name(app: App, round_id: str) -> str:
    found = app.campaign.round(round_id)
    return found.name if found else f"{round_id} round"


def status_label(pledge: Pledge) -> str:
    """A pledge's state as an organizer reads it in a table.

    The state's own name (what `--status` takes), except that a pledge recorded by
    hand and not paid yet is "pledged", as `pledges add` and the CSV call it, and
    names read as words ("payment failed").
    """
    if pledge.status is Status.PENDING and pledge.source in BY_HAND:
        return "pledged"
    if pledge.status is Status.PAID and pledge.refunded.amount:
        return "paid, part refunded"
    return pledge.status.value.replace("_", " ")


@pledges.command("import")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--notify", is_flag=True, help=NOTIFY_HELP)
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def import_(app: App, file: Path, notify: bool, dry_run: bool, as_json: bool) -> None:
    """Import offline pledges from a CSV file: all rows or none.

    Columns: name,email,amount,round,status,reference,address. Amounts in major
    units (250.00); status pledged or paid. Rows already imported are skipped.
    """
    plan = importer.import_file(
        app.ledger, app.campaign, file, dry_run=dry_run, now=app.stored_now(), notify=notify
    )
    total = Money(plan.total, app.campaign.currency)
    if as_json:
        app.print_json(
            {
                "imported": 0 if dry_run else plan.new,
                "new": plan.new,
                "skipped": plan.skipped,
                "total": total.amount,
                "currency": total.currency,
                "dry_run": dry_run,
                "notified": 0 if dry_run or not notify else plan.new,
            }
        )
        return
    verb = "Would import" if dry_run else "Imported"
    click.echo(
        f"{verb} {plural(plan.new, 'pledge')}, {total.format()}"
        + (f"; {plan.skipped} already in the ledger, skipped" if plan.skipped else "")
        + (". Nothing was written." if dry_run else ".")
        + (
            " Each backer's mail is queued: `fundraiser mail send`."
            if notify and plan.new and not dry_run
            else ""
        )
    )


@pledges.command("list")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice([s.value for s in Status]),
    help="Only pledges in this state (repeatable); pending includes pledged (unpaid, by hand).",
)
@click.option("--json", "as_json", is_flag=True, help="Print pledges as JSON.")
@pass_app
def list_(app: App, statuses: tuple[str, ...], as_json: bool) -> None:
    """List pledges (all, or by status)."""
    wanted = [Status(s) for s in statuses] or None
    with app.ledger.read() as conn:
        found = fundraiser.pledges.find(conn, status=wanted)
    if as_json:
        app.print_json([p.as_json() for p in found])
        return
    from rich.table import Table  # loaded only when a person is shown it

    table = Table("ID", "Name", "Email", "Amount", "Round", "Status", "Reference")
    for p in found:
        table.add_row(
            str(p.id),
            p.name,
            p.email,
            p.amount.format(),
            p.round,
            status_label(p),
            p.reference or "",
        )
    app.out.print(table)
    app.out.print(plural(len(found), "pledge"))


def _cancel_at_stripe(app: App, pledge_id: int, reason: str) -> Pledge:
    """A cancel's Stripe step; NotConfigured when STRIPE_SECRET_KEY is not set."""
    from fundraiser.payments import cardforms
    from fundraiser.payments.env import payments_from_env

    env = payments_from_env(os.environ, app.ledger, app.campaign)
    return cardforms.withdraw(
        app.ledger, env.client, env.ctx, pledge_id, reason=reason, now=app.stored_now()
    )


@pledges.command("cancel")
@click.argument("pledge_id", type=int)
@click.option("--reason", default="cancelled by an organizer", show_default=True)
@pass_app
def cancel_(app: App, pledge_id: int, reason: str) -> None:
    """Cancel a pledge that has not been paid.

    An online pledge whose card form is still open is closed at Stripe first
    (STRIPE_SECRET_KEY needed), so the backer can no longer pay it.
    """
    pledge = cancel.cancel(
        app.ledger,
        pledge_id,
        who=cancel.Who.ORGANIZER,
        reason=reason,
        now=app.now(),
        deadline=app.campaign.campaign.deadline,
        at_stripe=lambda pid, why: _cancel_at_stripe(app, pid, why),
        stored_now=app.stored_now(),
    )
    click.echo(
        f"Pledge {pledge.id} is now cancelled. The backer's mail is queued: `fundraiser mail send`."
    )


@pledges.command("mark-paid")
@click.argument("pledge_id", type=int)
@click.option("--reference", help="The bank transfer's reference.")
@click.option("--notify", is_flag=True, help="Queue the backer's 'payment received' mail.")
@pass_app
def mark_paid(app: App, pledge_id: int, reference: str | None, notify: bool) -> None:
    """Record that an offline pledge's bank transfer has arrived."""
    pledge = offline.mark_paid(
        app.ledger, pledge_id, reference=reference, now=app.stored_now(), notify=notify
    )
    click.echo(
        f"Pledge {pledge.id} is now paid ({pledge.paid.format()})."
        + (" The backer's mail is queued: `fundraiser mail send`." if notify else "")
    )
    _settle(app)


def register(main: click.Group) -> None:
    main.add_command(pledges)
