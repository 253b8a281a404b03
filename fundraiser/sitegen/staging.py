"""A rebuild of a site being served, put in place a file at a time.

Pelican writes a page where it stands (the old one emptied, then the new one
written), so a preview server reading the folder meanwhile can send a page
empty or cut short. The preview (`site serve`, `fundraiser demo`) builds into
a fresh folder beside the served one instead, then renames each new or
changed file over the old: a rename is atomic within a filesystem, so a
reader gets the old file or the new one, whole. A request that comes between
two renames may see a new page beside an old one; the next shows both new.
"""

from __future__ import annotations

import filecmp
import os
import shutil
from pathlib import Path


def beside(output: Path) -> Path:
    """Where a build of `output` is made: beside it (same filesystem: renames, not copies)."""
    return output.parent / f".{output.name}.next"


def staging_folder(output: Path) -> Path:
    """The folder beside `output`, made empty."""
    staging = beside(output)
    if staging.exists():  # left by a build that was stopped
        shutil.rmtree(staging)
    staging.parent.mkdir(parents=True, exist_ok=True)
    return staging


def move_in(staging: Path, output: Path, *, remove_stale: bool) -> None:
    """Put the build in `staging` in place in `output`, then remove `staging`.

    Files that did not change are left alone. `remove_stale`: files of the old
    build the new one lacks are removed (DELETE_OUTPUT_DIRECTORY); otherwise
    they stay, as a build in place leaves them.
    """
    output.mkdir(parents=True, exist_ok=True)
    built: set[Path] = set()
    for folder, dirs, files in os.walk(staging):
        dirs.sort()
        here = Path(folder)
        there = output / here.relative_to(staging)
        if there.is_file() or there.is_symlink():
            there.unlink()
        there.mkdir(exist_ok=True)
        built.add(there)
        for name in sorted(files):
            new, old = here / name, there / name
            built.add(old)
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old)
            elif old.is_file() and filecmp.cmp(new, old, shallow=False):
                continue
            os.replace(new, old)
    shutil.rmtree(staging)
    if remove_stale:
        _remove_all_but(output, built)


def _remove_all_but(output: Path, kept: set[Path]) -> None:
    for folder, dirs, files in os.walk(output, topdown=False):
        here = Path(folder)
        for name in files:
            if here / name not in kept:
                (here / name).unlink()
        for name in dirs:
            path = here / name
            if path not in kept:
                if path.is_symlink():
                    path.unlink()
                else:
                    shutil.rmtree(path, ignore_errors=True)
