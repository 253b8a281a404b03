"""The banks' file formats, read into `bank.statement` values and written from refunds.

Reading: camt.053 (ISO 20022 XML, with defusedxml: a statement is untrusted
input, so no DTD and no entity expansion), MT940 (the `mt-940` package), OFX
(`ofxtools`) and CSV (a column mapping from campaign.toml's [bank.csv]).
Writing: SEPA credit transfers (pain.001.001.03, with `sepaxml`) and the UK
banks' bulk-payment CSV.
"""

from __future__ import annotations

from pathlib import Path

from fundraiser.bank.statement import FORMATS, Statement, fail
from fundraiser.config import BankCsv

MAX_BYTES = 512 * 1024 * 1024  # a year of a busy account's statements is far less


def detect(path: Path, head: bytes) -> str:
    """The format of a statement from its first bytes (and, for CSV, its name)."""
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith(b"<?xml") or text.startswith(b"<document"):
        if b"camt.053" in head:
            return "camt053"
        if b"<ofx" in text:
            return "ofx"
    if b"ofxheader" in text[:200] or text.startswith(b"<ofx"):
        return "ofx"
    if b":20:" in text and (b":60f:" in text or b":60m:" in text or b":25:" in text):
        return "mt940"
    if path.suffix.lower() in (".csv", ".tsv", ".txt") and b"<" not in text[:1]:
        return "csv"
    if text.startswith(b"<?xml") or text.startswith(b"<"):
        raise fail(
            path.name,
            "",
            "is XML but not a camt.053 statement (an ISO 20022 end-of-day statement)",
            "download the camt.053 statement from the bank, or pass --format",
        )
    raise fail(
        path.name,
        "",
        "is not a statement format this tool reads",
        f"pass --format with one of {', '.join(FORMATS)} (CSV needs [bank.csv] in campaign.toml)",
    )


def read(
    path: Path,
    fmt: str | None = None,
    *,
    csv_settings: BankCsv | None = None,
    currency: str,
    encoding: str | None = None,
) -> Statement:
    """Read a statement file; StatementError names the file, the line or element, and the fix."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise fail(path.name, "", f"is {size} bytes", "split it by month and import each")
        data = path.read_bytes()
    except FileNotFoundError:
        raise fail(str(path), "", "not found", "check the path") from None
    except IsADirectoryError:
        raise fail(str(path), "", "is a folder", "give the statement file itself") from None
    except OSError as exc:
        raise fail(
            str(path), "", f"cannot be read ({exc.strerror})", "check its permissions"
        ) from None
    if not data.strip():
        raise fail(path.name, "", "is empty", "download the statement again")
    fmt = fmt or detect(path, data[:4096])
    if fmt == "camt053":
        from fundraiser.bankfiles import camt053

        return camt053.read(path.name, data)
    if fmt == "mt940":
        from fundraiser.bankfiles import mt940file

        return mt940file.read(path.name, data, encoding or "utf-8")
    if fmt == "ofx":
        from fundraiser.bankfiles import ofx

        return ofx.read(path.name, data)
    if fmt == "csv":
        from fundraiser.bankfiles import csvfile

        if csv_settings is None:
            raise fail(
                path.name,
                "",
                "is CSV, and campaign.toml has no [bank.csv] saying which column holds what",
                'add [bank.csv] with date, amount and text, e.g. date = "Date", '
                'amount = "Amount", text = ["Reference"]',
            )
        return csvfile.read(path.name, data, csv_settings, currency, encoding)
    raise fail(
        path.name, "--format", f"{fmt!r} is not a format", f"use one of {', '.join(FORMATS)}"
    )


def decode(name: str, data: bytes, encoding: str) -> str:
    """Text of a statement; a wrong encoding names the line and the fix."""
    try:
        return data.decode(encoding).removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise fail(
            name,
            f"line {line}",
            f"is not {encoding} text (byte 0x{data[exc.start]:02X})",
            "pass --encoding with the bank's encoding, e.g. --encoding cp1252 (or latin-1)",
        ) from None
    except LookupError:
        raise fail(
            name, "--encoding", f"{encoding!r} is not an encoding", "e.g. utf-8, cp1252, latin-1"
        ) from None
