"""fundraiser members: the register, the voter roll, leaving, and members' data rights."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import click

import fundraiser.register  # whole path: `register` is this module's command hook
from fundraiser import privatefiles
from fundraiser.cli.app import App, listing, pass_app, plural
from fundraiser.money import Money

if TYPE_CHECKING:
    from fundraiser.membership import voters, withdrawal


@click.group()
def members() -> None:
    """The share register: members and their holdings."""


@members.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print members as JSON.")
@pass_app
def list_(app: App, as_json: bool) -> None:
    """List members with their shares."""
    currency = app.campaign.currency
    with app.ledger.read() as conn:
        found = list(fundraiser.register.holdings(conn, currency))
    if as_json:
        app.print_json([h.as_json() for h in found])
        return
    from rich.table import Table  # loaded only when a person is shown it

    table = Table("No.", "Name", "Email", "Shares", "Paid", "Admitted", "Ceased")
    for h in found:
        table.add_row(
            str(h.number),
            h.name,
            h.email or "",
            str(h.shares),
            h.paid.format(),
            h.admitted_on,
            h.ceased_on or "",
        )
    app.out.print(table)
    app.out.print(plural(len(found), "member"))


def _check_out(out: Path) -> None:
    if not out.parent.exists():
        raise click.UsageError(f"--out: folder {out.parent} does not exist; create it first")


def _write(out: Path, text: str) -> None:
    privatefiles.write(out, text)  # owner-only, and never seen half-written


@members.command()
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the register.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--public",
    is_flag=True,
    help="A redacted summary (member count, shares by band): no personal data.",
)
@pass_app
def export(app: App, out: Path, fmt: str, public: bool) -> None:
    """Write the register (name, address, email, shares, paid, dates) for the board.

    The register of members a co-operative society must keep (s.30 of the 2014
    Act). With --public, only counts and totals, safe to publish.
    """
    _check_out(out)
    if public:
        from fundraiser.membership import summary  # the full register needs none of it

        with app.ledger.read() as conn:
            counts = summary.public_summary(conn, app.campaign)
        text = (
            json.dumps(counts, indent=2, ensure_ascii=False) + "\n"
            if fmt == "json"
            else summary.public_csv(counts)
        )
        _write(out, text)
        click.echo(f"Wrote a public summary of {plural(counts['members'], 'member')} to {out}.")
        return
    with app.ledger.read() as conn:
        count = fundraiser.register.export(conn, app.campaign.currency, out, fmt)
    click.echo(f"Wrote {plural(count, 'member')} to {out}.")


@members.command()
@click.option(
    "--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file [default: standard output].",
)
@click.option(
    "--left-out",
    is_flag=True,
    help="Instead, the members the rules suspend (fee lapsed or ended), with why.",
)
@pass_app
def roll(app: App, fmt: str, out: Path | None, left_out: bool) -> None:
    """The voter roll: one member, one vote (email, name, member number).

    Ready to import into Loomio or Decidim. Former members are left out, and
    so are members the rules suspend (see --left-out).
    """
    from fundraiser.membership import voters

    with app.ledger.read() as conn:
        suspended = voters.suspended_on(conn, app.campaign, date.fromisoformat(app.today()))
        on_roll = voters.roll(conn, app.campaign.currency, suspended)
        off_roll = voters.left_out(conn, app.campaign.currency, suspended)
    if left_out:
        text = (
            voters.left_out_csv(off_roll)
            if fmt == "csv"
            else json.dumps([vars(p) for p in off_roll], indent=2, ensure_ascii=False) + "\n"
        )
        _emit(app, out, text, plural(len(off_roll), "member") + " left off the roll")
        return
    text = voters.roll_csv(on_roll) if fmt == "csv" else voters.roll_json(on_roll)
    _emit(app, out, text, plural(len(on_roll), "voter"))
    if off_roll:
        click.echo(
            f"Note: {plural(len(off_roll), 'member')} the rules suspend "
            f"{'is' if len(off_roll) == 1 else 'are'} left off (fee lapsed or ended): "
            "see `fundraiser members roll --left-out`.",
            err=True,
        )
    _no_email_note(on_roll)


def _emit(app: App, out: Path | None, text: str, what: str) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        _check_out(out)
        _write(out, text)
        click.echo(f"Wrote {what} to {out}.", err=True)


def _no_email_note(on_roll: list[voters.Voter]) -> None:
    missing = [str(v.member_number) for v in on_roll if not v.email]
    if missing:
        click.echo(
            f"Note: {listing(map(int, missing), 'member')} "
            f"{'has' if len(missing) == 1 else 'have'} no email; send them notice of "
            "meetings by post.",
            err=True,
        )


@members.command()
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the census.",
)
@pass_app
def census(app: App, out: Path) -> None:
    """The voters as Decidim's CSV census: one email per line, no header.

    Upload it in Decidim's admin (Participants > Authorizations > Organization's
    census). Members the rules suspend and members without an email are left out.
    """
    from fundraiser.membership import voters

    with app.ledger.read() as conn:
        suspended = voters.suspended_on(conn, app.campaign, date.fromisoformat(app.today()))
        on_roll = voters.roll(conn, app.campaign.currency, suspended)
    _check_out(out)
    _write(out, voters.census_csv(on_roll))
    with_email = sum(1 for v in on_roll if v.email)
    click.echo(f"Wrote {plural(with_email, 'voter')} to {out}.")
    _no_email_note(on_roll)


@members.command()
@click.argument("email")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def show(app: App, email: str, as_json: bool) -> None:
    """Everything held about a person: pledges, payments, shares, refunds, mail."""
    from fundraiser.membership import privacy

    with app.ledger.read() as conn:
        data = privacy.show(conn, email, app.campaign.currency)
    if as_json:
        app.print_json(data)
        return
    currency = app.campaign.currency
    member = data["member"]
    if member:
        click.echo(
            f"Member {member['number']}: {member['name']}, {member['address']}, "
            f"{member['email'] or 'no email'}; admitted {member['admitted_on']}"
            + (f", ceased {member['ceased_on']}" if member["ceased_on"] else "")
            + f"; holds {plural(member['shares'], 'share')}, "
            f"{Money(member['amount_paid'], currency).format()} paid."
        )
        for e in data["register_entries"]:
            cert = f", certificate {e['certificate_number']}" if e["certificate_number"] else ""
            click.echo(
                f"  {e['entry_date']} {e['kind']} {plural(e['shares'], 'share')} "
                f"{Money(e['amount'], e['currency']).format()}{cert}"
            )
    else:
        click.echo("Not a member.")
    click.echo(f"Pledges ({len(data['pledges'])}):")
    for p in data["pledges"]:
        click.echo(
            f"  #{p['id']} {p['created_at'][:10]} {Money(p['amount'], p['currency']).format()} "
            f"{p['status']} ({p['source']}); paid {Money(p['paid'], p['currency']).format()}, "
            f"refunded {Money(p['refunded'], p['currency']).format()}; "
            f"{p['name']}, {p['email']}, {p['address']}"
        )
    click.echo(f"Refunds ({len(data['refunds'])}):")
    for r in data["refunds"]:
        click.echo(
            f"  pledge {r['pledge_id']}: {Money(r['amount'], r['currency']).format()} "
            f"{r['reason']}, {r['status']}"
        )
    click.echo(f"Mail ({len(data['mail'])}):")
    for m in data["mail"]:
        click.echo(f"  {m['created_at'][:10]} {m['kind']} to {m['to_email']}: {m['status']}")


@members.command()
@click.argument("email")
@click.option("--dry-run", is_flag=True, help="Check and say what would be erased; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def forget(app: App, email: str, dry_run: bool, as_json: bool) -> None:
    """Erase the personal data of a backer who never became a member.

    Their pledges keep amounts and dates for the accounts; the person becomes
    "(erased)". Refused, with the reason, for a member: the law requires the
    co-op to keep its register of members.
    """
    from fundraiser.membership import privacy

    result = privacy.forget(
        app.ledger, email, today=app.today(), now=app.stored_now(), dry_run=dry_run
    )
    if as_json:
        app.print_json({"dry_run": dry_run, **result.as_json()})
        return
    verb = "Would erase" if dry_run else "Erased"
    click.echo(
        f"{verb} the personal data on {plural(len(result.pledges), 'pledge')}; "
        f"{plural(result.mail_deleted, 'unsent message')} deleted, "
        f"{plural(result.mail_erased, 'sent message')} kept without the address."
    )


@members.command()
@click.argument("number", type=int)
@click.option("--shares", type=int, required=True, help="How many shares to withdraw.")
@click.option("--note", help="Why (e.g. the board's minute reference).")
@click.option(
    "--waive-notice",
    is_flag=True,
    help="Withdraw at once: the board waives the rules' notice period.",
)
@click.option("--dry-run", is_flag=True, help="Check, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def withdraw(
    app: App,
    number: int,
    shares: int,
    note: str | None,
    waive_notice: bool,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Withdraw shares: a request held for the rules' notice period ([membership]), then
    paid with `members pay-withdrawal`; at once with no notice period or --waive-notice.
    The member ceases at zero shares."""
    from fundraiser.membership import withdrawal

    membership = app.campaign.membership
    if membership and membership.withdrawal_notice_days and not waive_notice:
        asked = withdrawal.request(
            app.ledger,
            app.campaign,
            number,
            shares,
            today=app.today(),
            now=app.stored_now(),
            note=note,
            dry_run=dry_run,
        )
        if as_json:
            app.print_json({"dry_run": dry_run, "request": asked.as_json()})
            return
        verb = "Would record" if dry_run else f"Recorded request {asked.id}"
        click.echo(
            f"{verb}: member {number} withdraws {plural(shares, 'share')} "
            f"({asked.amount.format()}) after the rules' notice of "
            f"{plural(membership.withdrawal_notice_days, 'day')}: due on {asked.due_on} "
            "(`fundraiser members withdrawals`)."
        )
        return
    result = withdrawal.withdraw(
        app.ledger,
        app.campaign,
        number,
        shares,
        today=app.today(),
        now=app.stored_now(),
        note=note,
        dry_run=dry_run,
    )
    if as_json:
        app.print_json({"dry_run": dry_run, **result.as_json()})
        return
    _said_withdrawn(app, number, shares, result, dry_run)


