"""A rebuild moved into the served folder (sitegen/staging.py): new and changed files
renamed in, unchanged ones left alone, what the new build lacks removed only when
the settings empty the output (DELETE_OUTPUT_DIRECTORY)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fundraiser.sitegen import staging


def tree(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): p.read_text() if p.is_file() else "/"
        for p in sorted(root.rglob("*"))
    }


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@pytest.mark.parametrize("remove_stale", [True, False])
def test_a_rebuild_replaces_what_changed_and_keeps_what_did_not(
    tmp_path: Path, remove_stale: bool
) -> None:
    out = tmp_path / "output"
    write(
        out,
        {
            "index.html": "old",
            "same.css": "a{}",
            "gone.html": "x",
            "feeds/a.xml": "<a/>",
            "was-file": "a file where the new build has a folder",
            "was-folder/old.txt": "a folder where the new build has a file",
        },
    )
    kept = (out / "same.css").stat().st_ino
    new = staging.staging_folder(out)
    assert new == tmp_path / ".output.next" and not new.exists()
    write(
        new,
        {
            "index.html": "new",
            "same.css": "a{}",
            "feeds/a.xml": "<b/>",
            "was-file/inside.html": "in",
            "was-folder": "now a file",
            "deep/er/page.html": "p",
        },
    )
    staging.move_in(new, out, remove_stale=remove_stale)
    expected = {
        "deep": "/",
        "deep/er": "/",
        "deep/er/page.html": "p",
        "feeds": "/",
        "feeds/a.xml": "<b/>",
        "index.html": "new",
        "same.css": "a{}",
        "was-file": "/",
        "was-file/inside.html": "in",
        "was-folder": "now a file",
    }
    if not remove_stale:
        expected["gone.html"] = "x"
    assert tree(out) == expected
    assert (out / "same.css").stat().st_ino == kept  # not rewritten
    assert not new.exists()


def test_a_build_stopped_midway_leaves_a_folder_the_next_one_clears(tmp_path: Path) -> None:
    out = tmp_path / "output"
    write(staging.beside(out), {"half.html": "<html"})
    new = staging.staging_folder(out)
    assert not new.exists()
