"""One build step: the kit's theme, site settings and example co-op go into the wheel.

The repository keeps theme/, site/, content/ and campaign.toml at its top
level: they are the example co-op's own site, which `fundraiser site build`
builds from a checkout. An installed kit needs them inside the package, so
building copies them to fundraiser/_kit/ in the build folder (the checkout is
left as it is), where fundraiser/kit.py finds them. Everything else about the
package is in pyproject.toml. MANIFEST.in puts the same files in an sdist.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
#: Copied into fundraiser/_kit/, as they sit in the repository.
KIT = ("campaign.toml", "site/pelicanconf.py", "site/publishconf.py", "theme", "content")
SKIP = shutil.ignore_patterns("__pycache__", "*.py[cod]", ".*")


class BuildPyWithKit(build_py):
    """build_py, then the kit's files as package data under fundraiser/_kit/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout itself
        target = Path(self.build_lib) / "fundraiser" / "_kit"
        shutil.rmtree(target, ignore_errors=True)
        for name in KIT:
            source = HERE / name
            if not source.exists():
                raise SystemExit(
                    f"cannot build fundraiser: {source} is missing, and a wheel without the "
                    "kit's theme and site cannot start a co-op (an sdist needs MANIFEST.in)"
                )
            destination = target / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, destination, ignore=SKIP)
            else:
                shutil.copyfile(source, destination)


setup(cmdclass={"build_py": BuildPyWithKit})
