"""The ledger: one database (a SQLite file by default, PostgreSQL by URL).

schema: the tables. engine: opening it, read and write transactions. tx: one write (Tx).
journal: the hash-chained list of every change. migrations: schema versions,
forward only. bulk: statements through the driver for bulk and hot-path work.
reader: reading through the driver without SQLAlchemy (`fundraiser status`).

Import tables through the schema module (`schema.pledges`), never by name:
the domain's modules are called pledges, members, register too.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

# Loaded on first use (PEP 562): `fundraiser status` reads through ledger.reader
# and never pays for SQLAlchemy, which engine, journal and tx import.
if TYPE_CHECKING:
    from fundraiser.ledger.engine import Ledger, open_ledger
    from fundraiser.ledger.journal import GENESIS, ChainReport, canonical
    from fundraiser.ledger.reader import stamp, utcnow
    from fundraiser.ledger.tx import Tx

_HOMES = {
    "GENESIS": "journal",
    "ChainReport": "journal",
    "Ledger": "engine",
    "Tx": "tx",
    "canonical": "journal",
    "open_ledger": "engine",
    "stamp": "reader",
    "utcnow": "reader",
}
__all__ = [
    "GENESIS",
    "ChainReport",
    "Ledger",
    "Tx",
    "canonical",
    "open_ledger",
    "stamp",
    "utcnow",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:  # a submodule (`from fundraiser.ledger import schema`) is imported as usual
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"fundraiser.ledger.{home}"), name)
    globals()[name] = value
    return value
