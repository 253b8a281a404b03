"""A co-op's own theme files over the kit's: `fundraiser theme copy`, then a build."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fundraiser import kit
from fundraiser.cli import main
from tests.conftest import ROOT

NOW = {"FUNDRAISER_NOW": "2027-01-01T10:00:00+00:00"}


def fundraiser(coop: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--campaign", str(coop / "campaign.toml"), *args], env=NOW)


@pytest.fixture
def coop(tmp_path: Path) -> Path:
    folder = tmp_path / "coop"
    made = CliRunner().invoke(
        main, ["init", str(folder), "--yes", "--name", "Riverside Bakers"], env=NOW
    )
    assert made.exit_code == 0, made.output
    return folder


def test_any_template_or_static_file_copied_and_changed_wins_over_the_kits(coop: Path) -> None:
    result = fundraiser(
        coop,
        "theme",
        "copy",
        "--template",
        "_figures.html",
        "--static",
        "js/figures.js",
        "--static",
        "favicon.svg",
    )
    assert result.exit_code == 0, result.output
    own = coop / "theme"
    assert sorted(p.relative_to(own).as_posix() for p in own.rglob("*") if p.is_file()) == [
        "static/favicon.svg",
        "static/js/figures.js",
        "templates/_figures.html",
    ]
    # An included template, a script and an image, each changed in the co-op's copy.
    figures = own / "templates" / "_figures.html"
    figures.write_text(figures.read_text().replace("<section", '<section data-ours="1"', 1))
    (own / "static" / "js" / "figures.js").write_text("// the bakers' own script\n")
    (own / "static" / "favicon.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>\n')
    built = fundraiser(coop, "site", "build")
    assert built.exit_code == 0, built.output
    output = coop / "site" / "output"
    assert 'data-ours="1"' in (output / "index.html").read_text()
    assert (output / "theme" / "js" / "figures.js").read_text() == "// the bakers' own script\n"
    assert "<svg" in (output / "theme" / "favicon.svg").read_text()
    # What was not copied still follows the kit.
    kit_css = (kit.theme() / "static" / "css" / "site.css").read_text()
    assert (output / "theme" / "css" / "site.css").read_text() == kit_css
    assert 'data-ours="1"' not in (kit.theme() / "templates" / "_figures.html").read_text()


def test_copying_everything_keeps_what_the_coop_already_changed(coop: Path) -> None:
    assert fundraiser(coop, "theme", "copy", "--template", "base.html").exit_code == 0
    base = coop / "theme" / "templates" / "base.html"
    base.write_text("{# ours #}\n" + base.read_text())
    result = fundraiser(coop, "theme", "copy")
    assert result.exit_code == 0, result.output
    assert f"Kept your {base} (--force replaces it)" in result.output
    copied = sorted(
        p.relative_to(coop / "theme").as_posix() for p in (coop / "theme").rglob("*") if p.is_file()
    )
    assert copied == kit.theme_files()
    assert base.read_text().startswith("{# ours #}")
    forced = fundraiser(coop, "theme", "copy", "--template", "base.html", "--force")
    assert forced.exit_code == 0 and not base.read_text().startswith("{# ours #}")


@pytest.mark.parametrize(
    "args",
    [
        ["--template", "nope.html"],
        ["--template", "../../../etc/passwd"],
        ["--static", "../templates/base.html"],
        ["--template", "css/site.css"],
    ],
)
def test_a_file_the_theme_does_not_have_is_refused_naming_the_choices(
    coop: Path, args: list[str]
) -> None:
    result = fundraiser(coop, "theme", "copy", *args)
    assert result.exit_code == 2, result.output
    assert "the kit's theme has no" in result.output and "base.html" in result.output
    assert "Traceback" not in result.output
    assert not (coop / "theme").exists()


def test_the_kits_own_theme_is_not_copied_onto_itself() -> None:
    result = CliRunner().invoke(
        main,
        ["--campaign", str(ROOT / "campaign.toml"), "theme", "copy", "--template", "base.html"],
    )
    assert result.exit_code == 2, result.output
    assert "is the kit's own theme" in result.output
