"""The bound beside each bench_ledger step: the same rows, through SQLite and the
interpreter alone, with nothing of ours in between.

Each bound runs as a step does, in a fresh `python` process (its start-up
counts), on the same machine a moment after the step, with the ledger's own
settings (write-ahead log, synchronous = NORMAL):

- CSV import: parse the file with csv.reader and insert every row as it
  stands into a table with no index, key or check, in one transaction.
- allocate: read every paid pledge's id, person and amount, and group them by
  person (the least a plan needs).
- issue: on a copy of the ledger as the issue found it, stamp every paid
  pledge, and insert as many members, register entries, allotments,
  remainders and welcome mails as the issue wrote, into tables with no index,
  key or check, in one transaction.
- register export: read the members and their register entries, write them
  out with csv.writer.
- ledger verify: read every journal entry and hash it, and read every row of
  the tables the journal proves, once.

What the kit does beyond a bound (checks, keys, indexes, the journal's proof,
the register's rules) is the distance between the two figures.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

_SETUP = """
import sqlite3, sys
def open_db(path):
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    return conn
"""

_IMPORT = """
import csv
db = open_db(sys.argv[2])
with open(sys.argv[1], newline="", encoding="utf-8") as source:
    rows = csv.reader(source)
    width = len(next(rows))
    db.execute(f"CREATE TABLE raw ({', '.join(f'c{i}' for i in range(width))})")
    db.execute("BEGIN")
    db.executemany(f"INSERT INTO raw VALUES ({', '.join('?' * width)})", rows)
    db.execute("COMMIT")
"""

_ALLOCATE = """
db = open_db(sys.argv[1])
people = {}
for pid, key, amount in db.execute(
    "SELECT id, person_key, paid_amount FROM pledges WHERE status = 'paid'"
):
    people.setdefault(key, []).append((pid, amount))
"""

_ISSUE = """
import json
db = open_db(sys.argv[1])
counts = json.loads(sys.argv[2])
shapes = {"members": 5, "entries": 5, "allotments": 3, "remainders": 4, "outbox": 9}
db.execute("BEGIN")
db.execute("UPDATE pledges SET allotted_at = '2026-12-01T00:00:00+00:00' WHERE status = 'paid'")
for table, width in shapes.items():
    db.execute(f"CREATE TABLE raw_{table} ({', '.join(f'c{i}' for i in range(width))})")
    row = tuple(range(width - 1)) + ("backer@example.org",)
    db.executemany(
        f"INSERT INTO raw_{table} VALUES ({', '.join('?' * width)})",
        (row for _ in range(counts[table])),
    )
db.execute("COMMIT")
"""

_EXPORT = """
import csv
db = open_db(sys.argv[1])
with open(sys.argv[2], "w", newline="", encoding="utf-8") as out:
    writer = csv.writer(out)
    writer.writerows(db.execute("SELECT * FROM members"))
    writer.writerows(db.execute("SELECT * FROM register_entries"))
"""

_VERIFY = """
import hashlib
db = open_db(sys.argv[1])
for (data,) in db.execute("SELECT data FROM journal ORDER BY seq"):
    hashlib.sha256(data.encode()).digest()
for table in ("pledges", "members", "register_entries", "allotments", "remainders", "outbox"):
    for _ in db.execute(f"SELECT * FROM {table}"):
        pass
"""


def _timed(script: str, *argv: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", _SETUP + script, *argv], check=True)
    return time.perf_counter() - start


def _count(ledger: Path, table: str) -> int:
    import sqlite3

    with sqlite3.connect(f"file:{ledger}?mode=ro", uri=True) as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def measure(
    folder: Path, source: Path, ledger: Path, before_issue: Path, issued: dict[str, int]
) -> dict[str, float]:
    """Seconds for each step's bound (SQLite); `before_issue` is a copy of the ledger
    as the issue found it, which this uses up."""
    scratch = folder / "bounds"
    scratch.mkdir(exist_ok=True)
    counts = {
        "members": issued["members_admitted"],
        "entries": issued["entries"],
        "allotments": _count(ledger, "allotments"),
        "remainders": issued["remainders"],
        "outbox": issued["members_admitted"],
    }
    found = {
        "CSV import": _timed(_IMPORT, str(source), str(scratch / "import.sqlite")),
        "allocate": _timed(_ALLOCATE, str(before_issue)),
        "issue": _timed(_ISSUE, str(before_issue), json.dumps(counts)),
        "register export": _timed(_EXPORT, str(ledger), str(scratch / "register.csv")),
        "ledger verify": _timed(_VERIFY, str(ledger)),
    }
    shutil.rmtree(scratch, ignore_errors=True)
    return found
