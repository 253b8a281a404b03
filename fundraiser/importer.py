"""Offline pledges from a CSV file: all rows or none.

Columns: name,email,amount,round,status,reference,address. Amounts are major
units ("250.00"); status is `pledged` or `paid`. Every bad row is listed with
its line number, and then nothing is kept: the rows are written a batch at a
time as they are checked, in one transaction, which a bad row takes back.
Each row carries an import key, so importing the same file again (after a
crash, say) adds nothing twice.
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import acknowledge, outbox
from fundraiser.config import Campaign
from fundraiser.errors import ImportRejected, MoneyError, Problem
from fundraiser.ledger import Ledger, bulk, pgbulk, schema
from fundraiser.money import Money, parse
from fundraiser.people import validate_person
from fundraiser.pledges import NewPledge, Source, Status, create_many

COLUMNS = ("name", "email", "amount", "round", "status", "reference", "address")
STATUSES = {"pledged": Status.PENDING, "paid": Status.PAID}


@dataclass(frozen=True)
class ImportPlan:
    new: int  # rows that are new pledges
    total: int  # their amounts, in minor units
    skipped: int  # rows already in the ledger from an earlier import


#: Pledges written at a time: a file of a million rows is never held whole in
#: memory, and a batch is still a few of the ledger's parts (ledger/tx.PART),
#: whose journal texts a child process makes while the next batch is checked
#: (Tx.texts_at_end): enough personal values for the child to pay (tx._ASIDE_FROM).
BATCH = 50_000


def check_offline(
    campaign: Campaign,
    *,
    name: str,
    email: str,
    address: str,
    amount: str,
    round_id: str,
    status: str,
    where: str = "",
    source: Source = Source.OFFLINE,
    reference: str | None = None,
    request_key: str | None = None,
    held_shares: int | None = None,
) -> tuple[NewPledge | None, list[Problem]]:
    """Validate one offline pledge (from the CLI or a CSV row).

    `held_shares`: what the person holds now when they are a member. A member
    tops up by any whole share up to the cap; only a newcomer needs the minimum.
    """
    problems = validate_person(name, email, address, where)
    prefix = f"{where} " if where else ""
    money: Money | None = None
    try:
        money = parse(amount, campaign.currency)
    except MoneyError as exc:
        problems.append(Problem(f"{prefix}amount", str(exc)))
    terms = campaign.shares
    minimum = terms.price.amount * terms.min_shares
    if held_shares:
        minimum = terms.price.amount  # a top-up: one more share is enough
        if held_shares >= terms.max_shares:
            problems.append(
                Problem(
                    f"{prefix}email",
                    f"this member already holds {held_shares} shares, the most one member may hold",
                    "record no more shares for them",
                )
            )
    if money is not None and money.amount < minimum and held_shares:
        problems.append(
            Problem(
                f"{prefix}amount",
                f"{money.format()} is less than one share ({terms.price.format()})",
                "a member tops up by whole shares: pay at least one share",
            )
        )
    elif money is not None and money.amount < minimum:
        floor = Money(minimum, campaign.currency)
        problems.append(
            Problem(
                f"{prefix}amount",
                f"{money.format()} is below the minimum holding of {floor.format()}",
                "pledge at least the minimum holding",
            )
        )
    round_id = round_id.strip()
    if round_id not in _round_ids(campaign):
        problems.append(
            Problem(
                f"{prefix}round",
                f"{round_id!r} is not a round of this campaign",
                f"use one of: {', '.join(_round_ids(campaign))}",
            )
        )
    state = STATUSES.get(status.strip().lower())
    if state is None:
        problems.append(
            Problem(
                f"{prefix}status",
                f"{status!r} is not pledged or paid",
                "write pledged (promised) or paid (money received)",
            )
        )
    if problems or money is None or state is None:
        return None, problems
    pledge = NewPledge(
        name=name,
        email=email,
        address=address,
        amount=money,
        round=round_id,
        status=state,
        source=source,
        reference=reference,
        request_key=request_key,
    )
    return pledge, []


def _round_ids(campaign: Campaign) -> tuple[str, ...]:
    return tuple(r.id for r in campaign.rounds)


def _key(row: dict[str, str], seen: Counter[bytes]) -> str:
    """The import key: the bank reference, or the row's content and occurrence."""
    reference = row["reference"].strip()
    if reference:
        return "ref:" + reference
    signature = "\x1f".join(row[c].strip() for c in COLUMNS)
    # Two identical rows in one file are two pledges: counted by the row's digest,
    # not its text, so a big file without references is not held whole.
    counted = hashlib.sha256(signature.encode()).digest()
    seen[counted] += 1
    material = f"{signature}\x1f{seen[counted]}"
    return "row:" + hashlib.sha256(material.encode()).hexdigest()[:40]


def read_rows(lines: Iterable[str], source: str) -> Iterator[tuple[int, dict[str, str]]]:
    """Rows with their line numbers, read as they are asked for; ImportRejected for a
    bad header (at once). `lines`: the file's lines, as text."""
    body = csv.reader(lines)
    header = [h.strip().lower() for h in next(body, [])]
    if not header:
        raise ImportRejected(
            f"{source} is empty",
            [
                Problem(
                    f"{source}: line 1", "no header", f"start with the header {','.join(COLUMNS)}"
                )
            ],
        )
    if len(header) == 1 and any(d in header[0] for d in ";\t|"):
        raise ImportRejected(
            f"{source} is not comma-separated",
            [
                Problem(
                    f"{source}: line 1",
                    "the columns are not separated by commas",
                    "save the file as CSV with commas (,) between columns",
                )
            ],
        )
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise ImportRejected(
            f"{source} lacks columns",
            [
                Problem(
                    f"{source}: line 1",
                    f"missing column(s): {', '.join(missing)}",
                    f"the header must be {','.join(COLUMNS)}",
                )
            ],
        )
    index = [(column, header.index(column)) for column in COLUMNS]
    return _records(body, index, len(header))


