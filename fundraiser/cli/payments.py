"""fundraiser serve, collect, stripe sync, pledges refund: thin over payments/ and service/."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import click

from fundraiser.cli.app import App, listing, pass_app, plural
from fundraiser.cli.pledges import pledges as pledges_group
from fundraiser.money import Money, parse
from fundraiser.payments.ratelimit import DEFAULT_RATE

if TYPE_CHECKING:
    from fundraiser.payments.collect import Report
    from fundraiser.payments.env import Payments
    from fundraiser.payments.plan import Plan


# One pace for every command that calls Stripe in bulk (collect, stripe sync).
RATE = click.option(
    "--rate",
    type=click.FloatRange(0.1, 100),
    default=DEFAULT_RATE,
    show_default=True,
    envvar="FUNDRAISER_STRIPE_RATE",
    help="Most Stripe calls per second (Stripe allows 25 in test mode, 100 live).",
)


def _payments(app: App, *, fix_days: int = 7, need_links: bool = False) -> Payments:
    # Imported here: stripe-python takes a noticeable part of every command's start.
    from fundraiser.payments.env import payments_from_env

    return payments_from_env(
        os.environ, app.ledger, app.campaign, fix_days=fix_days, need_links=need_links
    )


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8000, show_default=True)
@pass_app
def serve(app: App, host: str, port: int) -> None:
    """Run the pledge service (the pledge page's API and Stripe's webhook).

    Settings come from the environment: STRIPE_SECRET_KEY, STRIPE_PUBLISHABLE_KEY,
    STRIPE_WEBHOOK_SECRET, FUNDRAISER_SECRET, SITE_ORIGIN, PLEDGE_API (the
    service's public address; on loopback it defaults to http://HOST:PORT), and
    optionally STRIPE_API_BASE, STRIPE_JS_URL (as for the site build),
    FUNDRAISER_ALLOWED_HOSTS and the limits in README.
    """
    from fundraiser.service import server
    from fundraiser.service.settings import Settings

    settings = Settings.from_env(
        os.environ,
        campaign=app.campaign,
        database_url=app.database_url,
        now=app.now,
        default_base=server.default_address(host, port),
    )
    click.echo(
        f"Pledge service on http://{host}:{port}, links to {settings.public_base} "
        f"(site origin {settings.site_origin})"
    )
    server.run(settings, host, port)


@click.command("collect")
@click.option("--dry-run", is_flag=True, help="Say what would happen; charge nothing.")
@click.option(
    "--retry",
    is_flag=True,
    help="Also retry soft declines (after 48 h) and lapse pledges whose fix window ended.",
)
@RATE
@click.option(
    "--fix-days",
    type=click.IntRange(1, 60),
    default=7,
    show_default=True,
    help="Days a backer has to fix a failed payment.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def collect(
    app: App, dry_run: bool, retry: bool, rate: float, fix_days: int, as_json: bool
) -> None:
    """After an all-or-nothing deadline: charge saved cards if the goal is met, else release.

    Safe to interrupt and rerun: no pledge is ever charged twice.
    """
    import fundraiser.payments.collect  # whole path: this function is `collect`
    from fundraiser.payments.plan import plan

    now = app.now()
    the_plan = plan(app.ledger, app.campaign, now, retry=retry)
    if dry_run:
        _print_plan(app, the_plan, as_json)
        return
    if not the_plan.at_stripe:  # paid by bank transfer only: the close needs no Stripe
        report = fundraiser.payments.collect.close_without_stripe(
            app.ledger, the_plan, now=app.stored_now()
        )
        if as_json:
            app.print_json({"plan": the_plan.as_json(), "result": report.as_json()})
        elif the_plan.decision == "charge":
            click.echo(
                f"The goal was met ({the_plan.secured.format()} of {the_plan.goal.format()}); "
                "the close is recorded and no card is waiting to be charged. Issue the shares: "
                "`fundraiser shares issue`."
            )
        else:
            _say_released(the_plan, report)
        return
    env = _payments(app, fix_days=fix_days, need_links=the_plan.decision == "charge")
    collector = fundraiser.payments.collect.Collector(
        app.ledger,
        env.client,
        env.ctx,
        rate=rate,
        now=app.stored_now,
    )
    count = len(the_plan.charge) + len(the_plan.resume)
    from rich.progress import Progress  # loaded only when a person is shown it

    with Progress(console=app.err, disable=as_json or count == 0, transient=True) as bar:
        task = bar.add_task("Charging", total=count)
        report = collector.run(the_plan, retry=retry, progress=lambda n: bar.advance(task, n))
    if as_json:
        app.print_json({"plan": the_plan.as_json(), "result": report.as_json()})
        return
    currency = app.campaign.currency
    if report.closed:
        click.echo(
            f"Closed {plural(report.closed, 'card form')} never completed at the close; "
            f"{'its pledge is' if report.closed == 1 else 'their pledges are'} cancelled."
        )
    if report.cards_removed or report.customers_removed:
        click.echo(
            f"Removed {plural(report.cards_removed, 'saved card')} and "
            f"{plural(report.customers_removed, 'customer record')} at Stripe, for pledges "
            "that will never be charged."
        )
    if the_plan.decision == "release":
        _say_released(the_plan, report)
        return
    failed = sum(report.failed.values())
    why = ", ".join(f"{code.replace('_', ' ')}: {n}" for code, n in sorted(report.failed.items()))
    click.echo(
        f"Charged {plural(report.paid, 'pledge')}, {Money(report.collected, currency).format()}, "
        f"in {report.seconds:.1f} s; {failed} failed" + (f" ({why})" if why else "") + "."
    )
    if report.failed_ids:
        click.echo(
            f"Failed: {listing(report.failed_ids, 'pledge')}. Each backer is mailed a link to "
            "fix their card (`fundraiser mail send`)."
        )
    if report.lapsed:
        click.echo(
            f"{plural(report.lapsed, 'pledge')} lapsed: "
            f"{'its' if report.lapsed == 1 else 'their'} time to fix the card ended."
        )
    for note in report.errors:
        click.echo(f"Warning: {note}", err=True)
    if report.unresolved:
        raise click.ClickException(
            f"{plural(len(report.unresolved), 'charge')} still in flight: rerun "
            "`fundraiser collect`"
        )


def _say_released(the_plan: Plan, report: Report) -> None:
    click.echo(
        f"The goal was not met ({the_plan.secured.format()} of {the_plan.goal.format()}): "
        f"released {plural(report.released, 'pledge')}; nothing was charged, and no shares "
        "will be issued. Backers' notices are queued (`fundraiser mail send`)."
    )
    if report.owed_back:
        click.echo(
            f"{plural(report.owed_back, 'bank payment')} "
            f"{'is' if report.owed_back == 1 else 'are'} owed back in full: pay "
            f"{'it' if report.owed_back == 1 else 'them'} back by bank transfer "
            "(`fundraiser refunds list`)."
        )


def _print_plan(app: App, the_plan: object, as_json: bool) -> None:
    from fundraiser.payments.plan import Plan

    assert isinstance(the_plan, Plan)
    if as_json:
        app.print_json({"dry_run": True, **the_plan.as_json()})
        return
    p = the_plan
    met = "met" if p.secured >= p.goal else "not met"
    click.echo(
        f"Dry run: {p.secured.format()} secured of a {p.goal.format()} goal ({met})"
        + ("; decided by an earlier run" if p.decided_before else "")
        + "."
    )
    if p.decision == "release":
        click.echo(
            f"Would release {plural(len(p.release), 'pledge')} and queue the backers' notices; "
            "nothing would be charged."
        )
        if p.paid_offline:
            click.echo(
                f"{plural(p.paid_offline, 'bank-transfer pledge')} paid would be owed back in "
                "full by bank transfer (listed by `fundraiser refunds list`)."
            )
    else:
        count = len(p.charge) + len(p.resume)
        click.echo(
            f"Would charge {plural(count, 'pledge')}, {p.total.format()}"
            + (f" ({len(p.resume)} left in flight by an earlier run)" if p.resume else "")
            + f". If 5-10% fail: {p.if_failing(10).format()} to {p.if_failing(5).format()}."
        )
        if p.lapse:
            click.echo(
                f"Would lapse {plural(len(p.lapse), 'pledge')} whose time to fix the card ended."
            )
        if p.waiting_fix:
            click.echo(
                f"{plural(p.waiting_fix, 'failed pledge')} "
                f"{'is' if p.waiting_fix == 1 else 'are'} waiting for the backer to fix the card."
            )
        if p.never_saved:
            click.echo(
                f"{plural(p.never_saved, 'online pledge')} never saved a card: not charged; "
                f"{'its card form' if p.never_saved == 1 else 'their card forms'} would be closed."
            )
    click.echo("Nothing was charged or written.")


@click.group("stripe")
def stripe_group() -> None:
    """Reconcile with Stripe."""


@stripe_group.command("sync")
@click.option(
    "--abandon-after",
    type=click.FloatRange(0.25, 24 * 30),
    default=2.0,
    show_default=True,
    metavar="HOURS",
    help="Close card forms left unfinished this long; their pledges are cancelled.",
)
@RATE
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def sync(app: App, abandon_after: float, rate: float, as_json: bool) -> None:
    """Catch up from Stripe's event list and by re-reading intents (resumable).

    Card forms a backer left unfinished for --abandon-after hours are closed at
    Stripe and their pledges cancelled, so a limited tier's places come back.
    """
    from datetime import timedelta

    import fundraiser.payments.sync  # whole path: this function is `sync`

    env = _payments(app)
    report = fundraiser.payments.sync.sync(
        app.ledger,
        env.client,
        env.ctx,
        now=app.now(),
        abandon_after=timedelta(hours=abandon_after),
        stored_now=app.stored_now(),
        rate=rate,
        campaign=app.campaign,
        emulated=env.emulated,
    )
    if as_json:
        app.print_json(report.as_json())
        return
    done = [
        f"Read {plural(report.listed, 'event')} from Stripe: {report.stored} new, "
        f"{report.applied} applied",
        f"checked {plural(report.intents_checked, 'unfinished payment')} at Stripe, "
        f"{report.intents_moved} moved on",
    ]
    if report.deferred:
        done.append(
            f"{plural(report.deferred, 'event')} "
            f"{'waits' if report.deferred == 1 else 'wait'} for objects we do not know yet"
        )
    if report.abandoned:
        done.append(
            f"closed {plural(len(report.abandoned), 'abandoned card form')}: "
            f"{listing(report.abandoned, 'pledge')} cancelled"
        )
    if report.leftovers_removed:
        done.append(
            f"removed {plural(len(report.leftovers_removed), 'object')} at Stripe no pledge named "
            "(a service stopped mid-pledge)"
            + (
                f": {listing(report.leftover_pledges_cancelled, 'pledge')} cancelled"
                if report.leftover_pledges_cancelled
                else ""
            )
        )
    if report.cards_removed or report.customers_removed:
        done.append(
            f"removed {plural(len(report.cards_removed), 'saved card')} and "
            f"{plural(len(report.customers_removed), 'customer record')} at Stripe, for pledges "
            "that will never be charged"
        )
    if report.joined or report.fees_started:
        done.append(
            f"admitted {plural(len(report.joined), 'member')} who paid on the join page; "
            f"began the fee of {plural(len(report.fees_started), 'member')}"
        )
    click.echo("; ".join(done) + ".")
    for note in report.notes:
        click.echo(f"Warning: {note}", err=True)


@click.command("refund")
@click.argument("pledge_id", type=int)
@click.option("--amount", help="Amount in major units (default: everything not yet refunded).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def refund(app: App, pledge_id: int, amount: str | None, as_json: bool) -> None:
    """Refund a pledge paid by card (never more than was paid)."""
    from fundraiser.payments import refunds

    value: Money | None = parse(amount, app.campaign.currency) if amount else None
    env = _payments(app)
    done = refunds.refund(app.ledger, env.client, env.ctx, pledge_id, value, now=app.stored_now())
    if as_json:
        app.print_json(
            {
                "pledge_id": done.pledge_id,
                "refund": done.refund_id,
                "amount": done.amount.amount,
                "refunded": done.refunded_total.amount,
                "paid": done.paid.amount,
                "currency": done.amount.currency,
                "status": done.status.value,
            }
        )
        return
    whole = done.refunded_total >= done.paid
    click.echo(
        f"Refunded {done.amount.format()} of pledge {done.pledge_id}: "
        + (
            f"all {done.paid.format()} paid is now refunded."
            if whole
            else f"{done.refunded_total.format()} of the {done.paid.format()} paid is now refunded."
        )
    )


def register(main: click.Group) -> None:
    main.add_command(serve)
    main.add_command(collect)
    main.add_command(stripe_group)
    if "refund" not in pledges_group.commands:
        pledges_group.add_command(refund)
