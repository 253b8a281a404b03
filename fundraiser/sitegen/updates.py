"""Campaign updates: new dated drafts in content/updates/."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from fundraiser.errors import UserInputError

UPDATES_DIR = "updates"

_NOT_WORD = re.compile(r"[^\w\s-]")
_SPACES = re.compile(r"[-\s_]+")
_SLUG_LINE = re.compile(r"^slug:\s*(\S+)", re.IGNORECASE)
_DATED = re.compile(r"^\d{4}-\d{2}-\d{2}-")

TEMPLATE = """\
Title: {title}
Date: {date}
Slug: {slug}
Summary: One or two sentences for the list of updates and the feed.
Status: draft

Write the update here, in Markdown. Say what happened, what it means for
backers, and what comes next.

When it is ready, delete the `Status: draft` line and run `fundraiser site build`.
Until then the build shows it only under drafts/, unlinked.
"""


def slugify(title: str) -> str:
    """'Week one: £12,000 & counting!' -> 'week-one-12000-counting' (ASCII only)."""
    ascii_text = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
    words = _NOT_WORD.sub("", ascii_text).strip().lower()
    return _SPACES.sub("-", words).strip("-")


def _slugs(folder: Path) -> set[str]:
    """The slugs (addresses) of the updates already in the folder."""
    slugs = set()
    for path in folder.glob("*.md"):
        try:
            with path.open(encoding="utf-8", errors="replace") as stream:
                head = [next(stream, "") for _ in range(12)]
        except OSError:
            head = []
        found = next((m for m in map(_SLUG_LINE.match, head) if m), None)
        slugs.add(found.group(1).strip() if found else _DATED.sub("", path.stem))
    return slugs


def new_update(content_dir: Path, title: str, now: datetime, timezone: str) -> Path:
    """Write a dated draft update and return its path; never overwrite a file."""
    clean = " ".join(title.split())
    if not clean:
        raise UserInputError('the title is empty: give one, e.g. fundraiser update new "Week one"')
    folder = content_dir / UPDATES_DIR
    if not content_dir.is_dir():
        raise UserInputError(
            f"there is no content folder at {content_dir}: run from the project folder or "
            "pass --content PATH"
        )
    base = slugify(clean) or "update"
    local = now.astimezone(ZoneInfo(timezone))
    slug = base
    try:
        folder.mkdir(exist_ok=True)
        path = folder / f"{local:%Y-%m-%d}-{slug}.md"
        if path.exists():
            raise UserInputError(f"{path} already exists: edit it, or choose another title")
        # The slug is the update's address, so an older update's slug gets a number.
        taken = _slugs(folder)
        number = 2
        while slug in taken:
            slug = f"{base}-{number}"
            number += 1
        path = folder / f"{local:%Y-%m-%d}-{slug}.md"
        text = TEMPLATE.format(
            title=clean, date=local.isoformat(sep=" ", timespec="minutes"), slug=slug
        )
        with path.open("x", encoding="utf-8") as stream:  # "x": never overwrite
            stream.write(text)
    except FileExistsError:
        raise UserInputError(f"{path} already exists: edit it, or choose another title") from None
    except OSError as exc:
        raise UserInputError(f"cannot write to {folder}: {exc.strerror}") from None
    return path