def _records(
    body: Any, index: list[tuple[str, int]], width: int
) -> Iterator[tuple[int, dict[str, str]]]:
    # csv.reader with column positions: DictReader costs twice as much per row.
    # One row at a time: a file of a million rows never sits whole in memory.
    for record in body:
        if not any(record):
            continue  # blank lines, as DictReader skips them
        clean = {column: (record[i] if i < len(record) else "") for column, i in index}
        if len(record) > width:
            clean["__extra__"] = ",".join(record[width:])
        yield body.line_num, clean


def plan_import(conn: Connection, campaign: Campaign, path: Path) -> ImportPlan:
    """Check every row and write nothing; ImportRejected listing every bad row."""
    return _import(conn, campaign, path, None)


def _import(
    conn: Connection,
    campaign: Campaign,
    path: Path,
    write: Callable[[list[NewPledge]], None] | None,
) -> ImportPlan:
    """Every row checked as it is read; the new pledges handed to `write` a batch at
    a time while the file has shown no problem. ImportRejected at the end lists
    every problem: the caller's transaction then takes back what was written."""
    source = path.name
    known = _known_keys(conn)
    problems: list[Problem] = []
    batch: list[NewPledge] = []
    new = total = skipped = 0
    for key, pledge in _checked_rows(campaign, read_rows(_lines(path), source), source, problems):
        if key in known:
            skipped += 1
            continue
        new += 1
        total += pledge.amount.amount
        if problems:  # nothing more is written: the whole file will be refused
            batch.clear()
            continue
        batch.append(pledge)
        if len(batch) == BATCH and write is not None:
            write(batch)
            batch = []
    if problems:
        raise ImportRejected(
            f"{source}: {len(problems)} {'problem' if len(problems) == 1 else 'problems'}; "
            "nothing was imported",
            problems,
        )
    if not new and not skipped:
        raise ImportRejected(
            f"{source} has no rows",
            [Problem(source, "has a header but no rows", "add one row per pledge")],
        )
    if batch and write is not None:
        write(batch)
    return ImportPlan(new=new, total=total, skipped=skipped)


def _lines(path: Path) -> Iterator[str]:
    """The file's lines as they are read; a missing or non-UTF-8 file refused."""
    try:
        # Universal newlines, as the whole file read as text had them.
        with path.open(encoding="utf-8-sig") as handle:
            yield from handle
    except FileNotFoundError:
        raise ImportRejected(
            f"{path} not found", [Problem(str(path), "does not exist", "check the path")]
        ) from None
    except UnicodeDecodeError:
        raise ImportRejected(
            f"{path} is not UTF-8 text",
            [Problem(str(path), "is not UTF-8 text", "export the sheet as CSV UTF-8")],
        ) from None


def _checked_rows(
    campaign: Campaign,
    rows: Iterator[tuple[int, dict[str, str]]],
    source: str,
    problems: list[Problem],
) -> Iterator[tuple[str, NewPledge]]:
    """Each row checked as it is read: the pledges to make, with their import keys;
    every problem, named by line, added to `problems`."""
    seen: Counter[bytes] = Counter()
    references: dict[str, int] = {}
    for line, row in rows:
        where = f"{source}: line {line}"
        if "__extra__" in row:
            problems.append(
                Problem(
                    where, "has more fields than the header", "quote values that contain commas"
                )
            )
            continue
        reference = row["reference"].strip()
        if reference and reference in references:
            problems.append(
                Problem(
                    f"{where} reference",
                    f"{reference!r} is also on line {references[reference]}",
                    "give each payment its own reference",
                )
            )
            continue
        if reference:
            references[reference] = line
        key = _key(row, seen)
        pledge, found = check_offline(
            campaign,
            name=row["name"],
            email=row["email"],
            address=row["address"],
            amount=row["amount"],
            round_id=row["round"],
            status=row["status"],
            where=where,
            source=Source.IMPORT,
            reference=reference or None,
            request_key=key,
        )
        problems.extend(found)
        if pledge is not None:
            yield key, pledge


def _known_keys(conn: Connection) -> set[str]:
    """The import keys the ledger holds already.

    One scan of the keyed pledges, not a query per few hundred keys: an
    import of 100,000 rows would otherwise make hundreds of round trips.
    """
    rows = bulk.each_row(
        conn,
        sa.select(schema.pledges.c.request_key).where(schema.pledges.c.request_key.is_not(None)),
    )
    return {key for (key,) in rows}


def import_file(
    ledger: Ledger,
    campaign: Campaign,
    path: Path,
    *,
    dry_run: bool = False,
    now: str | None = None,
    notify: bool = False,
) -> ImportPlan:
    """Check the whole file and write every new row, in one transaction: all or none.

    The rows are written a batch at a time as they are checked (BATCH); a bad
    row anywhere refuses the file and the transaction takes back what was
    written. With `notify`, each new pledge's "we have your pledge" mail is
    queued too.
    """
    with ledger.write(now, bulk_work=True) as tx:
        pgbulk.indexes_after(tx.conn)  # PostgreSQL: nothing here looks pledges up by them
        tx.texts_at_end()  # a batch's journal texts made while the next is checked

        def write(batch: list[NewPledge]) -> None:
            if notify:
                acknowledge.check_bank(campaign, batch)
            if not dry_run:
                ids = create_many(tx, batch)
                if notify:
                    outbox.queue_many(tx, acknowledge.rows(ids, batch, tx.now))

        return _import(tx.conn, campaign, path, write)
