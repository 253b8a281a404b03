"""`fundraiser backup` and `restore`: a consistent copy of the ledger, and its way back.

SQLite's online backup API copies the database page by page while the
pledge service goes on writing, and the copy is whole as of one moment; a
PostgreSQL ledger is copied with pg_dump (one snapshot, custom format). The
copy goes to var/backups/ beside campaign.toml (where `fundraiser preflight`
looks for one from the last day), readable by its owner only, under a name
that sorts by time.

A restore is refused unless the copy proves itself: its journal's chain holds
and replaying it gives back every table (`fundraiser ledger verify`). A copy
cut short, edited or from another ledger never replaces the register. The
ledger it replaces is kept beside it, never deleted.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fundraiser import redact
from fundraiser.errors import FundraiserError, UserInputError
from fundraiser.ledger.engine import sqlite_path

#: Beside campaign.toml, like the ledger itself (var/ledger.sqlite).
BACKUPS = Path("var") / "backups"


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int


def backup(database_url: str, folder: Path, now: datetime) -> Backup:
    """Copy the ledger to FOLDER/ledger-<UTC time>.sqlite (.dump for PostgreSQL)."""
    source = sqlite_path(database_url)
    if source is None:
        return _pg_backup(database_url, folder, now)
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


def _free_name(folder: Path, stem: str, suffix: str = ".sqlite") -> Path:
    target, n = folder / f"{stem}{suffix}", 1
    while target.exists():
        target, n = folder / f"{stem}-{n}{suffix}", n + 1
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


# -- PostgreSQL -----------------------------------------------------------------


def _libpq(url: str) -> str:
    """A SQLAlchemy URL as pg_dump and pg_restore take it (no "+psycopg" driver part)."""
    scheme, _, rest = url.partition("://")
    return f"postgresql://{rest}" if scheme.startswith("postgres") else url


def _tool(name: str) -> str:
    """pg_dump or pg_restore: on PATH, else where Debian puts PostgreSQL 15's."""
    found = shutil.which(name)
    if found:
        return found
    debian = Path("/usr/lib/postgresql/15/bin") / name
    if debian.exists():
        return str(debian)
    raise UserInputError(f"{name} is not installed: install PostgreSQL's client tools")


def _run(args: list[str], what: str) -> None:
    done = subprocess.run(args, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        detail = redact.url(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
        raise FundraiserError(f"{what} failed: {detail or f'exit {done.returncode}'}")


def _pg_backup(database_url: str, folder: Path, now: datetime) -> Backup:
    try:
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise UserInputError(f"cannot make {folder}: {exc.strerror}") from None
    target = _free_name(folder, f"ledger-{now:%Y%m%dT%H%M%SZ}", ".dump")
    part = folder / f".{target.name}.part"
    os.close(os.open(part, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600))
    try:
        _run(
            [
                _tool("pg_dump"),
                "--format=custom",
                "--no-owner",
                "--file",
                str(part),
                _libpq(database_url),
            ],
            "pg_dump",
        )
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    return Backup(target, target.stat().st_size)


# -- restore --------------------------------------------------------------------


@dataclass(frozen=True)
class Restored:
    source: Path
    entries: int
    head: str
    kept: Path | None  # the ledger it replaced, kept beside it (SQLite)


class RestoreRefused(FundraiserError):
    """The copy does not prove itself, or the ledger it would replace is in use."""


def restore(source: Path, database_url: str, now: datetime, *, dry_run: bool = False) -> Restored:
    """Put a backup in the ledger's place, once its journal proves its tables."""
    if not source.is_file():
        raise UserInputError(f"{source} is not a file: give a backup from var/backups/")
    target = sqlite_path(database_url)
    if target is None:
        return _pg_restore(source, database_url, dry_run=dry_run)
    with tempfile.TemporaryDirectory(prefix="fundraiser-restore-", dir=target.parent) as tmp:
        trial = Path(tmp) / "ledger.sqlite"
        shutil.copyfile(source, trial)
        os.chmod(trial, 0o600)
        verdict = _proved(f"sqlite:///{trial}", source)
        if dry_run:
            return Restored(source, verdict.chain.entries, verdict.chain.head, None)
        kept = _set_aside(target, now)
        os.replace(trial, target)
    return Restored(source, verdict.chain.entries, verdict.chain.head, kept)


def _proved(url: str, source: Path) -> Any:
    """The copy opened (migrated forward if older) and verified; refused unless whole."""
    from fundraiser.ledger import audit, open_ledger

    try:
        ledger = open_ledger(url)
    except (FundraiserError, sqlite3.Error) as exc:
        raise RestoreRefused(f"{source} is not a ledger this fundraiser can open: {exc}") from None
    try:
        verdict = audit.verify(ledger, keep=5)
    finally:
        ledger.dispose()
    if not verdict.ok:
        problems = "; ".join(line.strip() for line in verdict.lines()[:6])
        raise RestoreRefused(
            f"{source} does not prove itself, so it is not restored: {problems}. "
            "Take an earlier backup"
        )
    return verdict


def _set_aside(target: Path, now: datetime) -> Path | None:
    """The ledger being replaced, renamed beside it; refused while a writer holds it."""
    if not target.exists():
        target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return None
    try:
        held = sqlite3.connect(target, timeout=2, isolation_level=None)
        try:
            held.execute("BEGIN EXCLUSIVE")  # no one else may be writing or reading it
            held.execute("ROLLBACK")
        finally:
            held.close()
    except sqlite3.OperationalError:
        raise RestoreRefused(
            f"the ledger {target} is in use: stop the pledge service (and any command) first"
        ) from None
    kept = _free_name(target.parent, f"{target.stem}.before-restore-{now:%Y%m%dT%H%M%SZ}")
    os.replace(target, kept)
    for suffix in ("-journal", "-wal", "-shm"):  # SQLite's side files belong to the old one
        side = target.with_name(target.name + suffix)
        if side.exists():
            os.replace(side, kept.with_name(kept.name + suffix))
    return kept


def _pg_restore(source: Path, database_url: str, *, dry_run: bool) -> Restored:
    """Into an empty PostgreSQL database; emptied again if the copy does not prove itself."""
    import sqlalchemy as sa

    engine = sa.create_engine(
        "postgresql+psycopg://" + database_url.partition("://")[2], poolclass=sa.pool.NullPool
    )
    try:
        with engine.connect() as conn:
            tables = sa.inspect(conn).get_table_names()
        if tables:
            raise RestoreRefused(
                "the PostgreSQL database to restore into is not empty: create a new database "
                "and point --db (or DATABASE_URL) at it"
            )
        _run(
            [
                _tool("pg_restore"),
                "--no-owner",
                "--exit-on-error",
                "--dbname",
                _libpq(database_url),
                str(source),
            ],
            "pg_restore",
        )
        try:
            verdict = _proved(database_url, source)
        except RestoreRefused:
            _empty(engine)
            raise
        if dry_run:
            _empty(engine)
        return Restored(source, verdict.chain.entries, verdict.chain.head, None)
    finally:
        engine.dispose()


def _empty(engine: Any) -> None:
    import sqlalchemy as sa

    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
