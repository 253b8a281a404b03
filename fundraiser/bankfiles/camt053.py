"""ISO 20022 camt.053 (BankToCustomerStatement), any version from .001.02 on.

A statement is untrusted input. Its prolog is read first by expat with
defusedxml's rule: a DTD (the only place entities can be declared) is
refused before anything is expanded, so the body can hold no entity but
XML's five. The body is then parsed by the standard library's C parser
(defusedxml's own parsers are pure Python, 20 times slower on a
50,000-entry statement) into a tree, read entry by entry with one-tag finds
(a path walked in Python costs more than the parse). A 15 MB statement's
tree takes about 130 MB; a big file is read in a child process
(`bankfiles.aside`), so it is gone when the lines are sent back. Only booked
entries count (`Sts` BOOK); pending ones are noted and left out. Each
transaction in an entry (a batch booking has several) is one line.
"""

from __future__ import annotations

import functools
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
        # An amount's value by its text and currency as written: a statement
        # repeats a few amounts (the tiers) thousands of times.
        self.amounts: dict[tuple[str | None, str | None], tuple[int, str]] = {}

    def cached_amount(self, el: Element | None, where: str, tail: str) -> tuple[int, str]:
        """`amount`, each text and currency read once; `where` + `tail` names a bad one."""
        if el is None:
            return self.amount(el, where + tail)
        key = (el.text, el.get("Ccy"))
        found = self.amounts.get(key)
        if found is None:
            found = self.amounts[key] = self.amount(el, where + tail)
        return found

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

    def amount(self, el: Element | None, where: str) -> tuple[int, str]:
        raw = (el.text or "").strip() if el is not None else ""
        if el is None or not raw:
            raise fail(self.name, where, "has no amount", "download the statement again")
        currency = (el.get("Ccy") or "").strip().upper()
        if len(currency) != 3 or not currency.isalpha():
            raise fail(self.name, where, "has no currency (Ccy)", "download the statement again")
        try:
            exp = _exponent(currency)
            # "500.00", as banks write nearly every amount: digits, read as digits.
            whole, dot, part = raw.partition(".")
            plain = raw.isascii() and whole.isdigit() and (part.isdigit() or not dot)
            if plain and len(part) <= exp:
                return int(whole) * 10**exp + int(part.ljust(exp, "0") or "0"), currency
            number = Decimal(raw)
            minor = number.scaleb(exp)
            if minor != minor.to_integral_value() or number < 0:
                raise InvalidOperation
        except (InvalidOperation, MoneyError):
            raise fail(
                self.name,
                where,
                f"{raw!r} is not an amount in {currency}",
                "download the statement again",
            ) from None
        return int(minor), currency


#: A currency's exponent, looked up in CLDR once per statement, not once per entry.
_exponent = cache(exponent)


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
        t = _Tags(ns)
        document = XML(data)
        tags = {t: f"{{{ns}}}{t}" for t in ("Ntry", "Acct", "Bal")}
        for stmt in reader.findall(document, "BkToCstmrStmt/Stmt"):
            stmt_no += 1
            entry_no = 0
            for el in stmt:
                tag = el.tag
                if tag == tags["Ntry"]:
                    entry_no += 1
                    _entry(reader, t, el, f"Stmt[{stmt_no}]/Ntry[{entry_no}]", lines, notes)
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


class _Tags:
    """An entry's qualified tags, made once per namespace: an entry is read by
    direct one-tag finds (the C parser's fast path), 50,000 times in a big
    statement, with no path walked in Python."""

    def __init__(self, ns: str) -> None:
        q = functools.partial("{{{}}}{}".format, ns) if ns else str
        self.amt, self.ind, self.sts, self.cd = q("Amt"), q("CdtDbtInd"), q("Sts"), q("Cd")
        self.bookg, self.val, self.dt, self.dttm = q("BookgDt"), q("ValDt"), q("Dt"), q("DtTm")
        self.svcr, self.ntry_ref, self.ntry_inf = q("AcctSvcrRef"), q("NtryRef"), q("AddtlNtryInf")
        self.dtls, self.tx = q("NtryDtls"), q("TxDtls")
        self.amt_dtls, self.tx_amt, self.refs, self.tx_id = (
            q("AmtDtls"),
            q("TxAmt"),
            q("Refs"),
            q("TxId"),
        )
        self.e2e, self.tx_inf, self.parties, self.nm, self.pty = (
            q("EndToEndId"),
            q("AddtlTxInf"),
            q("RltdPties"),
            q("Nm"),
            q("Pty"),
        )
        self.party = {1: q("Dbtr"), -1: q("Cdtr")}
        self.rmt, self.ustrd, self.strd, self.cdtr_ref, self.ref = (
            q("RmtInf"),
            q("Ustrd"),
            q("Strd"),
            q("CdtrRefInf"),
            q("Ref"),
        )


