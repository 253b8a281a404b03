"""Shared fixtures: real SQLite files, a real PostgreSQL server, a CLI runner."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from fundraiser.cli import main

ROOT = Path(__file__).resolve().parent.parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def campaign_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the example campaign in its own folder (ledger under var/).

    Marked `keep_it_all`, the campaign is keep-it-all: for tests of what happens
    after shares are issued, which an all-or-nothing campaign allows only once it
    has closed with its goal met (tests/test_closing.py tests that rule).
    """
    shutil.copy(ROOT / "campaign.toml", tmp_path / "campaign.toml")
    if request.node.get_closest_marker("keep_it_all"):
        path = tmp_path / "campaign.toml"
        text = path.read_text(encoding="utf-8")
        assert 'mode = "all-or-nothing"' in text
        path.write_text(text.replace('mode = "all-or-nothing"', 'mode = "keep-it-all"'), "utf-8")
    return tmp_path


def proved(url: str, request: pytest.FixtureRequest) -> None:
    """Every ledger a test leaves behind equals the replay of its journal.

    The check the journal makes possible (`fundraiser ledger verify`), run after
    every test that used a ledger: a write that bypassed the journal fails here.
    Tests that edit tables behind the journal's back on purpose are marked
    `tampers`.
    """
    from fundraiser.ledger import audit, open_ledger

    if request.node.get_closest_marker("tampers"):
        return
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return
    ledger = open_ledger(url)
    try:
        verdict = audit.verify(ledger)
    finally:
        ledger.dispose()
    tables = verdict.tables
    assert tables is None or tables.ok, "\n".join(verdict.lines())


@pytest.fixture
def sqlite_url(campaign_dir: Path, request: pytest.FixtureRequest) -> Iterator[str]:
    url = f"sqlite:///{campaign_dir / 'var' / 'ledger.sqlite'}"
    yield url
    proved(url, request)


class Cli:
    """Runs `fundraiser` in-process against one campaign and one ledger."""

    def __init__(self, campaign: Path, db_url: str) -> None:
        self.campaign = campaign
        self.db_url = db_url
        self.runner = CliRunner()

    def __call__(
        self, *args: str, input: str | None = None, env: dict[str, str] | None = None
    ) -> Result:
        full = ["--campaign", str(self.campaign), "--db", self.db_url, *args]
        environment = {"FUNDRAISER_NOW": "2026-12-10T12:00:00+00:00", **(env or {})}
        return self.runner.invoke(main, full, input=input, env=environment)

    def ok(self, *args: str, **kwargs: object) -> Result:
        result = self(*args, **kwargs)  # type: ignore[arg-type]
        assert result.exit_code == 0, (result.output, result.exception)
        return result


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="fundraiser-pg-"))
        self.port = free_port()
        self.as_root = os.geteuid() == 0

    def _run(self, *cmd: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        subprocess.run([*prefix, *cmd], check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self.as_root:
            shutil.chown(self.dir, "postgres")
        data = self.dir / "data"
        self._run(
            str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.dir / "log"),
            "-w",
            "-o",
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off",
            "start",
        )

    def stop(self) -> None:
        try:
            self._run(
                str(PG_BIN / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop"
            )
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(
            f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throwaway PostgreSQL server on loopback; must run (not skip) in CI."""
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL binaries not found under {PG_BIN}")
        pytest.skip("PostgreSQL 15 binaries not installed")
    server = PostgresServer()
    try:
        server.start()
    except (subprocess.CalledProcessError, OSError) as exc:
        log = server.dir / "log"
        detail = log.read_text() if log.exists() else getattr(exc, "stderr", b"")
        server.stop()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL did not start: {exc}\n{detail!r}")
        pytest.skip(f"PostgreSQL did not start: {exc}")
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, sqlite_url: str) -> Iterator[str]:
    """Each ledger test runs on a real SQLite file and on a real PostgreSQL database."""
    if request.param == "sqlite":
        yield sqlite_url
        return
    server: PostgresServer = request.getfixturevalue("postgres")
    url = server.new_database()
    yield url
    proved(url, request)


@pytest.fixture
def cli(campaign_dir: Path, db_url: str) -> Cli:
    return Cli(campaign_dir / "campaign.toml", db_url)


@pytest.fixture
def sqlite_cli(campaign_dir: Path, sqlite_url: str) -> Cli:
    return Cli(campaign_dir / "campaign.toml", sqlite_url)
