"""fundraiser bank: statements in (camt.053, MT940, OFX, CSV), matched to pledges."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from fundraiser.bank.statement import FORMATS
from fundraiser.cli.app import App, fail, pass_app, plural

if TYPE_CHECKING:
    from fundraiser.bank import receipts


@click.group()
def bank() -> None:
    """Money by bank: import statements, match transfers to pledges."""


def _accepted(values: tuple[str, ...]) -> tuple[dict[str, int], bool]:
    found: dict[str, int] = {}
    suggested = False
    for value in values:
        if value.strip().lower() == "suggested":
            suggested = True
            continue
        bank_id, sep, pledge = value.rpartition("=")
        digits = pledge.strip().upper().removeprefix("PLEDGE").lstrip("-_ ")
        if not sep or not bank_id.strip() or not digits.isdigit():
            fail(
                f"--accept {value!r}: write TRANSACTION_ID=PLEDGE (e.g. --accept "
                "E2E-0042=17, with the id from the dry run's list), or --accept suggested"
            )
        found[bank_id.strip()] = int(digits)
    return found, suggested


@bank.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(FORMATS),
    help="The file's format [default: from its contents].",
)
@click.option("--encoding", help="The text encoding of an MT940 or CSV file [default: utf-8].")
@click.option("--dry-run", is_flag=True, help="Show what would be matched; change nothing.")
@click.option(
    "--accept",
    multiple=True,
    metavar="TRANSACTION_ID=PLEDGE|suggested",
    help="Apply an unmatched transfer to a pledge (repeatable); `suggested` applies every "
    "transfer that has exactly one suggestion.",
)
@click.option("--notify", is_flag=True, help="Queue each backer's 'payment received' mail.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--every-line",
    is_flag=True,
    help="With --json, list every line placed, transfers that paid their pledge exactly "
    "too [default: the lines to look at; the counts and sums are always whole].",
)
@pass_app
def import_(
    app: App,
    file: Path,
    fmt: str | None,
    encoding: str | None,
    dry_run: bool,
    accept: tuple[str, ...],
    notify: bool,
    as_json: bool,
    every_line: bool,
) -> None:
    """Match a bank statement's transfers to pledges (by PLEDGE-<id>) and record them once.

    Importing the same statement twice, or overlapping ones, pays nothing twice.
    Transfers without a usable reference are listed with suggestions; apply one
    with --accept. A transfer over what the pledge owes leaves a refund due; one
    under it leaves the pledge waiting for the balance.
    """
    from fundraiser.bankfiles import aside

    accepted, suggested = _accepted(accept)
    campaign = app.campaign
    # A big statement is read in a child process; the ledger's side (its
    # modules, imported only now, and the pledges) goes on meanwhile.
    with aside.reading(
        file,
        fmt,
        csv_settings=campaign.bank.csv if campaign.bank else None,
        currency=campaign.currency,
        encoding=encoding,
    ) as statement:
        from fundraiser.bank import posting

        report = posting.import_statement(
            app.ledger,
            statement,
            currency=campaign.currency,
            accept=accepted,
            accept_suggested=suggested,
            dry_run=dry_run,
            notify=notify,
            now=app.stored_now(),
        )
    from fundraiser.ledger.bulk import gc_paused

    with gc_paused():  # a big report is 100,000s of young objects and no cycles
        if as_json:
            app.print_json(report.as_json(every_line))
            return
        _show(app, report)


def _show(app: App, report: receipts.ImportReport) -> None:
    from rich.table import Table

    from fundraiser.money import Money

    s = report.statement
    cur = s.currency
    data = report.as_json()
    counts = data["counts"]
    verb = "Would record" if report.dry_run else "Recorded"
    app.out.print(
        f"{s.path} ({s.format}, {cur}): {plural(len(s.lines), 'booked line')}; "
        f"{report.already} imported before, {report.duplicates} repeated in the file, "
        f"{report.not_ours} other money out (not the ledger's)."
    )
    app.out.print(
        f"{verb}: {plural(counts['paid'], 'pledge')} paid, "
        f"{plural(counts['part'], 'part payment')}, "
        f"{counts['unwanted']} for pledges already settled or ended (to refund), "
        f"{plural(counts['refund'], 'refund')} seen paid out, {counts['unmatched']} unmatched."
    )
    app.out.print(
        f"Applied to pledges {Money(data['applied'], cur).format()}; "
        f"to refund {Money(data['to_refund'], cur).format()}."
    )
    shown = report.notable
    if shown:
        table = Table(
            "Transaction",
            "Where",
            "Date",
            "Amount",
            "Payer",
            "Reference",
            "Outcome",
            "Note / suggestions",
        )
        for p in shown[:200]:
            hints = "; ".join(f"pledge {x.pledge_id} ({x.why})" for x in p.suggestions)
            table.add_row(
                p.line.bank_id,
                p.line.where,
                p.line.booked_on,
                Money(p.line.amount, p.line.currency).format(),
                p.line.payer,
                p.line.text[:60],
                (p.outcome.value if p.outcome else "not recorded")
                + (f" → pledge {p.pledge_id}" if p.pledge_id else ""),
                "; ".join(x for x in (p.note, hints) if x),
            )
        app.out.print(table, markup=False)
        if len(shown) > 200:
            app.out.print(f"... and {len(shown) - 200} more: see --json")
    for note in s.notes[:20]:
        app.out.print(f"Note: {note}", markup=False)
    if report.dry_run:
        app.out.print("Dry run: nothing was changed.")
    elif report.queued_mail:
        app.out.print(f"{plural(report.queued_mail, 'receipt')} queued: `fundraiser mail send`.")
    if counts["unmatched"]:
        app.out.print(
            "Unmatched transfers wait: apply one with --accept TRANSACTION_ID=PLEDGE "
            "(or --accept suggested) on this statement, now or later."
        )


def register(main: click.Group) -> None:
    main.add_command(bank)
