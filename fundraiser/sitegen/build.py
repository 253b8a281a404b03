"""Build and preview the site with Pelican, failing with a message that says what to fix.

`build_site` loads the campaign and the ledger's figures first (so bad data is
reported before Pelican starts), runs Pelican with our plugin, and turns
every error Pelican logs or raises into one SiteBuildError. `serve` builds,
serves the output on a local port and rebuilds when content, theme,
settings or campaign.toml change; while nothing changes it keeps
campaign.json fresh from the ledger.
"""

from __future__ import annotations

import gc
import logging
import runpy
import shutil
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fundraiser.errors import FundraiserError, Problem, ProblemsError
from fundraiser.sitegen import SiteBuildError
from fundraiser.sitegen.data import CAMPAIGN_JSON, SiteData, load_site_data, refresh_figures

SETTINGS = Path("site") / "pelicanconf.py"
PUBLISH_SETTINGS = "publishconf.py"
PLUGIN = "fundraiser.sitegen.plugin"

#: How often `serve` re-reads the ledger's figures while no file changes (ms).
FIGURES_EVERY_MS = 10_000


@dataclass(frozen=True)
class BuildReport:
    output: Path
    content: Path
    theme: Path
    pages: int  # HTML files written
    seconds: float
    warnings: tuple[str, ...]
    data: SiteData
    #: The co-op's own theme folders laid over the kit's (templates, static files).
    overrides: tuple[Path, ...] = ()


class PublishRefused(ProblemsError):
    """A public build that would not work for backers: a key or address is missing."""


def settings_file(project_dir: Path, settings: Path | None = None, publish: bool = False) -> Path:
    """The settings file to build with; publishconf.py beside it when publishing.

    Without --settings: site/pelicanconf.py beside campaign.toml, else in the
    current folder (a campaign file kept elsewhere still builds this project).
    """
    if settings is not None:
        path = settings
    else:
        candidates = [project_dir / SETTINGS, Path.cwd() / SETTINGS]
        path = next((p for p in candidates if p.is_file()), candidates[0])
    if publish:
        path = path.parent / PUBLISH_SETTINGS
    if not path.is_file():
        raise SiteBuildError(
            f"no Pelican settings at {path}: run from the project folder (the one with "
            "site/pelicanconf.py), or pass --settings PATH"
        )
    return path


def default_output(project_dir: Path, *, publish: bool = False) -> Path:
    """Where a build without --output writes: OUTPUT_PATH in the site's settings.

    The settings file is run as Python (our settings files import no Pelican, so
    refreshing campaign.json stays quick); a relative OUTPUT_PATH is taken from
    the settings file's folder, as Pelican takes it. Without settings: site/output.
    """
    try:
        path = settings_file(project_dir, publish=publish)
    except SiteBuildError:
        return project_dir / SETTINGS.parent / "output"
    return output_from_settings(path)


def output_from_settings(path: Path) -> Path:
    """OUTPUT_PATH as the settings file sets it; output/ beside it when it sets none."""
    try:
        values = runpy.run_path(str(path))
    except Exception as exc:  # the settings file is Python: anything may go wrong in it
        raise SiteBuildError(f"{path} cannot be used: {type(exc).__name__}: {exc}") from None
    output = values.get("OUTPUT_PATH")
    if not output:
        return path.parent / "output"
    folder = Path(str(output)).expanduser()
    return folder if folder.is_absolute() else (path.parent / folder).resolve()


def publish_problems(settings: dict[str, Any]) -> list[Problem]:
    """What a public pledge page needs from the settings (or the environment), as problems.

    `site build --publish` refuses to build with any of these; `fundraiser
    preflight` lists them with the same words.
    """
    return [
        *publishable_key_problems(str(settings.get("STRIPE_PUBLISHABLE_KEY") or "")),
        *pledge_api_problems(str(settings.get("PLEDGE_API") or "")),
    ]