def _said_withdrawn(
    app: App, number: int, shares: int, result: withdrawal.Withdrawal, dry_run: bool
) -> None:
    verb = "Would withdraw" if dry_run else "Withdrew"
    ceased = f" Member {number} ceases on {app.today()}." if result.ceased else ""
    click.echo(
        f"{verb} {plural(shares, 'share')} from member {number}, {result.holding_after} left; "
        f"{result.amount.format()} to repay to them.{ceased}"
        + (
            f" Their certificates are taken back; balance certificate "
            f"{result.balance_certificate} is for the {plural(result.holding_after, 'share')} left."
            if result.balance_certificate
            else ""
        )
    )


@members.command()
@click.option("--due", is_flag=True, help="Only those whose notice has run out: to pay now.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def withdrawals(app: App, due: bool, as_json: bool) -> None:
    """Withdrawal requests waiting for their notice period, the soonest due first."""
    from fundraiser.membership import withdrawal

    today = app.today()
    with app.ledger.read() as conn:
        found = withdrawal.requests(conn, app.campaign, status=withdrawal.RequestStatus.WAITING)
    if due:
        found = [r for r in found if r.due_on <= today]
    if as_json:
        app.print_json([{**r.as_json(), "due": r.due_on <= today} for r in found])
        return
    if not found:
        click.echo("No withdrawals due." if due else "No withdrawal requests waiting.")
        return
    from rich.table import Table  # loaded only when a person is shown it

    table = Table("Request", "Member", "Name", "Shares", "Amount", "Asked", "Due", "Now")
    for r in found:
        table.add_row(
            str(r.id),
            str(r.member),
            r.name,
            str(r.shares),
            r.amount.format(),
            r.requested_on,
            r.due_on,
            "pay: `members pay-withdrawal " + str(r.id) + "`" if r.due_on <= today else "notice",
        )
    app.out.print(table)


@members.command("pay-withdrawal")
@click.argument("request_id", type=int)
@click.option("--dry-run", is_flag=True, help="Check, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def pay_withdrawal(app: App, request_id: int, dry_run: bool, as_json: bool) -> None:
    """Pay a withdrawal whose notice has run: the entry, a balance certificate, the money owed.

    By card refund where the shares were paid by card recently enough for Stripe
    (`fundraiser refunds send`), else by bank transfer.
    """
    from fundraiser.membership import withdrawal

    asked, result = withdrawal.pay(
        app.ledger,
        app.campaign,
        request_id,
        today=app.today(),
        now=app.stored_now(),
        dry_run=dry_run,
    )
    if as_json:
        app.print_json({"dry_run": dry_run, "request": asked.as_json(), **result.as_json()})
        return
    _said_withdrawn(app, asked.member, asked.shares, result, dry_run)
    how = (
        "refund it to the card with `fundraiser refunds send`"
        if asked.method == "card"
        else "pay it by bank transfer, then `fundraiser refunds mark-paid`"
    )
    if not dry_run:
        click.echo(f"The {result.amount.format()} is listed in `fundraiser refunds list`: {how}.")


@members.command("cancel-shares")
@click.argument("pledge_id", type=int)
@click.option("--reason", default="refunded", show_default=True, help="Why, e.g. 'dispute lost'.")
@click.option("--dry-run", is_flag=True, help="Show what would be cancelled; write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def cancel_shares(app: App, pledge_id: int, reason: str, dry_run: bool, as_json: bool) -> None:
    """Cancel the shares issued from a pledge that was later refunded or lost to a dispute."""
    from fundraiser.membership import cancellation

    result = cancellation.cancel_shares(
        app.ledger,
        app.campaign,
        pledge_id,
        reason=reason,
        today=app.today(),
        now=app.stored_now(),
        dry_run=dry_run,
    )
    if as_json:
        app.print_json({"dry_run": dry_run, **result.as_json()})
        return
    verb = "Would cancel" if dry_run else "Cancelled"
    currency = app.campaign.currency
    if not result.entries and not result.refunds and not result.settled_remainders:
        click.echo(f"Nothing to cancel for pledge {pledge_id}: already done.")
    else:
        click.echo(f"{verb} {plural(result.shares, 'share')} paid by pledge {pledge_id}.")
    for r in result.refunds:
        amount = Money(abs(r["amount"]), currency).format()
        if r["amount"] > 0:
            click.echo(
                f"  {amount} of pledge {r['pledge_id']} no longer makes a whole share: "
                "listed for refund (`fundraiser refunds list`)."
            )
        else:
            click.echo(
                f"  The refund listed for pledge {r['pledge_id']} is {amount} less: that "
                "money went back with the refunded pledge."
            )
    for number in result.ceased:
        click.echo(f"  Member {number} holds no shares now and has ceased.")
    for warning in result.warnings:
        click.echo(f"Warning: {warning}", err=True)


@members.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
@pass_app
def flagged(app: App, as_json: bool) -> None:
    """Shares issued from pledges later refunded or disputed, waiting for a decision."""
    from fundraiser.membership import cancellation

    with app.ledger.read() as conn:
        flags = cancellation.open_flags(conn)
    if as_json:
        app.print_json(flags)
        return
    if not flags:
        click.echo("No flagged shares.")
        return
    for f in flags:
        hint = (
            f"run `fundraiser members cancel-shares {f['pledge_id']}`"
            if f["pledge_status"] == "refunded"
            else "wait: the pledge is " + f["pledge_status"]
        )
        click.echo(
            f"Member {f['member']}: {plural(f['shares'], 'share')} of entry {f['entry_id']}, "
            f"pledge {f['pledge_id']} {f['reason']}; {hint}"
        )


def register(main: click.Group) -> None:
    main.add_command(members)
