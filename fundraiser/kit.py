"""The kit's own files: the theme, the site settings and the example co-op.

The repository keeps them at its top level (theme/, site/, content/,
campaign.toml) as the example co-op's own site. A wheel carries a copy as
package data under fundraiser/_kit/, made at build time by setup.py; an
editable checkout has no _kit/ and is read from the repository root. Either
way a co-op's files never hold this machine's paths: its site/pelicanconf.py
asks this module, at build time, where the installed kit is.

A co-op overrides any theme file by keeping its own copy in its folder:
theme/templates/ comes before the kit's templates (Pelican's
THEME_TEMPLATES_OVERRIDES) and theme/static/ is copied over the kit's
static files. `fundraiser theme copy` starts such a copy from ours.
"""

from __future__ import annotations

import functools
import runpy
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fundraiser.errors import FundraiserError, UserInputError

#: Where a wheel carries the kit (setup.py copies it there).
PACKAGED = Path(__file__).resolve().parent / "_kit"
#: Where an editable checkout keeps it: the repository root.
CHECKOUT = Path(__file__).resolve().parent.parent
#: What makes a folder the kit: without these nothing can be built.
_MARKERS = ("theme/templates/base.html", "site/pelicanconf.py", "campaign.toml")
#: A co-op's own copies of theme files, in its folder beside campaign.toml.
OWN_THEME = "theme"


class KitMissing(FundraiserError):
    """The kit's files are not installed beside the package."""


def _is_kit(folder: Path) -> bool:
    return all((folder / marker).is_file() for marker in _MARKERS)


@functools.cache
def root() -> Path:
    """The folder holding the kit's theme/, site/, content/ and campaign.toml."""
    for folder in (PACKAGED, CHECKOUT):
        if _is_kit(folder):
            return folder
    raise KitMissing(
        f"the launch kit's theme and site settings are not installed (looked in {PACKAGED} "
        f"and {CHECKOUT}): reinstall fundraiser from a wheel built by `pip wheel` or "
        "`python -m build`, or with `pip install -e .` from a checkout"
    )


def theme() -> Path:
    return root() / "theme"


def settings_file() -> Path:
    """The kit's Pelican settings (the example co-op's site/pelicanconf.py)."""
    return root() / "site" / "pelicanconf.py"


def publish_settings_file() -> Path:
    return root() / "site" / "publishconf.py"


def content() -> Path:
    """The example co-op's pages and updates."""
    return root() / "content"


def example_campaign() -> Path:
    return root() / "campaign.toml"


def settings() -> dict[str, Any]:
    """The kit's Pelican settings, for a co-op's pelicanconf.py to start from.

    Read afresh each time: they take values (keys, addresses) from the environment.
    """
    found = runpy.run_path(str(settings_file()))
    return {name: value for name, value in found.items() if name.isupper()}


def _own(folder: Path, part: str) -> Path | None:
    """A co-op's own theme/<part> folder, when it has one that is not the kit's."""
    mine = folder / part
    if not mine.is_dir() or mine.resolve() == (theme() / part).resolve():
        return None
    return mine.resolve()


def template_overrides(own_theme: Path) -> list[str]:
    """THEME_TEMPLATES_OVERRIDES: the co-op's templates, looked up before the kit's."""
    mine = _own(own_theme, "templates")
    return [str(mine)] if mine else []


def static_paths(own_theme: Path) -> list[str]:
    """THEME_STATIC_PATHS: the kit's static files, then the co-op's copied over them."""
    mine = _own(own_theme, "static")
    return ["static", str(mine)] if mine else ["static"]


def coop_theme_settings(coop_folder: Path) -> dict[str, Any]:
    """The settings that put a co-op's own theme files over the kit's."""
    own = coop_folder / OWN_THEME
    return {
        "THEME_TEMPLATES_OVERRIDES": template_overrides(own),
        "THEME_STATIC_PATHS": static_paths(own),
    }


# -- fundraiser theme copy ------------------------------------------------------------


@dataclass(frozen=True)
class Copied:
    written: tuple[Path, ...]
    kept: tuple[Path, ...]  # already there, left alone (no --force)


def theme_files() -> list[str]:
    """Every file of the kit's theme, as a path inside theme/ (templates/base.html)."""
    base = theme()
    return sorted(
        p.relative_to(base).as_posix()
        for p in base.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and not p.name.startswith(".")
    )


def _pick(templates: list[str], statics: list[str]) -> list[str]:
    available = theme_files()
    if not templates and not statics:
        return available
    wanted = [f"templates/{name}" for name in templates] + [f"static/{name}" for name in statics]
    unknown = [w for w in wanted if w not in available]
    if unknown:

        def inside(kind: str) -> str:
            return ", ".join(p.split("/", 1)[1] for p in available if p.startswith(kind + "/"))

        raise UserInputError(
            f"the kit's theme has no {', '.join(unknown)}: --template takes one of "
            f"{inside('templates')}; --static one of {inside('static')}"
        )
    return wanted


def copy_theme(
    coop_folder: Path, templates: list[str], statics: list[str], *, force: bool = False
) -> Copied:
    """Copy the kit's theme files (all, or the ones named) into the co-op's theme/ folder."""
    target = coop_folder / OWN_THEME
    if target.resolve() == theme().resolve():
        raise UserInputError(
            f"{target} is the kit's own theme: edit it there, or run this in a co-op's folder"
        )
    written: list[Path] = []
    kept: list[Path] = []
    for relative in _pick(templates, statics):
        destination = target / relative
        if destination.exists() and not force:
            kept.append(destination)
            continue
        try:
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(theme() / relative, destination)
        except OSError as exc:
            raise UserInputError(
                f"cannot write {destination}: {exc.strerror}; check the folder is writable"
            ) from None
        written.append(destination)
    return Copied(tuple(written), tuple(kept))
