"""This test process's children, as Linux lists them (a child left running or unreaped)."""

from __future__ import annotations

import os
from pathlib import Path


def children_of_this_process() -> list[str]:
    """States of the processes whose parent is this one (Z: a child never reaped)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == os.getpid():
            found.append(fields[0])
    return found
