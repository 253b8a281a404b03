"""Share certificates (one PDF per certificate) and share-account statements.

A certificate is made from an HTML template and a stylesheet rendered by
WeasyPrint. The output depends only on the entry, the member and the co-op's
details: no clock, no random id. So rerunning `fundraiser certificates make`
gives byte-identical files for unchanged entries, and unchanged files are not
rewritten at all. A certificate taken back (its shares withdrawn or cancelled)
is made again with the date and entry that cancelled it, and kept.

When the co-op's rules say certificates are not issued (`coop.certificates =
false`), each member gets a share-account statement instead: every entry in
their account with a running balance, dated by the latest entry.

A certificate is one page, A4 or US Letter (see `paper_for`), with everything
inside its double border. Names and addresses are text, never markup (the
templates autoescape), and an address keeps the lines it was written in.

Both are in the campaign's language (fundraiser.i18n): the templates' words
from the kit's catalogs, money and dates formatted for its locale
(fundraiser.formatting). The language and its catalogs are part of what a
document is made from, so a new translation remakes the documents it changes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from fundraiser import i18n
from fundraiser.config import Campaign, Coop
from fundraiser.formatting import local_date, money
from fundraiser.i18n import N_
from fundraiser.ledger import schema
from fundraiser.money import Money
from fundraiser.register import EntryKind

CERTIFICATE = "certificates/certificate.html"
STATEMENT = "certificates/statement.html"
STYLESHEET = "certificates/style.css"

# Below this many documents a process pool costs more to start than it saves.
POOL_THRESHOLD = 200

#: The countries whose paper is US Letter (CLDR's paperSize data, ISO 3166 codes);
#: the rest of the world prints on A4.
LETTER_COUNTRIES = frozenset(
    {"BZ", "CA", "CL", "CO", "CR", "GT", "MX", "NI", "PA", "PH", "PR", "SV", "US", "VE"}
)
#: Without coop.country, the currency decides: the main Letter countries' currencies.
LETTER_CURRENCIES = frozenset({"USD", "CAD", "MXN", "PHP", "CLP", "COP"})
#: The certificate's sheet, landscape: (CSS page size, its height in mm less the margins).
PAPER = {"A4": ("A4 landscape", 186.0), "letter": ("letter landscape", 191.9)}
#: An address with more lines than this keeps the rest on its last line, after commas.
ADDRESS_LINES = 6


def paper_for(campaign: Campaign) -> str:
    """'letter' where the co-op's country prints on US Letter, else 'A4'.

    coop.country decides ("US", "GB-SCT": the part before the dash); a campaign
    without one goes by its currency (USD, CAD, MXN, PHP, CLP, COP: Letter).
    """
    country = (campaign.coop.country or "").split("-")[0].upper()
    if country:
        return "letter" if country in LETTER_COUNTRIES else "A4"
    return "letter" if campaign.currency in LETTER_CURRENCIES else "A4"


def address_lines(address: str, most: int = ADDRESS_LINES) -> list[str]:
    """The lines an address was written in, blank ones dropped and spaces tidied.

    '1 Test Street\nLondon\nN1 1AA' stays three lines; '1 Test Street, London'
    stays one, commas and all. Past `most` lines the rest are joined with commas,
    so the address cannot push the certificate onto a second page.
    """
    lines = [" ".join(line.split()) for line in address.splitlines()]
    lines = [line for line in lines if line]
    if len(lines) > most:
        lines = [*lines[: most - 1], ", ".join(lines[most - 1 :])]
    return lines


def fit(name: str, lines: list[str], cancelled: bool) -> str:
    """How tightly a certificate is set: 'normal', 'compact' or 'tight'.

    A rough count of the text lines the name and address take at normal size (about
    55 characters of the name and 100 of the address to a line); long ones get
    smaller type, so the page holds everything inside its border.
    """
    rows = 1.6 * -(-len(name) // 55) + sum(-(-len(line) // 100) for line in lines)
    rows += 2.5 if cancelled else 0
    if rows <= 7:
        return "normal"
    if rows <= 10:
        return "compact"
    return "tight"


def output_dir(campaign: Campaign) -> Path:
    return campaign.directory / "var" / "certificates"


@dataclass(frozen=True)
class Words:
    """How one campaign's documents speak: its language, and money and dates in it."""

    language: i18n.Language

    @classmethod
    def for_campaign(cls, campaign: Campaign) -> Words:
        return cls(i18n.for_campaign(campaign))

    def date(self, iso: str) -> str:
        """'2026-12-10' -> '10 December 2026' ('10 décembre 2026'): the register's ISO dates."""
        return local_date(iso, locale=self.language.locale)

    def money(self, amount: int, currency: str) -> str:
        return money(Money(int(amount), currency), locale=self.language.locale)