def publishable_key_problems(key: str) -> list[Problem]:
    """STRIPE_PUBLISHABLE_KEY as the public pledge page needs it."""
    problems = []
    key = key.strip()
    if not key:
        problems.append(
            Problem(
                "STRIPE_PUBLISHABLE_KEY",
                'is not set, so the published pledge page would say "The card form could '
                'not load" and take no pledge',
                "export the publishable key from Stripe's dashboard (pk_live_…, or pk_test_… "
                "for a rehearsal) and build again",
            )
        )
    elif not key.startswith("pk_"):
        problems.append(
            Problem(
                "STRIPE_PUBLISHABLE_KEY",
                f"starts {key[:3]!r}: it is not a publishable key",
                "use the publishable key (pk_live_… or pk_test_…); a secret key stays in "
                "STRIPE_SECRET_KEY on the server",
            )
        )
    return problems


def pledge_api_problems(api: str) -> list[Problem]:
    """PLEDGE_API as the public pledge page needs it: https, or empty (the site's origin)."""
    problems = []
    api = api.strip()
    if api and not api.startswith("https://"):
        problems.append(
            Problem(
                "PLEDGE_API",
                f"{api!r} is not an https address: browsers will not send a pledge from the "
                "public site to it",
                "give the pledge service's https address, e.g. https://pledge.hearth.example "
                "(or leave it empty when the service answers on the site's own origin)",
            )
        )
    return problems


def read_settings(path: Path, overrides: dict[str, Any]) -> dict[str, Any]:
    """Pelican's settings from the file, with ours on top; errors name the file."""
    from pelican.settings import read_settings as pelican_read_settings  # type: ignore[import-untyped]

    try:
        settings: dict[str, Any] = pelican_read_settings(str(path), override=dict(overrides))
    except FileNotFoundError as exc:
        raise SiteBuildError(f"{path}: {exc.strerror}: {exc.filename}") from None
    except SyntaxError as exc:
        raise SiteBuildError(
            f"{exc.filename}:{exc.lineno}: {exc.msg}: fix the settings file"
        ) from None
    except Exception as exc:  # the settings file is Python: anything may go wrong in it
        raise SiteBuildError(f"{path} cannot be used: {type(exc).__name__}: {exc}") from None
    plugins = list(settings.get("PLUGINS") or [])
    if PLUGIN not in plugins:
        # Our templates need the plugin's campaign and figures.
        settings["PLUGINS"] = [*plugins, PLUGIN]
    return settings


