"""The tables against their replay: which rows differ, and how, named without a
person's details.

Both sides sit in one SQLite database: the replay's tables, and the ledger's
copied beside them with their personal columns as joined fingerprints
(`fp_row`). SQL finds the rows that differ (EXCEPT, both ways); only those are
read into Python to name their columns. ledger/replay.py makes both sides.
A PostgreSQL ledger's rows are compared with the replay's in Python instead,
both read in key order (`compare_rows`), and named the same way.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser.ledger.changes import Fingerprinter


@dataclass(frozen=True)
class Difference:
    table: str
    row: str  # its key, e.g. "id=5"
    column: str  # "(row)" when the whole row is missing or extra
    journal: Any  # what replaying the journal gives
    found: Any  # what the table holds

    def describe(self) -> str:
        if self.column == "(row)":
            return f"{self.table} {self.row}: {self.journal}; the table {self.found}"
        return (
            f"{self.table} {self.row} {self.column}: the journal says {self.journal!r}, "
            f"the table says {self.found!r}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "table": self.table,
            "row": self.row,
            "column": self.column,
            "journal": self.journal,
            "table_value": self.found,
        }


@dataclass
class ReplayReport:
    first: int = 0  # the first entry replayed (0: none)
    last: int = 0
    changes: int = 0
    differences: list[Difference] = field(default_factory=list)
    more: int = 0  # differences found beyond those kept

    @property
    def ok(self) -> bool:
        return not self.differences and not self.more

    def note(self, difference: Difference, keep: int) -> None:
        if len(self.differences) < keep:
            self.differences.append(difference)
        else:
            self.more += 1


def _personal(table: sa.Table) -> list[sa.Column[Any]]:
    return [c for c in table.columns if c.info.get("personal")]


def plain_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """The compared columns that are not personal (bookkeeping is not compared)."""
    return [
        c for c in table.columns if not c.info.get("operational") and not c.info.get("personal")
    ]


def fingerprinted_sql(table: sa.Table, name: str, *, source: str = "live") -> list[str]:
    """SQL making `name`: the ledger's table (schema `source`) as the replay holds it,
    with a unique key on the table's own key (the comparison looks rows up by it).

    Its personal columns become one text, their fingerprints joined (`fp_row`:
    one call from SQL per row, not per value), compared with the replay's joined
    alike. A table keyed by one integer gets it as its rowid and is filled in
    that order: each row goes in at the end, and no index is sorted afterwards.
    """
    plain = [c.name for c in plain_columns(table)]
    exprs = list(plain)
    personal = _personal(table)
    if personal:
        exprs.append(f"fp_row({', '.join(c.name for c in personal)}) AS personal")
    keys = [c.name for c in table.primary_key.columns]
    key = table.primary_key.columns[keys[0]]
    if len(keys) == 1 and type(key.type) is sa.Integer and keys[0] in plain:
        # The ledger's own rowid key (INTEGER exactly); no declared types for the rest:
        # the values keep the types the ledger's table gave them.
        columns = [f"{c} INTEGER PRIMARY KEY" if c == keys[0] else c for c in plain]
        if personal:
            columns.append("personal")
        return [
            f"CREATE TABLE {name} ({', '.join(columns)})",
            f"INSERT INTO {name} SELECT {', '.join(exprs)} FROM {source}.{table.name} "
            f"ORDER BY {keys[0]}",
        ]
    schema_name, _, bare = name.rpartition(".")
    index = f"{schema_name}.{bare}_key" if schema_name else f"{bare}_key"
    keyed = f"CREATE UNIQUE INDEX {index} ON {bare} ({', '.join(keys)})"
    return [f"CREATE TABLE {name} AS SELECT {', '.join(exprs)} FROM {source}.{table.name}", keyed]


def _same(column: sa.Column[Any], ours: str, theirs: str) -> str:
    """SQL that is true when the two sides hold the same for this column."""
    a, b = f"{ours}.{column.name}", f"{theirs}.{column.name}"
    if column.info.get("sent_only"):  # of the mail queue's states only "sent" is journalled
        return f"({a} = 'sent') IS ({b} = 'sent')"
    return f"{a} IS {b}"


def _joined_personal(table: sa.Table, side: str) -> str:
    """The replay's personal fingerprints joined as fp_row joins the ledger's."""
    return " || char(31) || ".join(f"COALESCE({side}.{c.name}, '')" for c in _personal(table))


def compare_table(
    scratch: Connection,
    table: sa.Table,
    theirs: str,
    report: ReplayReport,
    keep: int,
) -> None:
    """One table against its replay: SQL finds the rows that differ, Python names how.

    `theirs` is the ledger's table as `fingerprinted_sql` made it: the differences
    are named from it alone (a copy of the ledger's whole rows is not needed).
    """
    keys = [c.name for c in table.primary_key.columns]
    plain = plain_columns(table)
    joined = " AND ".join(f"m.{k} = l.{k}" for k in keys)
    unequal = [f"NOT ({_same(c, 'm', 'l')})" for c in plain]
    if _personal(table):
        unequal.append(f"NOT ({_joined_personal(table, 'm')} IS l.personal)")
    differing = scratch.exec_driver_sql(
        f"SELECT {', '.join('l.' + k for k in keys)} FROM {theirs} AS l "
        f"LEFT JOIN main.{table.name} AS m ON {joined} "
        f"WHERE m.{keys[0]} IS NULL OR {' OR '.join(unequal)} "
        f"UNION SELECT {', '.join('m.' + k for k in keys)} FROM main.{table.name} AS m "
        f"WHERE NOT EXISTS (SELECT 1 FROM {theirs} AS l WHERE {joined}) "
        f"ORDER BY {', '.join(str(n + 1) for n in range(len(keys)))}"
    ).all()
    compared = [c for c in table.columns if not c.info.get("operational")]
    personal = _personal(table)
    names = ", ".join(c.name for c in compared)
    # The ledger's side as `theirs` holds it: the plain values, then the personal
    # ones' fingerprints joined (split here; "" was a NULL).
    held = [c.name for c in plain] + (["personal"] if personal else [])
    where = " AND ".join(f"{k} = ?" for k in keys)
    for key in differing:
        if len(report.differences) >= keep:
            report.more += 1
            continue
        label = ",".join(f"{k}={v}" for k, v in zip(keys, key, strict=True))
        made = scratch.exec_driver_sql(
            f"SELECT {names} FROM main.{table.name} WHERE {where}", tuple(key)
        ).first()
        kept = scratch.exec_driver_sql(
            f"SELECT {', '.join(held)} FROM {theirs} WHERE {where}", tuple(key)
        ).first()
        if made is None:
            report.differences.append(
                Difference(table.name, label, "(row)", "has no such row", "has it")
            )
            continue
        if kept is None:
            report.differences.append(
                Difference(table.name, label, "(row)", "has this row", "does not")
            )
            continue
        found = dict(zip(held, kept, strict=True))
        if personal:
            prints = str(found.pop("personal")).split("\x1f")
            found.update((c.name, fp or None) for c, fp in zip(personal, prints, strict=True))
        for index, column in enumerate(compared):
            a, b = made[index], found[column.name]
            if column.info.get("sent_only"):
                a, b = _sent(a), _sent(b)
            if column.info.get("personal"):
                if a != b:
                    report.differences.append(
                        Difference(
                            table.name,
                            label,
                            column.name,
                            "(personal: fingerprint differs)",
                            "(personal)",
                        )
                    )
            elif a != b:
                report.differences.append(Difference(table.name, label, column.name, a, b))


def row_fingerprints(fingerprint: Any) -> Any:
    """fp_row(...): a row's personal values' fingerprints, joined by U+001F ("" for NULL).

    Called from SQL once per row of every proved table: the fingerprinter's hash
    is inlined here, because this is the verify's hot loop. Nothing is remembered:
    a keyed BLAKE2b of a short text costs about what looking it up in a dictionary
    does, and remembering a bounded number of them (half of 300,000 pledges'
    1.7 million values) cost 100 MB and made the copying slower than linear.
    """
    if not isinstance(fingerprint, Fingerprinter):
        return lambda *values: "\x1f".join("" if v is None else fingerprint(v) for v in values)
    copy = fingerprint.keyed_copy

    def fp_row(*values: Any) -> str:
        out = []
        for value in values:
            if value is None:
                out.append("")
                continue
            state = copy()
            state.update((value if type(value) is str else str(value)).encode())
            out.append("fp:" + state.hexdigest())
        return "\x1f".join(out)

    return fp_row


def fingerprinter(salt: Any) -> Any:
    """This ledger's fingerprints; without a salt, a mark that matches no journal."""
    if not salt:
        return lambda value: None if value is None else "(no salt)"
    return Fingerprinter(str(salt))


def _sent(status: Any) -> str:
    return "sent" if status == "sent" else "not sent"


# The comparison of two ordered streams of rows, for a ledger whose tables are not
# in SQLite (PostgreSQL): its rows are fingerprinted as they come off the server
# and set beside the replay's, read in the same order, in Python. Loading them into
# SQLite first, only to compare them there, cost more than the rest of verify's
# copying (the inserts alone, 2.4 s of CPU at 100,000 pledges).


def compared_columns(table: sa.Table) -> list[sa.Column[Any]]:
    """The columns both sides are read with, in this order: plain, then personal."""
    return [*plain_columns(table), *_personal(table)]


def ordered_select(table: sa.Table, source: str, *, postgresql: bool = False) -> str:
    """SELECT of the compared columns of `source`, in the order of the table's key as
    SQLite orders it (byte order for a text key: COLLATE "C" on PostgreSQL)."""
    names = ", ".join(c.name for c in compared_columns(table))
    order = ", ".join(
        f'{c.name} COLLATE "C"' if postgresql and isinstance(c.type, sa.Text) else c.name
        for c in table.primary_key.columns
    )
    return f"SELECT {names} FROM {source} ORDER BY {order}"


def fingerprinted_rows(table: sa.Table, fingerprint: Any) -> Any:
    """A function turning rows read by ordered_select into rows as the replay holds
    them: each personal value replaced by its fingerprint (None stays None)."""
    cut = len(plain_columns(table))
    if not _personal(table):
        return lambda rows: rows
    if isinstance(fingerprint, Fingerprinter):
        copy = fingerprint.keyed_copy

        def fast(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
            # The fingerprinter's hash inlined, as in row_fingerprints: the hot loop.
            out = []
            for row in rows:
                values: list[str | None] = []
                for value in row[cut:]:
                    if value is None:
                        values.append(None)
                        continue
                    state = copy()
                    state.update((value if type(value) is str else str(value)).encode())
                    values.append("fp:" + state.hexdigest())
                out.append(row[:cut] + tuple(values))
            return out

        return fast

    def unsalted(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [row[:cut] + tuple(fingerprint(v) for v in row[cut:]) for row in rows]

    return unsalted


def _ranked(value: Any) -> tuple[int, Any]:
    """SQLite's order across types (NULL, numbers, text, blobs), for keys of mixed type."""
    if value is None:
        return (0, 0)
    if isinstance(value, int | float):
        return (1, value)
    if isinstance(value, str):
        return (2, value)
    return (3, bytes(value))


def _before(a: Any, b: Any) -> bool:
    """Whether key `a` comes before key `b` in SQLite's order."""
    try:
        return bool(a < b)
    except TypeError:  # a key of another type than its column's (a tampered journal)
        if isinstance(a, tuple):
            return [_ranked(v) for v in a] < [_ranked(v) for v in b]
        return _ranked(a) < _ranked(b)


def compare_rows(
    table: sa.Table,
    made: Iterator[Sequence[Any]],
    held: Iterator[Sequence[Any]],
    keep: int,
) -> tuple[list[Difference], int]:
    """The replay's rows (`made`) against the ledger's (`held`, fingerprinted), both
    read as ordered_select reads them: the differences (up to `keep`, by key) and
    how many rows more differ. Names them as compare_table does."""
    columns = compared_columns(table)
    names = [c.name for c in table.primary_key.columns]
    at = [columns.index(table.c[k]) for k in names]
    one = at[0] if len(at) == 1 else None
    sent = [n for n, c in enumerate(columns) if c.info.get("sent_only")]
    order = table.columns.keys()  # differences named in the table's order of columns
    found: list[Difference] = []
    more = 0

    def key(row: Sequence[Any]) -> Any:
        return row[one] if one is not None else tuple(row[n] for n in at)

    def note(row: Sequence[Any], column: str, journal: Any, table_value: Any) -> None:
        label = ",".join(f"{k}={row[n]}" for k, n in zip(names, at, strict=True))
        found.append(Difference(table.name, label, column, journal, table_value))

    m = next(made, None)
    h = next(held, None)
    while m is not None or h is not None:
        if m is not None and h is not None and m == h:  # nearly every row: one C comparison
            m, h = next(made, None), next(held, None)
            continue
        if h is None or (m is not None and _before(key(m), key(h))):
            assert m is not None
            if len(found) >= keep:
                more += 1
            else:
                note(m, "(row)", "has this row", "does not")
            m = next(made, None)
            continue
        if m is None or _before(key(h), key(m)):
            if len(found) >= keep:
                more += 1
            else:
                note(h, "(row)", "has no such row", "has it")
            h = next(held, None)
            continue
        differing = [
            n
            for n, column in enumerate(columns)
            if (_sent(m[n]) != _sent(h[n]) if n in sent else m[n] != h[n])
        ]
        if differing:
            if len(found) >= keep:
                more += 1
            else:
                for n in sorted(differing, key=lambda n: order.index(columns[n].name)):
                    column = columns[n]
                    if column.info.get("personal"):
                        note(m, column.name, "(personal: fingerprint differs)", "(personal)")
                    else:
                        value = h[n]
                        # as SQLite holds it: what the copy into SQLite used to name
                        note(m, column.name, m[n], int(value) if type(value) is bool else value)
        m, h = next(made, None), next(held, None)
    return found, more
