"""Files with people's data, readable by their owner only.

The register, the voter roll, refund lists, bank payment files, certificates,
the books and backups carry names, addresses, emails, holdings or bank
accounts. Each is written 0600 (and each folder we make for them 0700),
whatever the umask says, so another account on the same machine cannot read
them. A folder the organizer chose (`--out ~/board/register.csv`) keeps its own
mode: it is theirs. Files are written whole or not at all: to a temporary file
beside the target, renamed over it when complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700


def make_dir(path: Path) -> None:
    """Make a folder (and any missing parents) for private files: 0700 each one we make."""
    missing = []
    at = path
    while not at.exists():
        missing.append(at)
        at = at.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            continue  # another process made it: its mode is its own
        os.chmod(folder, DIR_MODE)  # mkdir's mode passes through the umask


@contextmanager
def open_private(path: Path, mode: str = "w") -> Iterator[IO[Any]]:
    """A handle to write `path` 0600, whole or not at all ("w": UTF-8 text, "wb": bytes).

    The file appears at `path` when the block ends without an error; if it
    raises, nothing is left behind and an earlier file at `path` is untouched.
    """
    part = path.with_name(path.name + ".part")
    # O_NOFOLLOW: a link planted at the temporary name cannot redirect the write.
    fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)  # a .part left by an older run keeps its mode otherwise
        handle: IO[Any] = (
            os.fdopen(fd, mode)
            if "b" in mode
            else os.fdopen(fd, mode, encoding="utf-8", newline="")
        )
    except BaseException:
        os.close(fd)
        part.unlink(missing_ok=True)
        raise
    try:
        with handle:
            yield handle
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    part.replace(path)


def write(path: Path, data: str | bytes) -> None:
    """Write `path` 0600, whole or not at all."""
    with open_private(path, "wb" if isinstance(data, bytes) else "w") as handle:
        handle.write(data)


def restrict(path: Path) -> None:
    """Make an existing file of ours owner-only (one written before this rule)."""
    os.chmod(path, FILE_MODE)