@dataclass(frozen=True)
class Spec:
    """One document to make: its file name, template and (picklable) context."""

    filename: str
    template: str
    title: str
    created: str  # ISO date written into the PDF's metadata: the entry's date
    context: dict[str, Any] = field(hash=False)


def _coop_context(coop: Coop) -> dict[str, Any]:
    return {
        "name": coop.name,
        "legal_form": coop.legal_form,
        "jurisdiction": coop.jurisdiction,
        "registration_number": coop.registration_number,
        "website": coop.website,
        "contact_email": coop.contact_email,
    }


def _member_filter(member: int | None) -> list[sa.ColumnElement[bool]]:
    return [] if member is None else [schema.register_entries.c.member_number == member]


@dataclass(frozen=True)
class Certificate:
    """One certificate as the register's history makes it.

    Issue entries carry a certificate for the shares issued. A withdrawal or
    a cancellation takes back the member's certificates (their shares are one
    holding, not the pieces they came in) and, when shares remain, carries a
    balance certificate of its own for what is left. Nothing here is stored:
    it is read off the append-only entries, like holdings are.
    """

    number: int
    entry_id: int
    member: Any  # the members row
    shares: int
    price: int  # minor units per share
    currency: str
    issued_on: str  # ISO date
    balance: bool  # a balance certificate after a withdrawal or cancellation
    cancelled_on: str | None = None  # ISO date of the entry that took it back
    cancelled_by: int | None = None  # that entry's id
    cancelled_kind: str | None = None  # EntryKind.WITHDRAW or EntryKind.CANCEL


def certificates(conn: Connection, member: int | None = None) -> Iterator[Certificate]:
    """Every certificate of one member, or of all, member by member, by number."""
    query = (
        sa.select(schema.register_entries, schema.members)
        .select_from(schema.register_entries.join(schema.members))
        .where(*_member_filter(member))
        .order_by(schema.register_entries.c.member_number, schema.register_entries.c.id)
    )
    held_by: int | None = None
    made: list[Certificate] = []
    holding = 0
    for row in conn.execution_options(yield_per=2000).execute(query):
        if row.member_number != held_by:
            yield from sorted(made, key=lambda c: c.number)
            held_by, made, holding = row.member_number, [], 0
        shares, price = int(row.shares), int(row.amount) // int(row.shares)
        if row.kind == EntryKind.ISSUE:
            holding += shares
            # Entries issued before certificate numbers existed fall back to the entry id.
            number = row.certificate_number or row.id
            made.append(
                Certificate(number, row.id, row, shares, price, row.currency, row.entry_date, False)
            )
            continue
        holding -= shares
        made = [
            c
            if c.cancelled_on
            else replace(
                c, cancelled_on=row.entry_date, cancelled_by=row.id, cancelled_kind=row.kind
            )
            for c in made
        ]
        if row.certificate_number and holding > 0:
            made.append(
                Certificate(
                    row.certificate_number,
                    row.id,
                    row,
                    holding,
                    price,
                    row.currency,
                    row.entry_date,
                    True,
                )
            )
    yield from sorted(made, key=lambda c: c.number)


def certificate_specs(
    conn: Connection, campaign: Campaign, member: int | None = None
) -> Iterator[Spec]:
    """One spec per certificate (of one member, or all), current or taken back."""
    words = Words.for_campaign(campaign)
    for cert in certificates(conn, member):
        yield certificate_spec(campaign, cert, words)


