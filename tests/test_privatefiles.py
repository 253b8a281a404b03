"""Files with people's data: owner-only, whole or not at all (issue 13, item 16)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from fundraiser import privatefiles
from tests.spreadsheet import mode


@pytest.fixture(autouse=True)
def loose_umask() -> Iterator[None]:
    """The loosest umask: what we write must not depend on it."""
    old = os.umask(0)
    yield
    os.umask(old)


def test_files_are_0600_even_over_an_older_world_readable_file(tmp_path: Path) -> None:
    out = tmp_path / "register.csv"
    out.write_text("old")
    out.chmod(0o666)
    stale = tmp_path / "register.csv.part"
    stale.write_text("left by a crash")
    stale.chmod(0o666)
    privatefiles.write(out, "name\nAda\n")
    assert out.read_text() == "name\nAda\n" and mode(out) == 0o600
    assert not stale.exists()
    privatefiles.write(tmp_path / "cert.pdf", b"%PDF")
    assert mode(tmp_path / "cert.pdf") == 0o600


def test_a_failed_write_leaves_the_old_file_and_no_part(tmp_path: Path) -> None:
    out = tmp_path / "roll.csv"
    privatefiles.write(out, "before")
    with pytest.raises(RuntimeError), privatefiles.open_private(out) as handle:
        handle.write("half")
        raise RuntimeError("crash mid-write")
    assert out.read_text() == "before"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roll.csv"]


def test_a_link_at_the_temporary_name_is_not_followed(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "out.csv.part").symlink_to(victim)
    with pytest.raises(OSError):
        privatefiles.write(tmp_path / "out.csv", "evil")
    assert victim.read_text() == "keep"


def test_folders_we_make_are_0700_and_folders_we_did_not_keep_their_mode(tmp_path: Path) -> None:
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    theirs.chmod(0o755)
    privatefiles.make_dir(theirs / "var" / "certificates")
    assert mode(theirs) == 0o755
    assert mode(theirs / "var") == 0o700 and mode(theirs / "var" / "certificates") == 0o700
    privatefiles.make_dir(theirs / "var")  # already there: nothing changes
    assert mode(theirs / "var") == 0o700
