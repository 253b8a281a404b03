"""What every command shares: the campaign, the ledger, the clock, output.

Errors from the modules below are converted here, in one place: a user's
mistake becomes click.UsageError (exit 2), any other expected failure, and a
database that fails under a command (full disk, lost server), becomes
click.ClickException (exit 1). Unexpected errors keep their traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import click

from fundraiser.errors import FundraiserError, ProblemsError

# SQLAlchemy, the campaign's checks (Babel, the bank registries) and rich load
# when a command first uses them: `fundraiser --version` and `--help` need none.
if TYPE_CHECKING:
    from rich.console import Console

    from fundraiser.config import Campaign
    from fundraiser.ledger import Ledger

P = ParamSpec("P")
R = TypeVar("R")


class FundraiserUsageError(click.UsageError):
    """A user's mistake, printed without the usage banner (exit 2)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


@dataclass
class App:
    campaign_path: Path
    db_url: str | None
    _campaign: Campaign | None = None
    _ledger: Ledger | None = None
    _out: Console | None = None
    _err: Console | None = None

    # rich loads on first use: a command that prints JSON (a script's, or a
    # 100,000-pledge benchmark step) never pays for it.
    @property
    def out(self) -> Console:
        if self._out is None:
            from rich.console import Console

            self._out = Console(soft_wrap=True)
        return self._out

    @property
    def err(self) -> Console:
        if self._err is None:
            from rich.console import Console

            self._err = Console(stderr=True, soft_wrap=True)
        return self._err

    @property
    def campaign(self) -> Campaign:
        if self._campaign is None:
            from fundraiser.config import load_campaign

            self._campaign = load_campaign(self.campaign_path)
        return self._campaign

    @property
    def database_url(self) -> str:
        """The ledger's URL. Only the default ledger beside campaign.toml is made on
        first use: a named one that does not exist is a mistyped path, refused."""
        from fundraiser.ledger.reader import sqlite_path

        default = self.campaign.default_database_url()
        if self.db_url is None:
            return default
        path, usual = sqlite_path(self.db_url), sqlite_path(default)
        if path is not None and not path.exists() and path.resolve() != (usual or path).resolve():
            raise FundraiserUsageError(
                f"--db (or DATABASE_URL) names {path}, and there is no ledger there: check "
                f"the path. A new ledger is made only at {usual} beside campaign.toml "
                "(leave out --db), or by `fundraiser init`"
            )
        return self.db_url

    @property
    def ledger(self) -> Ledger:
        if self._ledger is None:
            from fundraiser.ledger import open_ledger

            self._ledger = open_ledger(self.database_url)
            click.get_current_context().call_on_close(self._ledger.dispose)
        return self._ledger

    def now(self) -> datetime:
        """The clock; FUNDRAISER_NOW (ISO 8601 with offset) rehearses a later date."""
        override = os.environ.get("FUNDRAISER_NOW")
        if override:
            try:
                moment = datetime.fromisoformat(override)
            except ValueError:
                raise FundraiserUsageError(
                    f"FUNDRAISER_NOW={override!r} is not a date and time: "
                    "use e.g. 2027-03-01T09:00:00+00:00"
                ) from None
            if moment.tzinfo is None:
                raise FundraiserUsageError("FUNDRAISER_NOW needs a UTC offset, e.g. +00:00")
            return moment
        return datetime.now(UTC)

    def stored_now(self) -> str:
        from fundraiser.ledger import stamp

        return stamp(self.now())

    def today(self) -> str:
        """Today's date in the campaign's time zone (register dates)."""
        from zoneinfo import ZoneInfo

        return self.now().astimezone(ZoneInfo(self.campaign.campaign.timezone)).date().isoformat()

    def local_date(self, moment: datetime | str) -> str:
        """'28 February 2027': a day as the campaign's people write it, in its time zone."""
        from fundraiser.formatting import babel_locale, local_date

        campaign = self.campaign
        return local_date(
            moment,
            zone=campaign.campaign.timezone,
            locale=babel_locale(campaign.coop.language),
        )

    def local_datetime(self, moment: datetime | str) -> str:
        """'28 February 2027, 18:00 GMT', in the campaign's time zone."""
        from fundraiser.formatting import babel_locale, local_datetime

        campaign = self.campaign
        return local_datetime(
            moment,
            zone=campaign.campaign.timezone,
            locale=babel_locale(campaign.coop.language),
        )

    def print_json(self, data: Any) -> None:
        # Indented, keys sorted, for a person at a terminal; compact for scripts,
        # where the C encoder (unused when indenting) writes 80,000 allotments ten
        # times faster. Key order is our fixed insertion order, the same each run.
        person = sys.stdout.isatty()
        text = json.dumps(data, indent=2 if person else None, sort_keys=person, ensure_ascii=False)
        click.echo(text)


pass_app = click.make_pass_decorator(App)


@contextmanager
def converted_errors() -> Iterator[None]:
    try:
        yield
    except ProblemsError as exc:
        raise FundraiserUsageError(str(exc)) from None
    except FundraiserError as exc:
        if exc.user_error:
            raise FundraiserUsageError(str(exc)) from None
        raise click.ClickException(str(exc)) from None
    except Exception as exc:
        refusal = _database_error(exc)
        if refusal is None:
            raise
        # A full disk, a lost server, a trigger: every change is one
        # transaction, so the one that met it was rolled back whole.
        raise click.ClickException(
            f"the ledger's database failed: {refusal}. A change under way was rolled "
            "back whole; fix the database and run the command again."
        ) from None


def _database_error(exc: Exception) -> Exception | None:
    """The driver's own error, if this is one (through SQLAlchemy or straight from it)."""
    sa_exc = sys.modules.get("sqlalchemy.exc")  # no ledger was opened without it
    if sa_exc is not None and isinstance(exc, sa_exc.DBAPIError):
        return exc.orig  # type: ignore[no-any-return]  # Any from sys.modules
    sqlite3 = sys.modules.get("sqlite3")  # loaded with a SQLite ledger
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        return exc  # type: ignore[no-any-return]  # Any from sys.modules
    psycopg = sys.modules.get("psycopg")  # loaded only when a PostgreSQL ledger is open
    if psycopg is not None and isinstance(exc, psycopg.Error):
        return exc  # type: ignore[no-any-return]  # psycopg is Any from sys.modules
    return None


def handles_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Decorator for commands: expected failures become one clean message."""

    @wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        with converted_errors():
            return func(*args, **kwargs)

    return wrapper


def plural(count: int, one: str, many: str | None = None) -> str:
    """'1 pledge', '2 pledges', '1,200 register entries': a count with its noun."""
    return f"{count:,} {one if count == 1 else many or one + 's'}"


def listing(ids: Iterable[int], one: str, many: str | None = None) -> str:
    """'pledge 3', 'pledges 3 and 5', 'pledges 3, 5 and 7' (in order)."""
    items = [str(i) for i in sorted(ids)]
    if len(items) == 1:
        return f"{one} {items[0]}"
    head = ", ".join(items[:-1])
    return f"{many or one + 's'} {head} and {items[-1]}" if items else ""


def span(first: int, last: int, one: str, many: str | None = None) -> str:
    """'member 1', or 'members 1 to 4'."""
    if first == last:
        return f"{one} {first}"
    return f"{many or one + 's'} {first} to {last}"


def fail(message: str, *, usage: bool = True) -> None:
    if usage:
        raise FundraiserUsageError(message)
    raise click.ClickException(message)


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