def _text(el: Element | None) -> str:
    if el is None:
        return ""
    text = el.text
    return text.strip() if text else ""


def _first_text(el: Element | None, *tags: str) -> str:
    """The text of the first of `el`'s children named by `tags` that has some."""
    if el is None:
        return ""
    for tag in tags:
        found = _text(el.find(tag))
        if found:
            return found
    return ""


def _entry(
    r: _Reader, t: _Tags, el: Element, where: str, lines: list[Line], notes: list[str]
) -> None:
    # 50,000 entries in a big statement: finds bound once, texts read inline,
    # and a place named ("Stmt[1]/Ntry[7]/Amt") only when something is wrong there.
    find = el.find
    sts = find(t.sts)
    status = (_text(sts.find(t.cd)) or _text(sts)) if sts is not None else ""
    amount, currency = r.cached_amount(find(t.amt), where, "/Amt")
    found = find(t.ind)
    indicator = found.text.strip() if found is not None and found.text else ""
    if indicator not in ("CRDT", "DBIT"):
        raise fail(
            r.name, f"{where}/CdtDbtInd", f"is {indicator!r}", "download the statement again"
        )
    sign = 1 if indicator == "CRDT" else -1
    if status and status != "BOOK":
        notes.append(f"{where}: {status.lower()}, not booked yet: left out")
        return
    booked = (_first_text(find(t.bookg), t.dt, t.dttm) or _first_text(find(t.val), t.dt, t.dttm))[
        :10
    ]
    if not booked:
        raise fail(
            r.name, f"{where}/BookgDt", "has no booking date", "download the statement again"
        )
    entry_ref = _first_text(el, t.svcr, t.ntry_ref)
    found = find(t.ntry_inf)
    entry_info = found.text.strip() if found is not None and found.text else ""
    dtls = find(t.dtls)
    details = [] if dtls is None else dtls.findall(t.tx)
    if not details:
        lines.append(Line(where, entry_ref, booked, sign * amount, currency, one_line(entry_info)))
        return
    batch = len(details) > 1
    for n, tx in enumerate(details, start=1):
        here = f"{where}/NtryDtls/TxDtls[{n}]" if batch else f"{where}/NtryDtls/TxDtls"
        find = tx.find
        tx_amount_el = find(t.amt)
        if tx_amount_el is None:
            tx_amt = find(t.amt_dtls)
            tx_amt = None if tx_amt is None else tx_amt.find(t.tx_amt)
            tx_amount_el = None if tx_amt is None else tx_amt.find(t.amt)
        if tx_amount_el is not None:
            tx_amount, tx_currency = r.cached_amount(tx_amount_el, here, "/Amt")
        elif not batch:
            tx_amount, tx_currency = amount, currency
        else:
            raise fail(
                r.name,
                f"{here}/Amt",
                "a batch entry's transaction has no amount",
                "download the statement again",
            )
        tx_sign = sign
        found = find(t.ind)
        if found is not None and found.text:
            tx_indicator = found.text.strip()
            if tx_indicator in ("CRDT", "DBIT"):
                tx_sign = 1 if tx_indicator == "CRDT" else -1
        refs = find(t.refs)
        bank_id = _first_text(refs, t.svcr, t.tx_id)
        if not bank_id and entry_ref:
            bank_id = f"{entry_ref}/{n}" if batch else entry_ref
        payer = ""
        parties = find(t.parties)
        party = None if parties is None else parties.find(t.party[tx_sign])
        if party is not None:
            pty = party.find(t.pty)
            payer = _text(party.find(t.nm)) or (_text(pty.find(t.nm)) if pty is not None else "")
        parts = []
        rmt = find(t.rmt)
        if rmt is not None:
            parts = [_text(u) for u in rmt.findall(t.ustrd)]
            strd = rmt.find(t.strd)
            cdtr = None if strd is None else strd.find(t.cdtr_ref)
            if cdtr is not None:
                parts.extend(_text(x) for x in cdtr.findall(t.ref))
        if refs is not None:
            parts.append(_text(refs.find(t.e2e)))
        found = find(t.tx_inf)
        if found is not None:
            parts.append(_text(found))
        parts.append(entry_info)
        text = one_line(" ".join([x for x in parts if x and x != "NOTPROVIDED"]))
        lines.append(Line(here, bank_id, booked, tx_sign * tx_amount, tx_currency, text, payer))
