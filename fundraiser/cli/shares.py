"""fundraiser shares: allocate (show the plan) and issue (apply it)."""

from __future__ import annotations

import json
import sys
from json.encoder import encode_basestring

import click
from sqlalchemy.engine import Connection

import fundraiser.issuing  # whole path: `register` is this module's command hook
from fundraiser import closing
from fundraiser.allocation import Allotment, Plan, RemainderReason
from fundraiser.cli.app import App, pass_app, plural, span
from fundraiser.errors import UserInputError
from fundraiser.money import Money

#: Why part of a payment is refunded, in the plan's "Why" column.
WHY = {
    RemainderReason.FRACTION: "less than a share",
    RemainderReason.CAP: "over the most one member may hold",
    RemainderReason.BELOW_MINIMUM: "below the least one member may hold",
    RemainderReason.SCALE_BACK: "offer scaled back",
}


@click.group()
def shares() -> None:
    """Turn paid pledges into founding-member shares."""


def _allotment_json(a: Allotment) -> dict[str, object]:
    return {
        "person": a.email,
        "name": a.name,
        "shares": a.shares,
        "existing_shares": a.existing_shares,
        "paid": a.paid.amount,
        "pledges": list(a.pledge_ids),
        "remainders": [
            {"pledge_id": r.pledge_id, "amount": r.amount.amount, "reason": r.reason}
            for r in a.remainders
        ],
    }


def _allotment_text(a: Allotment) -> str:
    """json.dumps(_allotment_json(a), ensure_ascii=False), byte for byte, in a third
    of the time: no dictionaries, and the encoder's own string escaping (in C).
    The plan is most of `shares allocate --json` at 100,000s of people."""
    remainders = ", ".join(
        [
            f'{{"pledge_id": {r.pledge_id}, "amount": {r.amount.amount}, '
            f'"reason": "{r.reason.value}"}}'
            for r in a.remainders
        ]
    )
    pledges = ", ".join(map(str, a.pledge_ids))
    return (
        f'{{"person": {encode_basestring(a.email)}, "name": {encode_basestring(a.name)}, '
        f'"shares": {a.shares}, "existing_shares": {a.existing_shares}, '
        f'"paid": {a.paid.amount}, "pledges": [{pledges}], "remainders": [{remainders}]}}'
    )


def _plan_head(plan: Plan) -> dict[str, object]:
    return {
        "currency": plan.currency,
        "price": plan.price.amount,
        "total_shares": plan.total_shares,
        "total_paid": plan.total_paid.amount,
        "total_remainders": plan.total_remainders.amount,
    }


def plan_json(plan: Plan) -> dict[str, object]:
    return {**_plan_head(plan), "allotments": [_allotment_json(a) for a in plan.allotments]}


#: Allotments encoded and written together: one write per thousand, not per person.
_BATCH = 1_000


def _print_json(
    app: App, conn: Connection, plan: Plan, why_not: str | None, *, dry_run: bool = False
) -> None:
    """Print a plan read in bulk work, while the collector still sleeps.

    The snapshot ends first, so a slow reader of the output (a pager, a pipe)
    holds up none of the ledger's writers. For a person at a terminal, the
    whole document, indented; for a script, the same JSON written a thousand
    allotments at a time, so 300,000 people's plan is never a second time in
    memory as dictionaries and again as one string.
    """
    conn.rollback()
    head: dict[str, object] = {"dry_run": True} if dry_run else {}
    head.update(_plan_head(plan))
    tail = {"can_issue": why_not is None, "why_not": why_not}
    if sys.stdout.isatty():
        every = [_allotment_json(a) for a in plan.allotments]
        app.print_json({**head, "allotments": every, **tail})
        return
    # The bytes json.dumps(whole document) would give: its default separators.
    encode = json.JSONEncoder(ensure_ascii=False).encode
    out = sys.stdout
    out.write(encode(head)[:-1] + ', "allotments": [')
    allotments = plan.allotments
    for start in range(0, len(allotments), _BATCH):
        part = ", ".join([_allotment_text(a) for a in allotments[start : start + _BATCH]])
        out.write(part if start == 0 else ", " + part)
    out.write("], " + encode(tail)[1:] + "\n")
    out.flush()


