"""The ledger: one database (a SQLite file by default, PostgreSQL by URL).

schema: the tables. engine: opening it, read and write transactions. tx: one write (Tx).
journal: the hash-chained list of every change. migrations: schema versions,
forward only. bulk: statements through the driver for bulk and hot-path work.

Import tables through the schema module (`schema.pledges`), never by name:
the domain's modules are called pledges, members, register too.
"""

from fundraiser.ledger.engine import Ledger, open_ledger, stamp, utcnow
from fundraiser.ledger.journal import GENESIS, ChainReport, canonical
from fundraiser.ledger.tx import Tx

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
