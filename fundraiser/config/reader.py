"""Reading typed values out of parsed TOML: every problem collected with its key and
its fix, and every key the loader never asked for reported as unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypeVar

from fundraiser.config.checks import Invalid, did_you_mean
from fundraiser.errors import MoneyError, Problem
from fundraiser.money import Money, parse

T = TypeVar("T")


class Table:
    """One TOML table, and the keys the loader asked of it: any other key is unknown."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name = name  # how problems name it: "coop", "rounds.seed", "tiers[2]", "" at the top
        self.data = data
        self.asked: dict[str, None] = {}  # ordered: the schema, in the order it is read

    def __bool__(self) -> bool:
        return bool(self.data)

    def where(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def get(self, key: str) -> Any:
        self.asked[key] = None
        return self.data.get(key)


class Reader:
    """Reads typed values out of parsed TOML and collects problems."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.problems: list[Problem] = []

    def problem(self, key: str, message: str, fix: str = "") -> None:
        self.problems.append(Problem(f"{self.path.name}: {key}", message, fix))

    def table(self, parent: Table, key: str, *, required: bool = True) -> Table:
        value = parent.get(key)
        name = parent.where(key)
        if value is None:
            if required:
                self.problem(f"[{name}]", "the table is missing", f"add a [{name}] table")
            return Table(name, {})
        if not isinstance(value, dict):
            self.problem(name, "must be a table", f"write it as [{name}]")
            return Table(name, {})
        if not value and required:
            self.problem(f"[{name}]", "the table is empty", f"fill in the [{name}] table")
        return Table(name, value)

    def unknown_keys(self, table: Table, *, what: str = "setting") -> None:
        """Every key the loader did not ask for, with the nearest one it knows."""
        for key in table.data:
            if key in table.asked:
                continue
            known = list(table.asked)
            guess = did_you_mean(key, known)
            if guess is not None:
                fix = f"did you mean `{guess}`?"
            elif table.name:
                fix = f"remove it; [{table.name}] takes {', '.join(known)}"
            else:
                fix = f"remove it; the tables are {', '.join(known)}"
            self.problem(table.where(key), f"is not a known {what}", fix)

    def get(
        self,
        table: Table,
        key: str,
        kind: type[T],
        *,
        required: bool = True,
        example: str = "",
    ) -> T | None:
        value = table.get(key)
        name = table.where(key)
        hint = f", e.g. {key} = {example}" if example else ""
        if value is None:
            if required:
                self.problem(name, "is missing", f"add it{hint}")
            return None
        if (kind is int and isinstance(value, bool)) or not isinstance(value, kind):
            self.problem(name, f"must be {kind_name(kind)}, not {value!r}", f"write it{hint}")
            return None
        if isinstance(value, str) and not value.strip() and required:
            self.problem(name, "is empty", f"fill it in{hint}")
            return None
        return value

    def text(
        self,
        table: Table,
        key: str,
        *,
        required: bool = True,
        example: str = "",
        check: Callable[[str], str] | None = None,
    ) -> str | None:
        """Text, trimmed; empty optional text is None. `check` refuses bad values."""
        value = self.get(table, key, str, required=required, example=example)
        if value is None or not value.strip():
            return None
        if check is None:
            return value.strip()
        try:
            return check(value)
        except Invalid as exc:
            self.problem(table.where(key), exc.message, exc.fix)
            return None

    def money(
        self,
        table: Table,
        key: str,
        currency: str | None,
        *,
        required: bool = True,
    ) -> Money | None:
        value = table.get(key)
        name = table.where(key)
        example = '"250.00"'
        if value is None:
            if required:
                self.problem(name, "is missing", f"add it, e.g. {key} = {example}")
            return None
        if currency is None:
            return None  # the currency problem is already reported
        if isinstance(value, float):
            self.problem(
                name,
                f"{value!r} is a floating-point number",
                f"write amounts as text, e.g. {key} = {example}",
            )
            return None
        if isinstance(value, bool) or not isinstance(value, int | str):
            self.problem(name, f"must be an amount, not {value!r}", f"e.g. {key} = {example}")
            return None
        try:
            return parse(str(value), currency)
        except MoneyError as exc:
            self.problem(name, str(exc), f"e.g. {key} = {example}")
            return None

    def moment(self, table: Table, key: str) -> datetime | None:
        value = table.get(key)
        name = table.where(key)
        example = f"{key} = 2027-03-31T18:00:00+01:00"
        if value is None:
            self.problem(name, "is missing", f"add it, e.g. {example}")
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value.strip())
            except ValueError:
                self.problem(name, f"{value!r} is not a date and time", f"e.g. {example}")
                return None
        if isinstance(value, date) and not isinstance(value, datetime):
            self.problem(
                name, "is a date without a time and time zone", f"give both, e.g. {example}"
            )
            return None
        if not isinstance(value, datetime):
            self.problem(name, f"must be a date and time, not {value!r}", f"e.g. {example}")
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            self.problem(
                name, "has no time zone", f"add the UTC offset, e.g. {example} (or Z for UTC)"
            )
            return None
        return value

    def choice(
        self,
        table: Table,
        key: str,
        enum_type: Callable[[str], T],
        choices: list[str],
    ) -> T | None:
        raw = self.get(table, key, str, example=f'"{choices[0]}"')
        if raw is None:
            return None
        try:
            return enum_type(raw.strip())
        except ValueError:
            self.problem(
                table.where(key),
                f"{raw!r} is not one of {', '.join(choices)}",
                f'choose one, e.g. {key} = "{choices[0]}"',
            )
            return None

    def count(self, table: Table, key: str, *, minimum: int, required: bool = True) -> int | None:
        value = self.get(table, key, int, required=required, example=str(max(minimum, 1)))
        if value is not None and value < minimum:
            self.problem(
                table.where(key),
                f"must be at least {minimum}, not {value}",
                "use a whole number in range",
            )
            return None
        return value


def kind_name(kind: type[Any]) -> str:
    return {
        str: "text",
        int: "a whole number",
        bool: "true or false",
        dict: "a table",
        list: "a list",
    }.get(kind, kind.__name__)