def certificate_spec(campaign: Campaign, cert: Certificate, words: Words | None = None) -> Spec:
    """What one certificate is made from: its file name, template and context."""
    words = words or Words.for_campaign(campaign)
    row, number = cert.member, cert.number
    lines = address_lines(row.address or "")
    return Spec(
        filename=f"certificate-{number:06d}.pdf",
        template=CERTIFICATE,
        title=words.language.gettext("Share certificate %(number)s, %(coop)s")
        % {"number": number, "coop": campaign.coop.name},
        created=cert.issued_on,
        context={
            "language": words.language.tag,
            "coop": _coop_context(campaign.coop),
            "paper": paper_for(campaign),
            "member": {
                "number": row.number,
                "name": row.name,
                "address": row.address,
                "address_lines": lines,
            },
            "certificate": {
                "fit": fit(row.name, lines, cert.cancelled_on is not None),
                "number": number,
                "entry_id": cert.entry_id,
                "shares": cert.shares,
                "price": words.money(cert.price, cert.currency),
                "value": words.money(cert.price * cert.shares, cert.currency),
                "date": words.date(cert.issued_on),
                "iso_date": cert.issued_on,
                "balance": cert.balance,
                "cancelled": None
                if cert.cancelled_on is None
                else {
                    "date": words.date(cert.cancelled_on),
                    "entry_id": cert.cancelled_by,
                    "why": "withdrawn"
                    if cert.cancelled_kind == EntryKind.WITHDRAW
                    else "cancelled",
                },
            },
        },
    )


KIND_LABEL: dict[str, str] = {
    EntryKind.ISSUE: N_("Shares issued"),
    EntryKind.WITHDRAW: N_("Shares withdrawn"),
    EntryKind.CANCEL: N_("Shares cancelled"),
}


def statement_specs(
    conn: Connection, campaign: Campaign, member: int | None = None
) -> Iterator[Spec]:
    """One share-account statement per member with entries: history and balance."""
    coop = _coop_context(campaign.coop)
    words = Words.for_campaign(campaign)
    language = words.language
    query = (
        sa.select(
            schema.register_entries.c.member_number,
            schema.register_entries.c.kind,
            schema.register_entries.c.shares,
            schema.register_entries.c.amount,
            schema.register_entries.c.currency,
            schema.register_entries.c.entry_date,
            schema.register_entries.c.note,
        )
        .where(*_member_filter(member))
        .order_by(schema.register_entries.c.member_number, schema.register_entries.c.id)
    )
    people = {
        row.number: row
        for row in conn.execute(
            sa.select(schema.members).where(
                *([] if member is None else [schema.members.c.number == member])
            )
        )
    }
    current: int | None = None
    lines: list[dict[str, Any]] = []
    balance = paid = 0
    currency = campaign.currency
    paper = paper_for(campaign)

    def finish() -> Spec:
        assert current is not None
        person = people[current]
        as_at = lines[-1]["iso_date"]
        return Spec(
            filename=f"statement-{current:06d}.pdf",
            template=STATEMENT,
            title=language.gettext("Share account statement, member %(number)s, %(coop)s")
            % {"number": current, "coop": campaign.coop.name},
            created=as_at,
            context={
                "language": language.tag,
                "coop": coop,
                "paper": paper,
                "member": {
                    "number": person.number,
                    "name": person.name,
                    "address": person.address,
                    "address_lines": address_lines(person.address or ""),
                    "admitted_on": words.date(person.admitted_on),
                    "ceased_on": words.date(person.ceased_on) if person.ceased_on else None,
                },
                "lines": list(lines),
                "shares": balance,
                "paid": words.money(paid, currency),
                "as_at": words.date(as_at),
            },
        )

    for row in conn.execute(query):
        if row.member_number != current:
            if current is not None:
                yield finish()
            current, lines, balance, paid = row.member_number, [], 0, 0
        sign = 1 if row.kind == EntryKind.ISSUE else -1
        balance += sign * int(row.shares)
        paid += sign * int(row.amount)
        currency = row.currency
        lines.append(
            {
                "date": words.date(row.entry_date),
                "iso_date": row.entry_date,
                "kind": language.gettext(KIND_LABEL[row.kind])
                if row.kind in KIND_LABEL
                else row.kind,
                "shares": sign * int(row.shares),
                "amount": words.money(sign * int(row.amount), row.currency),
                "balance": balance,
                "note": row.note or "",
            }
        )
    if current is not None:
        yield finish()
