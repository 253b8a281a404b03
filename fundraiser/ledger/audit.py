"""`fundraiser ledger verify`: the chain, a published head, and the tables, in one report.

Three checks, each catching what the others cannot:
- the chain: every entry hashes the one before it, so an edited or removed
  entry breaks it;
- a head published earlier (the transparency page carries it): the chain of a
  copy cut short, or rewritten from some entry on, is intact in itself, but
  its entry N no longer has the published hash;
- the tables: replaying the journal into empty tables gives back every table
  it proves, so an edited amount, a deleted member or an inserted register
  entry shows, named by table, row and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from fundraiser.ledger import compare, journal, replay, schema
from fundraiser.ledger.engine import Ledger


@dataclass
class Verdict:
    chain: journal.ChainReport
    tables: compare.ReplayReport | None
    head_problem: str | None = None
    head_checked: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        tables_ok = self.tables is None or self.tables.ok
        return self.chain.ok and tables_ok and self.head_problem is None

    def lines(self) -> list[str]:
        tables = self.tables
        if self.ok and tables is not None:
            summary = (
                f"OK: {self.chain.entries} journal entries, head {self.chain.head}; every table "
                f"equals the replay of entries {tables.first}-{tables.last} "
                f"({tables.changes} changes)"
                + ("; the published head matches." if self.head_checked else ".")
            )
            return [summary, *self.notes]
        chain = self.chain
        if chain.ok:
            out = [f"Chain: OK, {chain.entries} journal entries, head {chain.head}."]
        else:
            intact = chain.broken_at - 1 if chain.broken_at else 0
            out = [
                f"Chain: BROKEN at entry {chain.broken_at}: {chain.reason}. It is intact up "
                f"to entry {intact} (hash {chain.head})."
            ]
        if self.head_problem:
            out.append(f"Published head: DOES NOT MATCH: {self.head_problem}.")
        elif self.head_checked:
            out.append("Published head: matches.")
        out.extend(self.notes)
        tables = self.tables
        if tables is not None:
            if tables.ok:
                out.append(
                    f"Tables: OK, each equal to the replay of entries {tables.first}-{tables.last} "
                    f"({tables.changes} changes)."
                )
            else:
                count = len(tables.differences) + tables.more
                out.append(f"Tables: {count} difference(s) from the replay of the journal:")
                out.extend(f"  {d.describe()}" for d in tables.differences)
                if tables.more:
                    out.append(f"  ... and {tables.more} more")
        return out

    def as_json(self) -> dict[str, Any]:
        chain = self.chain
        tables = self.tables
        return {
            "ok": self.ok,
            "entries": chain.entries,
            "head": chain.head,
            "broken_at": chain.broken_at,
            "reason": chain.reason or None,
            "published_head": (
                {"ok": self.head_problem is None, "problem": self.head_problem}
                if self.head_checked
                else None
            ),
            "tables": None
            if tables is None
            else {
                "ok": tables.ok,
                "replayed": [tables.first, tables.last],
                "changes": tables.changes,
                "differences": [d.as_json() for d in tables.differences],
                "more": tables.more,
            },
            "notes": self.notes,
        }


def _check_head(ledger: Ledger, head_hash: str, head_at: int) -> str | None:
    with ledger.read() as conn:
        found = conn.execute(
            sa.select(schema.journal.c.hash).where(schema.journal.c.seq == head_at)
        ).scalar()
        last = conn.execute(sa.select(sa.func.max(schema.journal.c.seq))).scalar() or 0
    if found is None:
        return (
            f"the journal has {last} entries, but the head published at entry {head_at} "
            "names a longer one: it was cut short"
        )
    if found != head_hash.strip().lower():
        return (
            f"entry {head_at} hashes to {found}, not the published {head_hash.strip()}: "
            f"the journal was rewritten at or before entry {head_at}"
        )
    return None


def verify(
    ledger: Ledger, *, head_hash: str | None = None, head_at: int | None = None, keep: int = 200
) -> Verdict:
    """Check the chain, the published head (if given), and replay the tables."""
    # The chain is checked in the replay's own read of the journal: once, in order,
    # in the snapshot the tables are read in.
    chain = journal.ChainCheck()
    tables = replay.prove(ledger, keep=keep, chain=chain)
    verdict = Verdict(chain.report(), tables)
    if head_hash is not None and head_at is not None:
        verdict.head_problem = _check_head(ledger, head_hash, head_at)
        verdict.head_checked = True
    if tables.first > 1:
        verdict.notes.append(
            f"Entries before {tables.first} were written by an older version that "
            "journalled summaries only: the tables are proved from the snapshot taken then."
        )
    return verdict
