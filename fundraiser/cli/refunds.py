"""fundraiser refunds: money owed back (remainders), listed, paid by card or by a bank
file, and the accounts bank payers give for it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.table import Table

from fundraiser import privatefiles, remainders
from fundraiser.cli.app import App, fail, listing, pass_app, plural
from fundraiser.money import Money

if TYPE_CHECKING:
    from fundraiser.bank import payouts


@click.group()
def refunds() -> None:
    """Money owed back after shares are issued: the list, and recording refunds."""


@refunds.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option(
    "--csv",
    "csv_out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the bank refunds to pay as CSV (for the bank's bulk upload).",
)
@pass_app
def refunds_list(app: App, as_json: bool, csv_out: Path | None) -> None:
    """Remainders still due: card refunds (Stripe) and bank refunds (with references)."""
    with app.ledger.read() as conn:
        items = remainders.due(conn)
        sent = remainders.due(conn, status=remainders.RemainderStatus.SENT)
        given = remainders.accounts_for(conn, [i.pledge_id for i in items + sent])
    if csv_out is not None:
        if not csv_out.parent.exists():
            fail(f"--csv: folder {csv_out.parent} does not exist; create it first")
        count = remainders.write_bank_csv(items, csv_out)
        click.echo(f"Wrote {plural(count, 'bank refund')} to {csv_out}.", err=True)
    if as_json:
        app.print_json(
            [
                {**i.as_json(), "state": state, "account_given": i.pledge_id in given}
                for state, group in (("due", items), ("sent", sent))
                for i in group
            ]
        )
        return
    if sent:
        table = Table("Pledge", "Name", "Amount", "Refund ref.", title="Sent by bank payment file")
        for i in sent:
            table.add_row(str(i.pledge_id), i.name, i.total.format(), i.transfer_reference)
        app.out.print(table)
        app.out.print("Each is marked paid when a statement import shows it leaving.")
    if not items:
        click.echo("No refunds due.")
        return
    currency = app.campaign.currency
    for method, title in (
        (remainders.BANK, "Bank transfers to make"),
        (remainders.CARD, "Card payments: " + remainders.CARD_HINT),
    ):
        group = [i for i in items if i.method == method]
        if not group:
            continue
        table = Table(
            "Pledge",
            "Name",
            "Email",
            "Amount",
            "Why",
            "Paid with ref.",
            "Refund ref.",
            "Note",
            title=title,
        )
        for i in group:
            table.add_row(
                str(i.pledge_id),
                i.name,
                i.email,
                i.total.format(),
                ", ".join(sorted({line.reason for line in i.lines})),
                i.pledge_reference or "",
                i.transfer_reference if method == remainders.BANK else "",
                f"on hold: {i.hold}" if i.hold else "",
            )
        app.out.print(table)
        total = Money(sum(i.total.amount for i in group if not i.hold), currency)
        app.out.print(f"{plural(len(group), 'pledge')}, {total.format()} to refund.")
        if method == remainders.BANK:
            missing = [str(i.pledge_id) for i in group if i.pledge_id not in given]
            app.out.print(
                f"{len(group) - len(missing)} of them gave an account for a payment file "
                "(`fundraiser refunds send --bank`)"
                + (
                    f"; still to ask: {listing(map(int, missing), 'pledge')} "
                    "(`fundraiser refunds set-account PLEDGE --iban ...`)."
                    if missing
                    else "."
                )
            )


@refunds.command("mark-paid")
@click.argument("pledge_id", type=int)
@click.option("--reference", required=True, help="The bank transfer's reference.")
@click.option("--dry-run", is_flag=True, help="Check, write nothing.")
@pass_app
def mark_paid(app: App, pledge_id: int, reference: str, dry_run: bool) -> None:
    """Record that a bank refund was paid; queues the "refund sent" mail."""
    item = remainders.mark_bank_refund(
        app.ledger, pledge_id, reference=reference, now=app.stored_now(), dry_run=dry_run
    )
    verb = "Would record" if dry_run else "Recorded"
    click.echo(f"{verb} a refund of {item.total.format()} to {item.name} for pledge {pledge_id}.")


@refunds.command("send")
@click.option("--dry-run", is_flag=True, help="List the refunds; send nothing, write nothing.")
@click.option(
    "--bank",
    "by_bank",
    is_flag=True,
    help="Bank refunds: write a payment file (SEPA pain.001 for EUR, UK bulk-payment CSV "
    "for GBP) to upload to the bank, and mark them sent.",
)
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="With --bank: the payment file to write.",
)
@click.option(
    "--batch",
    help="With --bank: write an earlier file again (its id, e.g. REFUNDS-20270301-1); "
    "refunds seen paid since are left out.",
)
@pass_app
def refunds_send(
    app: App, dry_run: bool, by_bank: bool, out: Path | None, batch: str | None
) -> None:
    """Refund card remainders through Stripe, or (--bank) bank ones by a payment file."""
    if by_bank:
        _send_by_bank(app, dry_run, out, batch)
        return
    if out is not None or batch is not None:
        fail("--out and --batch go with --bank")
    with app.ledger.read() as conn:
        lines = remainders.card_lines_due(conn)
    total = Money(sum(line.amount for _, line in lines), app.campaign.currency)
    if dry_run or not lines:
        click.echo(
            f"{plural(len(lines), 'card refund')}, {total.format()} in all. Nothing was sent."
        )
        return
    from fundraiser.payments.refunds import refund_due_remainders

    done, sent = refund_due_remainders(app.ledger, now=app.stored_now())
    click.echo(
        f"Refunded {plural(done, 'remainder')} through Stripe, {(sent or total).format()} in all."
    )


def _send_by_bank(app: App, dry_run: bool, out: Path | None, batch: str | None) -> None:
    from fundraiser.bank import payouts

    if out is None and not dry_run:
        fail("--bank needs --out FILE: where to write the payment file")
    if out is not None and not out.parent.exists():
        fail(f"--out: folder {out.parent} does not exist; create it first")
    campaign = app.campaign
    currency = campaign.currency
    with app.ledger.read() as conn:
        if batch:
            plan = payouts.again(conn, batch, currency)
        else:
            plan = payouts.plan(conn, currency, app.today())
    for item, why in plan.skipped:
        click.echo(f"Skipped pledge {item.pledge_id} ({item.total.format()}): {why}", err=True)
    if not plan.payouts:
        click.echo("No bank refund can go in a payment file now.")
        return
    bank = campaign.bank
    payouts.check_source(bank.iban if bank else None, plan.scheme)
    verb = "Would write" if dry_run else "Wrote"
    if not dry_run and out is not None:
        data = _payment_file(app, plan)
        # Names and accounts: owner-only. The file appears only once the refunds are marked.
        with privatefiles.open_private(out, "wb") as handle:
            handle.write(data)
            if not batch:
                payouts.mark_sent(app.ledger, plan, now=app.stored_now())
    kind = "SEPA credit transfer (pain.001)" if plan.scheme == "sepa" else "UK bulk payment CSV"
    click.echo(
        f"{verb} {plural(len(plan.payouts), 'refund')}, {plan.total.format()} in all, as a {kind}"
        + (f" to {out}" if out else "")
        + f"; batch {plan.batch}."
    )
    if not dry_run:
        click.echo(
            "Upload it to the bank. The refunds are marked sent; a later `fundraiser bank "
            "import` of the statement marks each one paid when it leaves the account."
        )


def _payment_file(app: App, plan: payouts.PayoutPlan) -> bytes:
    from datetime import date

    bank = app.campaign.bank
    if plan.scheme == "sepa":
        from fundraiser.bankfiles import pain001

        assert bank is not None and bank.iban is not None  # checked by check_source
        return pain001.write(
            plan,
            name=bank.account_name,
            iban=bank.iban,
            bic=bank.bic,
            execution=date.fromisoformat(app.today()),
        )
    from fundraiser.bankfiles import ukbulk

    return ukbulk.write(plan)


@refunds.command("set-account")
@click.argument("pledge_id", type=int)
@click.option("--iban", help="The payer's IBAN.")
@click.option("--bic", help="The bank's BIC [default: from the IBAN, when known].")
@click.option("--sort-code", help="A UK sort code (with --account-number).")
@click.option("--account-number", help="A UK account number (with --sort-code).")
@click.option("--holder", help="The account holder's name [default: the pledge's name].")
@pass_app
def set_account(
    app: App,
    pledge_id: int,
    iban: str | None,
    bic: str | None,
    sort_code: str | None,
    account_number: str | None,
    holder: str | None,
) -> None:
    """Record the account a bank payer gave for their refund (personal data: kept out of
    the journal, erased by `members forget`)."""
    from fundraiser import accounts, pledges

    if holder is None:
        with app.ledger.read() as conn:
            holder = pledges.get(conn, pledge_id).name
    try:
        account = accounts.make(
            holder,
            iban_text=iban,
            bic_text=bic,
            sort_code_text=sort_code,
            number_text=account_number,
        )
    except accounts.BadAccount as exc:
        fail(str(exc))
    replaced = remainders.set_account(app.ledger, pledge_id, account, now=app.stored_now())
    click.echo(
        f"{'Replaced' if replaced else 'Recorded'} the refund account of pledge {pledge_id}: "
        f"{account.describe()}."
    )


def register(main: click.Group) -> None:
    main.add_command(refunds)