@shares.command()
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@click.option("--dry-run", is_flag=True, hidden=True, help="Allocate never writes; accepted.")
@pass_app
def allocate(app: App, as_json: bool, dry_run: bool) -> None:
    """Show the allotment plan for paid pledges not yet issued (writes nothing)."""
    campaign = app.campaign
    # Bulk work: a big campaign's plan and its JSON are 100,000s of small objects
    # and no cycles. As JSON, all are freed before the collector wakes.
    with app.ledger.read(bulk_work=True) as conn:
        why_not = closing.may_issue(conn, campaign, app.now())
        if as_json:
            _print_json(app, conn, fundraiser.issuing.make_plan(conn, campaign), why_not)
            return
        plan = fundraiser.issuing.make_plan(conn, campaign)
    from rich.table import Table  # only for a person's table: --json never loads rich

    table = Table("Order", "Name", "Paid", "Shares", "Refund", "Why", title="Allotment plan")
    for order, a in enumerate(plan.allotments, start=1):
        refund = Money(sum(r.amount.amount for r in a.remainders), plan.currency)
        reasons = ", ".join(sorted({WHY[r.reason] for r in a.remainders}))
        table.add_row(
            str(order),
            a.name,
            a.paid.format(),
            str(a.shares),
            refund.format() if refund.amount else "",
            reasons,
        )
    app.out.print(table)
    app.out.print(
        f"{plural(plan.total_shares, 'share')} at {plan.price.format()} for "
        f"{plural(len(plan.admitted), 'new member')}; {plan.total_remainders.format()} to refund."
    )
    if why_not is not None:
        app.out.print(f"Note: this plan cannot be issued yet: {why_not}.")


@shares.command()
@click.option("--dry-run", is_flag=True, help="Show what would be issued, write nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_app
def issue(app: App, dry_run: bool, as_json: bool) -> None:
    """Apply the plan in one transaction: members, register entries, certificates."""
    campaign = app.campaign
    if dry_run:
        with app.ledger.read(bulk_work=True) as conn:  # as in `shares allocate`
            why_not = closing.may_issue(conn, campaign, app.now())
            if why_not is not None:  # the dry run says what the issue would say
                raise UserInputError(f"shares cannot be issued: {why_not}")
            if as_json:
                _print_json(
                    app, conn, fundraiser.issuing.make_plan(conn, campaign), None, dry_run=True
                )
                return
            plan = fundraiser.issuing.make_plan(conn, campaign)
        click.echo(
            f"Dry run: would issue {plural(plan.total_shares, 'share')} to "
            f"{plural(sum(1 for a in plan.allotments if a.shares), 'member')} and list "
            f"{plan.total_remainders.format()} for refund. Nothing was written."
        )
        return
    result = fundraiser.issuing.issue(app.ledger, campaign, today=app.today(), now=app.stored_now())
    if as_json:
        app.print_json(
            {
                "members_admitted": result.members_admitted,
                "entries": result.entries,
                "shares": result.shares,
                "remainders": result.remainders,
                "refund_total": result.refund_total.amount,
                "first_member": result.first_member,
                "last_member": result.last_member,
            }
        )
    elif result.entries == 0 and result.remainders == 0:
        click.echo("Nothing to issue: every paid pledge is already in the register.")
    else:
        admitted = (
            f"admitted {plural(result.members_admitted, 'member')} "
            f"({span(result.first_member, result.last_member or result.first_member, 'number')})"
            if result.first_member
            else "no new members"
        )
        click.echo(
            f"Issued {plural(result.shares, 'share')} in "
            f"{plural(result.entries, 'register entry', 'register entries')}; {admitted}; "
            + (
                f"{result.refund_total.format()} to refund in "
                f"{plural(result.remainders, 'remainder')}."
                if result.remainders
                else "nothing to refund."
            )
        )


def register(main: click.Group) -> None:
    main.add_command(shares)
