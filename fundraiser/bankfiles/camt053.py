"""ISO 20022 camt.053 (BankToCustomerStatement), any version from .001.02 on.

A statement is untrusted input. Its prolog is read first by expat with
defusedxml's rule: a DTD (the only place entities can be declared) is
refused before anything is expanded, so the body can hold no entity but
XML's five. The body is then streamed through the standard library's C
parser (defusedxml's own parsers are pure Python, 20 times slower on a
50,000-entry statement); entries are read as they pass and dropped, so the
statement never sits whole in memory. Only booked entries count (`Sts`
BOOK); pending ones are noted and left out. Each transaction in an entry (a
batch booking has several) is one line.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from functools import cache
from xml.etree.ElementTree import XML, Element, ParseError
from xml.parsers import expat

from defusedxml import DTDForbidden

from fundraiser.bank.statement import Line, Statement, fail, one_line, with_ids
from fundraiser.errors import MoneyError
from fundraiser.money import Money, exponent


def _local(tag: str) -> str:
    return tag.rpartition("}")[2]


@cache
def _qualified(ns: str, steps: str) -> tuple[str, ...]:
    """Each step's qualified tag: one-tag finds stay in the C parser's fast path."""
    return tuple(f"{{{ns}}}{s}" if ns else s for s in steps.split("/"))


class _Root(Exception):
    def __init__(self, tag: str) -> None:
        self.tag = tag


def _prolog(name: str, data: bytes) -> str:
    """The root element's tag ("{namespace}Document"); refuses a DTD (defusedxml's rule)."""
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse(*_: object) -> None:
        raise DTDForbidden("", "", "")

    def root(tag: str, _attrs: object) -> None:
        raise _Root(tag)

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.StartElementHandler = root
    try:
        for start in range(0, len(data), 65536):
            parser.Parse(data[start : start + 65536], False)
        parser.Parse(b"", True)
    except _Root as found:
        uri, _, local = found.tag.rpartition("}")
        return f"{{{uri}}}{local}" if uri else local
    except expat.ExpatError as exc:
        raise ParseError(str(exc)) from None
    raise ParseError("no element found")


class _Reader:
    def __init__(self, name: str, ns: str) -> None:
        self.name = name
        self.ns = ns

    def find(self, el: Element, steps: str) -> Element | None:
        found = el
        for tag in _qualified(self.ns, steps):
            step = found.find(tag)
            if step is None:
                return None
            found = step
        return found

    def findall(self, el: Element, steps: str) -> list[Element]:
        *parents, last = _qualified(self.ns, steps)
        found = el
        for tag in parents:
            step = found.find(tag)
            if step is None:
                return []
            found = step
        return found.findall(last)

    def text(self, el: Element, *options: str) -> str:
        for steps in options:
            found = self.find(el, steps)
            if found is not None and found.text and found.text.strip():
                return found.text.strip()
        return ""

    def all_text(self, el: Element, steps: str) -> list[str]:
        return [f.text.strip() for f in self.findall(el, steps) if f.text and f.text.strip()]

    def amount(self, el: Element | None, where: str) -> tuple[int, str]:
        if el is None or not (el.text or "").strip():
            raise fail(self.name, where, "has no amount", "download the statement again")
        currency = (el.get("Ccy") or "").strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise fail(self.name, where, "has no currency (Ccy)", "download the statement again")
        try:
            number = Decimal((el.text or "").strip())
            exp = exponent(currency)
            minor = number.scaleb(exp)
            if minor != minor.to_integral_value() or number < 0:
                raise InvalidOperation
        except (InvalidOperation, MoneyError):
            raise fail(
                self.name,
                where,
                f"{(el.text or '').strip()!r} is not an amount in {currency}",
                "download the statement again",
            ) from None
        return int(minor), currency


def read(name: str, data: bytes) -> Statement:
    account = currency = ""
    lines: list[Line] = []
    notes: list[str] = []
    balances: dict[str, int] = {}
    stmt_no = entry_no = 0
    try:
        root = _prolog(name, data)
        ns = root[1:].partition("}")[0] if root.startswith("{") else ""
        if "camt.053" not in ns:
            raise fail(
                name,
                f"<{_local(root)}>",
                f"is an XML document of kind {ns or 'unknown'!r}, not a camt.053 statement",
                "download the camt.053 (end-of-day) statement from the bank",
            )
        reader = _Reader(name, ns)
        document = XML(data)
        tags = {t: f"{{{ns}}}{t}" for t in ("Ntry", "Acct", "Bal")}
        for stmt in reader.findall(document, "BkToCstmrStmt/Stmt"):
            stmt_no += 1
            entry_no = 0
            for el in stmt:
                tag = el.tag
                if tag == tags["Ntry"]:
                    entry_no += 1
                    _entry(reader, el, f"Stmt[{stmt_no}]/Ntry[{entry_no}]", lines, notes)
                elif tag == tags["Acct"]:
                    this = reader.text(el, "Id/IBAN", "Id/Othr/Id")
                    if account and this and this != account:
                        raise fail(
                            name,
                            f"Stmt[{stmt_no}]/Acct",
                            f"is another account ({this[-4:]} after {account[-4:]})",
                            "import each account's statement on its own",
                        )
                    account = account or this
                    currency = currency or reader.text(el, "Ccy").upper()
                elif tag == tags["Bal"]:
                    code = reader.text(el, "Tp/CdOrPrtry/Cd")
                    where = f"Stmt[{stmt_no}]/Bal/Amt"
                    amount, ccy = reader.amount(reader.find(el, "Amt"), where)
                    sign = -1 if reader.text(el, "CdtDbtInd") == "DBIT" else 1
                    currency = currency or ccy
                    if stmt_no == 1 and code in ("OPBD", "PRCD") and "open" not in balances:
                        balances["open"] = sign * amount
                    if code == "CLBD":
                        balances["close"] = sign * amount
            stmt.clear()  # its entries are lines now: let the tree go as we read
    except ParseError as exc:
        line, column = getattr(exc, "position", (0, 0))
        where = f"line {line}, column {column}" if line else "the XML"
        raise fail(
            name,
            where,
            f"the XML is broken or ends early ({str(exc).split(':')[0]})",
            "download the statement again: the file is cut short or damaged",
        ) from None
    except DTDForbidden:
        raise fail(
            name,
            "the prolog",
            "declares a DTD or entities, which bank statements never do",
            "download the statement from the bank again; do not import a file from elsewhere",
        ) from None
    if stmt_no == 0:
        raise fail(name, "", "holds no <Stmt>", "download the camt.053 statement again")
    if not currency:
        raise fail(
            name, "Stmt/Acct/Ccy", "the account's currency is not given", "download it again"
        )
    if "open" in balances and "close" in balances:
        moved = sum(line.amount for line in lines if line.currency == currency)
        if balances["open"] + moved != balances["close"]:
            raise fail(
                name,
                "Stmt/Bal",
                f"the opening balance plus the booked entries "
                f"({Money(balances['open'] + moved, currency).format()}) is not the closing "
                f"balance ({Money(balances['close'], currency).format()})",
                "the statement is incomplete: download it again",
            )
    account = account or "camt053"
    return Statement(name, "camt053", account, currency, with_ids(account, lines), tuple(notes))


def _entry(r: _Reader, el: Element, where: str, lines: list[Line], notes: list[str]) -> None:
    status = r.text(el, "Sts/Cd", "Sts")
    amount, currency = r.amount(r.find(el, "Amt"), f"{where}/Amt")
    indicator = r.text(el, "CdtDbtInd")
    if indicator not in ("CRDT", "DBIT"):
        raise fail(
            name_of(r), f"{where}/CdtDbtInd", f"is {indicator!r}", "download the statement again"
        )
    sign = 1 if indicator == "CRDT" else -1
    if status and status != "BOOK":
        notes.append(f"{where}: {status.lower()}, not booked yet: left out")
        return
    booked = r.text(el, "BookgDt/Dt", "BookgDt/DtTm", "ValDt/Dt", "ValDt/DtTm")[:10]
    if not booked:
        raise fail(
            name_of(r), f"{where}/BookgDt", "has no booking date", "download the statement again"
        )
    entry_ref = r.text(el, "AcctSvcrRef", "NtryRef")
    entry_info = r.text(el, "AddtlNtryInf")
    details = r.findall(el, "NtryDtls/TxDtls")
    if not details:
        lines.append(
            Line(where, entry_ref, booked, sign * amount, currency, one_line(entry_info), "")
        )
        return
    for n, tx in enumerate(details, start=1):
        here = f"{where}/NtryDtls/TxDtls[{n}]" if len(details) > 1 else f"{where}/NtryDtls/TxDtls"
        tx_amount_el = r.find(tx, "Amt")
        if tx_amount_el is None:
            tx_amount_el = r.find(tx, "AmtDtls/TxAmt/Amt")
        if tx_amount_el is not None:
            tx_amount, tx_currency = r.amount(tx_amount_el, f"{here}/Amt")
        elif len(details) == 1:
            tx_amount, tx_currency = amount, currency
        else:
            raise fail(
                name_of(r),
                f"{here}/Amt",
                "a batch entry's transaction has no amount",
                "download the statement again",
            )
        tx_sign = sign
        tx_indicator = r.text(tx, "CdtDbtInd")
        if tx_indicator in ("CRDT", "DBIT"):
            tx_sign = 1 if tx_indicator == "CRDT" else -1
        bank_id = r.text(tx, "Refs/AcctSvcrRef", "Refs/TxId")
        if not bank_id and entry_ref:
            bank_id = entry_ref if len(details) == 1 else f"{entry_ref}/{n}"
        party = "Dbtr" if tx_sign > 0 else "Cdtr"
        payer = r.text(tx, f"RltdPties/{party}/Nm", f"RltdPties/{party}/Pty/Nm")
        parts = [
            *r.all_text(tx, "RmtInf/Ustrd"),
            *r.all_text(tx, "RmtInf/Strd/CdtrRefInf/Ref"),
            r.text(tx, "Refs/EndToEndId"),
            r.text(tx, "AddtlTxInf"),
            entry_info,
        ]
        text = one_line(" ".join(p for p in parts if p and p != "NOTPROVIDED"))
        lines.append(Line(here, bank_id, booked, tx_sign * tx_amount, tx_currency, text, payer))


def name_of(r: _Reader) -> str:
    return r.name
