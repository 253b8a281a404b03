"""The kit as a new user gets it: a wheel installed in a fresh venv, used far from this checkout.

Builds the sdist and the wheel from it (`python -m build`, as a release would)
from a copy of the checkout, installs the wheel into a new venv in tmp_path,
and runs init, check, site build (preview and publish) and the demo from a
folder outside the repository. Nothing the co-op's folder holds afterwards,
built pages included, may name a folder of the machine that built it.

The new venv gets the wheel's dependencies from this test run's own venv (a
.pth line naming its site-packages) rather than downloading them again: the
wheel itself, and so the kit, is the installed copy's own.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port

#: Not part of a source tree: a build copies none of these.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    "*.pyc",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "output",
    "var",
    "docs",
)


def run(args: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel installed in it; returns its bin/ folder."""
    base = tmp_path_factory.mktemp("wheel")
    source, dist, venv = base / "src", base / "dist", base / "venv"
    shutil.copytree(ROOT, source, ignore=_NOT_SOURCE)
    quiet = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(source)], base, quiet)
    (wheel,) = dist.glob("fundraiser-*.whl")
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], base, quiet)
    python = venv / "bin" / "python"
    purelib = run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        base,
        quiet,
    ).strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python)]
    run([*pip, "install", "-q", "--no-deps", "--no-index", str(wheel)], base, quiet)
    return venv / "bin"


def user_env(bin_dir: Path, home: Path) -> dict[str, str]:
    """A person's shell: the venv on PATH, a home of their own, no settings of ours."""
    keep = {k: v for k, v in os.environ.items() if k in ("LANG", "LC_ALL", "TZ", "TMPDIR")}
    return {**keep, "HOME": str(home), "PATH": f"{bin_dir}:/usr/bin:/bin"}


def machine_paths(bin_dir: Path) -> list[str]:
    """Folders of the machine that built and installed the kit: none may reach a co-op's files."""
    venv = bin_dir.parent
    return [str(ROOT), str(venv), str(Path(sys.prefix)), "site-packages", "/_kit/"]


def naming(folder: Path, paths: list[str]) -> list[str]:
    found = []
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            text = path.read_bytes().decode("utf-8", "replace")
            found += [f"{path.relative_to(folder)}: {p}" for p in paths if p in text]
    return found


def test_the_installed_package_is_the_wheel_and_carries_the_kit(installed: Path) -> None:
    answer = run(
        [str(installed / "python"), "-c", "import fundraiser.kit as k; print(k.root())"],
        installed,
        user_env(installed, installed),
    ).strip()
    kit = Path(answer)
    assert kit.is_relative_to(installed.parent), answer  # not this checkout
    assert kit.name == "_kit"
    for part in ("theme/templates/base.html", "theme/static/css/site.css", "site/publishconf.py"):
        assert (kit / part).is_file(), part
    assert sorted(p.name for p in (kit / "content" / "pages").glob("*.md")) == sorted(
        p.name for p in (ROOT / "content" / "pages").glob("*.md")
    )


def test_a_french_scic_starts_and_builds_from_the_wheel_naming_no_path_of_this_machine(
    installed: Path, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = user_env(installed, home)
    fundraiser = str(installed / "fundraiser")
    answers = {
        "--name": "Les Fourneaux",
        "--country": "FR",
        "--legal-form": "scic",
        "--contact-email": "bonjour@fourneaux.example",
        "--website": "https://fourneaux.example",
        "--goal": "50000",
        "--price": "50",
        "--min-shares": "1",
        "--max-shares": "200",
    }
    options = [part for pair in answers.items() for part in pair]
    said = run([fundraiser, "init", "my-coop", "--yes", *options], home, env)
    assert "and a starter site" in said
    coop = home / "my-coop"
    assert "EUR" in (coop / "campaign.toml").read_text()
    run([fundraiser, "check"], coop, env)
    built = run([fundraiser, "site", "build"], coop, env)
    assert "€0.00 of €50,000.00 pledged" in built
    output = coop / "site" / "output"
    home_page = html.unescape((output / "index.html").read_text())
    assert "Les Fourneaux" in home_page and "société coopérative d'intérêt collectif" in home_page
    assert (output / "theme" / "css" / "site.css").is_file()
    # A French co-op's pages are in French, with money as French readers write it.
    pledge_page = html.unescape((output / "pledge.html").read_text())
    assert '<html lang="fr"' in pledge_page
    words = " ".join(pledge_page.split())  # French puts no-break spaces before ? and €
    assert "Combien de parts ?" in words and "Chaque part coûte 50,00 €." in words
    assert "Refreshed" in run([fundraiser, "site", "figures"], coop, env)
    assert naming(coop, machine_paths(installed)) == []

    # A copy of one template, changed, wins over the kit's; the rest follow the kit.
    run([fundraiser, "theme", "copy", "--template", "base.html"], coop, env)
    mine = coop / "theme" / "templates" / "base.html"
    mine.write_text(mine.read_text().replace("<body", '<body data-ours="fourneaux"', 1))
    published = run(
        [fundraiser, "site", "build", "--publish"],
        coop,
        {**env, "STRIPE_PUBLISHABLE_KEY": "pk_test_fourneaux"},
    )
    assert "Built" in published
    assert 'data-ours="fourneaux"' in (output / "index.html").read_text()
    assert "https://fourneaux.example/" in (output / "index.html").read_text()
    assert naming(coop, machine_paths(installed)) == []


def test_the_demo_runs_from_the_wheel_and_stops(installed: Path, tmp_path: Path) -> None:
    port = free_port()
    process = subprocess.Popen(
        [str(installed / "fundraiser"), "demo", "--dir", "demo", "--port", str(port)],
        cwd=tmp_path,
        env=user_env(installed, tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and "Press Ctrl-C" not in "".join(lines):
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
        banner = "".join(lines)
        assert "Press Ctrl-C" in banner, banner
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/pledge.html", timeout=10) as page:
            pledge = page.read().decode()
        assert "Hearth" in pledge and 'data-stripe-key="pk_test_' in pledge
        api = re.search(r"Pledge service\s+(http://127\.0\.0\.1:\d+)", banner)
        assert api is not None
        with urllib.request.urlopen(api.group(1) + "/api/campaign", timeout=10) as answer:
            assert answer.status == 200  # the pledge service, started from the wheel
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
