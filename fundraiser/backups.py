"""`fundraiser backup`: a consistent copy of a SQLite ledger, kept beside it.

SQLite's online backup API copies the database page by page while the
pledge service goes on writing, and the copy is whole as of one moment. The
copy goes to var/backups/ beside campaign.toml (where `fundraiser preflight`
looks for one from the last day), readable by its owner only, under a name
that sorts by time. A PostgreSQL ledger is backed up with pg_dump into the
same folder; restoring is left to sqlite3 or pg_restore for now.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from fundraiser.errors import FundraiserError, UserInputError
from fundraiser.ledger.engine import sqlite_path

#: Beside campaign.toml, like the ledger itself (var/ledger.sqlite).
BACKUPS = Path("var") / "backups"


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int


def backup(database_url: str, folder: Path, now: datetime) -> Backup:
    """Copy the ledger to FOLDER/ledger-<UTC time>.sqlite; check the copy before keeping it."""
    source = sqlite_path(database_url)
    if source is None:
        raise UserInputError(
            "fundraiser backup copies SQLite ledgers; for PostgreSQL run pg_dump into "
            f"{folder}, e.g. pg_dump --format=custom --file {folder}/ledger-$(date -u "
            '+%Y%m%dT%H%M%SZ).dump "$DATABASE_URL"'
        )
    if not source.is_file():
        raise UserInputError(f"there is no ledger at {source}: nothing to back up yet")
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot make {folder}: {exc.strerror}") from None
    target = _free_name(folder, f"ledger-{now:%Y%m%dT%H%M%SZ}")
    part = folder / f".{target.name}.part"
    # Made private before a byte is written: it holds the share register.
    os.close(os.open(part, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
    try:
        _copy(source, part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return Backup(target, target.stat().st_size)


def _free_name(folder: Path, stem: str) -> Path:
    target, n = folder / f"{stem}.sqlite", 1
    while target.exists():
        target, n = folder / f"{stem}-{n}.sqlite", n + 1
    return target


def _copy(source: Path, target: Path) -> None:
    try:
        with (
            sqlite3.connect(f"file:{source}?mode=ro", uri=True) as reading,
            sqlite3.connect(target) as writing,
        ):
            reading.backup(writing)
            (verdict,) = writing.execute("PRAGMA integrity_check").fetchone()
        reading.close()
        writing.close()
    except sqlite3.Error as exc:
        raise FundraiserError(f"cannot back up {source}: {exc}") from None
    if verdict != "ok":
        raise FundraiserError(f"the copy of {source} does not check out: {verdict}")