class _Collector(logging.Handler):
    """Keeps Pelican's warnings and errors for one build, to report them together."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextmanager
def _collected_logs() -> Iterator[_Collector]:
    collector = _Collector()
    loggers = [logging.getLogger(name) for name in ("pelican", "fundraiser", "jinja2")]
    saved = [(lg, lg.propagate) for lg in loggers]
    for lg in loggers:
        lg.addHandler(collector)
        lg.propagate = False  # the command prints them once, as a list
    try:
        yield collector
    finally:
        for lg, propagate in saved:
            lg.removeHandler(collector)
            lg.propagate = propagate


def _template_error(exc: Exception) -> str:
    """Name the theme template and line a Jinja error came from."""
    filename = getattr(exc, "filename", None)
    lineno = getattr(exc, "lineno", None)
    if not filename:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            if frame.filename.endswith((".html", ".xml")):
                filename, lineno = frame.filename, frame.lineno
                break
    where = f"{filename}:{lineno}: " if filename else "a theme template: "
    message = getattr(exc, "message", None) or str(exc)
    return f"{where}{message}: fix the template and build again"


def _guard_output(settings: dict[str, Any]) -> None:
    """Refuse to empty a folder that is not a site we built (DELETE_OUTPUT_DIRECTORY)."""
    output = Path(settings["OUTPUT_PATH"])
    if not settings.get("DELETE_OUTPUT_DIRECTORY") or not output.exists():
        return
    if not output.is_dir():
        raise SiteBuildError(f"the output {output} is a file: choose a folder")
    if any(output.iterdir()) and not (output / CAMPAIGN_JSON).exists():
        raise SiteBuildError(
            f"{output} is not empty and holds no site built by fundraiser, and publishing "
            "empties the output folder first: choose an empty folder with --output"
        )


def run_pelican(settings: dict[str, Any]) -> tuple[int, tuple[str, ...]]:
    """One Pelican run; returns (HTML pages written, warnings) or raises SiteBuildError."""
    import jinja2
    from pelican import Pelican  # type: ignore[import-untyped]
    from pelican.generators import PelicanTemplateNotFound  # type: ignore[import-untyped]
    from pelican.log import console  # type: ignore[import-untyped]

    from fundraiser.sitegen.plugin import WRITTEN

    _guard_output(settings)
    quiet = console.quiet
    console.quiet = True  # Pelican's "Done: ..." line; the command prints its own summary
    # The objects alive now (imported modules, the site data) outlive the build. Freezing
    # them spares the collector rescanning them each time the pages read pile up: about
    # a fifth of the build time with a thousand updates.
    gc.freeze()
    try:
        with _collected_logs() as collector:
            try:
                pelican = Pelican(settings)
                pelican.run()
            except (jinja2.TemplateError, PelicanTemplateNotFound) as exc:
                raise SiteBuildError(_template_error(exc)) from None
            except OSError as exc:
                raise SiteBuildError(
                    f"cannot write the site: {exc.strerror}: {exc.filename}. Check that the "
                    "output folder is writable"
                ) from None
    finally:
        gc.unfreeze()
        console.quiet = quiet
    errors = [r for r in collector.records if r.levelno >= logging.ERROR]
    if errors:
        listed = "\n".join(f"  - {_message(r)}" for r in errors)
        raise SiteBuildError(
            f"the site build found {len(errors)} problem(s):\n{listed}\nFix them and build again."
        )
    warnings = tuple(_message(r) for r in collector.records if r.levelno < logging.ERROR)
    pages = sum(1 for path, _ in pelican.settings.get(WRITTEN) or [] if path.endswith(".html"))
    return pages, warnings


def _run_staged(settings: dict[str, Any]) -> tuple[int, tuple[str, ...]]:
    """run_pelican into a folder beside the output, then moved into it (staging.py)."""
    from fundraiser.sitegen import staging

    _guard_output(settings)  # the folder the build ends in, as a build in place guards it
    output = Path(settings["OUTPUT_PATH"])
    folder = staging.staging_folder(output)
    try:
        made = run_pelican({**settings, "OUTPUT_PATH": str(folder)})
        staging.move_in(folder, output, remove_stale=bool(settings.get("DELETE_OUTPUT_DIRECTORY")))
    finally:
        if folder.exists():  # a build that failed: the served site stays as it was
            shutil.rmtree(folder)
    return made


def _message(record: logging.LogRecord) -> str:
    text = record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        text = f"{text}: {record.exc_info[1]}"
    return " ".join(text.split())


def build_site(
    settings_path: Path,
    *,
    campaign_path: Path | str,
    database_url: str | None,
    now: datetime,
    output: Path | None = None,
    extra: dict[str, Any] | None = None,
    publish: bool = False,
    staged: bool = False,
) -> BuildReport:
    """Build the whole site; raise ConfigError, LedgerError or SiteBuildError on bad data.

    With `publish`, refuse (PublishRefused) settings a public pledge page cannot work with.
    `staged`: for a site being served, built beside its folder and moved in a file
    at a time, so no page is ever read half written (sitegen/staging.py).
    """
    started = time.perf_counter()
    from fundraiser.sitegen.plugin import SITE_DATA, check_public_settings

    data = load_site_data(campaign_path, database_url, now)
    overrides: dict[str, Any] = {
        "FUNDRAISER_CAMPAIGN": str(campaign_path),
        "FUNDRAISER_DATABASE_URL": database_url,
        "FUNDRAISER_NOW": now.isoformat(),
        SITE_DATA: data,
        **(extra or {}),
    }
    if output is not None:
        overrides["OUTPUT_PATH"] = str(output.resolve())
    settings = read_settings(settings_path, overrides)
    check_public_settings(settings)
    if publish:
        problems = publish_problems(settings)
        if problems:
            raise PublishRefused("the public site would not take pledges:", problems)
    if staged:
        pages, warnings = _run_staged(settings)
    else:
        pages, warnings = run_pelican(settings)
    return BuildReport(
        Path(settings["OUTPUT_PATH"]),
        Path(settings["PATH"]),
        Path(settings["THEME"]),
        pages,
        time.perf_counter() - started,
        warnings,
        data,
        _overrides(settings),
    )


def _overrides(settings: dict[str, Any]) -> tuple[Path, ...]:
    """The folders laid over the theme: template overrides and extra static folders."""
    static = [p for p in settings.get("THEME_STATIC_PATHS") or [] if Path(p).is_absolute()]
    folders = [*(settings.get("THEME_TEMPLATES_OVERRIDES") or []), *static]
    return tuple(Path(p) for p in folders)


def serve(
    settings_path: Path,
    *,
    campaign_path: Path | str,
    database_url: str | None,
    now: Callable[[], datetime],
    host: str,
    port: int,
    output: Path | None = None,
    extra: dict[str, Any] | None = None,
    echo: Callable[[str], None] = print,
    stop: threading.Event | None = None,
) -> None:
    """Build, serve the output on host:port, rebuild on change until stopped (Ctrl-C)."""
    import watchfiles
    from pelican.server import ComplexHTTPRequestHandler, RootedHTTPServer  # type: ignore[import-untyped]

    from fundraiser.sitegen import staging

    def rebuild() -> None:
        try:
            report = build_site(
                settings_path,
                campaign_path=campaign_path,
                database_url=database_url,
                now=now(),
                output=output,
                extra=extra,
                staged=True,
            )
        except FundraiserError as exc:  # keep serving the last good build; say what broke
            echo(f"Build failed: {exc}")
            return
        for warning in report.warnings:
            echo(f"Warning: {warning}")
        echo(f"Built {report.pages} pages in {report.seconds:.2f} s.")

    first = build_site(
        settings_path,
        campaign_path=campaign_path,
        database_url=database_url,
        now=now(),
        output=output,
        extra=extra,
        staged=True,
    )
    site_dir = first.output.resolve()
    building = staging.beside(site_dir)
    RootedHTTPServer.allow_reuse_address = True
    try:
        httpd = RootedHTTPServer(str(site_dir), (host, port), ComplexHTTPRequestHandler)
    except OSError as exc:
        raise SiteBuildError(
            f"cannot serve on {host}:{port}: {exc.strerror}. Choose another port with --port"
        ) from None
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    echo(f"Serving {site_dir} at http://{host}:{httpd.server_address[1]}/ (Ctrl-C to stop)")

    ignored = watchfiles.DefaultFilter()

    def wanted(change: watchfiles.Change, path: str) -> bool:
        # The default output (site/output) sits inside the watched site/ folder,
        # and the rebuilds are made beside it.
        where = Path(path).resolve()
        return (
            ignored(change, path)
            and not where.is_relative_to(site_dir)
            and not where.is_relative_to(building)
        )

    watched = [
        settings_path.parent,
        first.content,
        first.theme,
        *first.overrides,
        Path(campaign_path),
    ]
    stop = stop or threading.Event()
    try:
        for changes in watchfiles.watch(
            *[p for p in watched if p.exists()],
            watch_filter=wanted,
            stop_event=stop,
            rust_timeout=FIGURES_EVERY_MS,
            yield_on_timeout=True,
        ):
            if changes:
                echo("Changed: " + ", ".join(sorted({Path(p).name for _, p in changes})))
                rebuild()
            else:
                # Nothing changed on disk: pledges may have arrived, so refresh the figures.
                try:
                    refresh_figures(site_dir, campaign_path, database_url, now())
                except FundraiserError as exc:
                    echo(f"Figures not refreshed: {exc}")
    except KeyboardInterrupt:
        echo("Stopped.")
    finally:
        httpd.shutdown()
        httpd.server_close()
