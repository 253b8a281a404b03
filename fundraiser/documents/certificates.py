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

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from functools import cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from sqlalchemy.engine import Connection

from fundraiser import i18n, privatefiles
from fundraiser.config import Campaign, Coop
from fundraiser.documents import DocumentError, template_dirs
from fundraiser.errors import NotFound
from fundraiser.formatting import local_date, money
from fundraiser.i18n import N_
from fundraiser.ledger import canonical, schema
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


class Renderer:
    """Renders specs to PDF bytes; build once, reuse for many documents."""

    def __init__(self, dirs: list[Path], language: str = "en-GB", own: Path | None = None) -> None:
        """`language`: the campaign's ([coop] language); `own`: its folder, for its own
        catalogs (fundraiser.i18n)."""
        # Imported here: WeasyPrint loads Pango, which commands without PDFs skip.
        from weasyprint import CSS  # type: ignore[import-untyped,unused-ignore]
        from weasyprint.text.fonts import (  # type: ignore[import-untyped,unused-ignore]
            FontConfiguration,
        )

        self.dirs = dirs
        self.env = Environment(
            loader=FileSystemLoader([str(d) for d in dirs]),
            autoescape=True,
            undefined=StrictUndefined,
            keep_trailing_newline=True,
        )
        words = i18n.translations(language, own)
        i18n.install(self.env, words)
        self.fonts = FontConfiguration()
        try:
            css_source = self.env.loader.get_source(self.env, STYLESHEET)[0]  # type: ignore[union-attr]
        except TemplateError as exc:
            raise DocumentError(f"cannot read the stylesheet {STYLESHEET}: {exc}") from None
        # The first folder is the base for relative URLs (a co-op's logo.png).
        self.base_url = str(dirs[0]) + os.sep
        self.css = CSS(string=css_source, font_config=self.fonts, base_url=self.base_url)
        # The sheet's size, after the stylesheet so that it wins: one per paper. With it,
        # the statement's page numbers in the campaign's language.
        label = words.gettext("Page").replace("\\", "\\\\").replace('"', '\\"')
        numbers = f'@bottom-right {{ content: "{label} " counter(page) }}'
        self.paper_css = {
            paper: CSS(
                string=f"@page {{ size: {size} }} "
                f"@page statement {{ size: {paper} portrait; {numbers} }} "
                f".certificate {{ height: {height}mm }}",
                font_config=self.fonts,
            )
            for paper, (size, height) in PAPER.items()
        }

    def html(self, spec: Spec) -> str:
        certificate = spec.context.get("certificate")
        if isinstance(certificate, dict) and certificate.get("cancelled"):
            self._require_void_notice(spec.template)
        try:
            return self.env.get_template(spec.template).render(
                title=spec.title, created=spec.created, **spec.context
            )
        except TemplateError as exc:
            raise DocumentError(f"the template {spec.template} failed: {exc}") from None

    def _require_void_notice(self, template: str) -> None:
        """A certificate taken back must say so: refuse a template that never shows it.

        A co-op's own template copied before certificates could be taken back
        would print one as if it still stood for shares.
        """
        try:
            source, filename, _ = self.env.loader.get_source(self.env, template)  # type: ignore[union-attr]
        except TemplateError as exc:
            raise DocumentError(f"the template {template} failed: {exc}") from None
        if "certificate.cancelled" not in source:
            raise DocumentError(
                f"the template {filename} never shows certificate.cancelled, so a "
                "certificate taken back (shares withdrawn or cancelled) would print as "
                "if it still stood: add the `{% if certificate.cancelled %}` block from "
                f"fundraiser/documents/templates/{CERTIFICATE}"
            )

    def pdf(self, spec: Spec) -> bytes:
        from weasyprint import HTML  # type: ignore[import-untyped,unused-ignore]

        paper = self.paper_css.get(str(spec.context.get("paper") or "A4"), self.paper_css["A4"])
        document = HTML(string=self.html(spec), base_url=self.base_url).render(
            stylesheets=[self.css, paper], font_config=self.fonts
        )
        # Fixed metadata (no render time) keeps reruns byte-identical.
        document.metadata.title = spec.title
        document.metadata.created = spec.created
        document.metadata.modified = spec.created
        document.metadata.generator = "fundraiser"
        return bytes(document.write_pdf())


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write atomically unless the file already holds these bytes; True if written."""
    try:
        if path.stat().st_size == len(data) and path.read_bytes() == data:
            privatefiles.restrict(path)  # one made before files were owner-only
            return False
    except FileNotFoundError:
        pass
    privatefiles.write(path, data)  # a member's name, address and holding: owner-only
    return True


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_sha(path: Path) -> str | None:
    try:
        return _sha(path.read_bytes())
    except FileNotFoundError:
        return None


def inputs_digest(fingerprint: str, spec: Spec) -> str:
    """What a document is made from: templates, WeasyPrint's version, and the spec."""
    material = [fingerprint, spec.filename, spec.template, spec.title, spec.created, spec.context]
    return _sha(canonical(material).encode("utf-8"))


def templates_fingerprint(dirs: list[Path], catalogs: Iterable[Path] = ()) -> str:
    """What every document is made with: WeasyPrint, the templates, the catalogs read."""
    from weasyprint import __version__  # type: ignore[import-untyped,unused-ignore]

    digest = hashlib.sha256(f"weasyprint {__version__}".encode())
    for folder in dirs:
        for path in sorted((folder / "certificates").glob("**/*")):
            if path.is_file():
                digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    for catalog in catalogs:
        digest.update(b"catalog\0" + catalog.read_bytes())
    return digest.hexdigest()


MANIFEST = ".made.json"


# -- the worker side of the process pool ---------------------------------------

_worker: Renderer | None = None


def _init_worker(dirs: list[Path], language: str, own: Path | None) -> None:
    global _worker
    _worker = Renderer(dirs, language, own)


def _make_one(item: tuple[Spec, Path]) -> tuple[bool, str]:
    spec, folder = item
    assert _worker is not None
    data = _worker.pdf(spec)
    return write_if_changed(folder / spec.filename, data), _sha(data)


@cache
def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


@dataclass
class MakeResult:
    kind: str  # "certificate" or "statement"
    folder: Path
    written: list[str] = field(default_factory=list)
    unchanged: int = 0

    @property
    def total(self) -> int:
        return len(self.written) + self.unchanged


class Documents:
    """Makes a campaign's certificates (or statements) under var/certificates/."""

    def __init__(self, campaign: Campaign, folder: Path | None = None) -> None:
        self.campaign = campaign
        self.folder = folder or output_dir(campaign)
        self.dirs = template_dirs(campaign.directory)
        self._renderer: Renderer | None = None

    @property
    def statements(self) -> bool:
        return not self.campaign.coop.certificates

    @property
    def kind(self) -> str:
        return "statement" if self.statements else "certificate"

    @property
    def renderer(self) -> Renderer:
        if self._renderer is None:
            coop = self.campaign.coop
            self._renderer = Renderer(self.dirs, coop.language, self.campaign.directory)
        return self._renderer

    def specs(self, conn: Connection, member: int | None = None) -> Iterator[Spec]:
        source = statement_specs if self.statements else certificate_specs
        return source(conn, self.campaign, member)

    def _mkdir(self) -> None:
        try:
            privatefiles.make_dir(self.folder)
        except OSError as exc:
            raise DocumentError(f"cannot make the folder {self.folder}: {exc.strerror}") from None

    def make(
        self,
        conn: Connection,
        member: int | None = None,
        *,
        workers: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> MakeResult:
        """Make every document (or one member's); unchanged files are left alone.

        A manifest beside the files records what each was made from (and its
        hash), so a rerun renders only documents whose inputs changed; the
        others are left exactly as they are.
        """
        if (
            member is not None
            and conn.execute(
                sa.select(schema.members.c.number).where(schema.members.c.number == member)
            ).first()
            is None
        ):
            raise NotFound(f"member {member} does not exist: see `fundraiser members list`")
        specs = list(self.specs(conn, member))
        self._mkdir()
        result = MakeResult(self.kind, self.folder)
        manifest = self._load_manifest()
        catalogs = i18n.catalog_files(self.campaign.coop.language, self.campaign.directory)
        fingerprint = templates_fingerprint(self.dirs, catalogs)
        todo: list[tuple[Spec, str]] = []
        for spec in specs:
            digest = inputs_digest(fingerprint, spec)
            known = manifest.get(spec.filename)
            if (
                known
                and known.get("inputs") == digest
                and known.get("sha256") == _file_sha(self.folder / spec.filename)
            ):
                privatefiles.restrict(self.folder / spec.filename)  # one an older kit left 0644
                result.unchanged += 1
                if progress:
                    progress(1)
            else:
                todo.append((spec, digest))
        if workers is None:
            workers = min(_cpus(), 4) if len(todo) >= POOL_THRESHOLD else 1
        try:
            outputs = self._render_all([spec for spec, _ in todo], workers)
            for (spec, digest), (changed, sha) in zip(todo, outputs, strict=True):
                if changed:
                    result.written.append(spec.filename)
                else:
                    result.unchanged += 1
                manifest[spec.filename] = {"inputs": digest, "sha256": sha}
                if progress:
                    progress(1)
        finally:
            if todo:  # what was made before a failure is remembered too
                self._save_manifest(manifest)
        return result

    def _load_manifest(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads((self.folder / MANIFEST).read_text(encoding="utf-8"))
        except (FileNotFoundError, ValueError):
            return {}
        files = data.get("files") if isinstance(data, dict) else None
        return files if isinstance(files, dict) else {}

    def _save_manifest(self, files: dict[str, dict[str, str]]) -> None:
        text = json.dumps({"version": 1, "files": files}, sort_keys=True)
        privatefiles.write(self.folder / MANIFEST, text)

    def _render_all(self, specs: list[Spec], workers: int) -> Iterable[tuple[bool, str]]:
        if workers <= 1 or len(specs) < 2:
            for spec in specs:
                data = self.renderer.pdf(spec)
                yield write_if_changed(self.folder / spec.filename, data), _sha(data)
            return
        # spawn, not fork: the caller may hold database connections and threads.
        with ProcessPoolExecutor(
            max_workers=workers,
            mp_context=get_context("spawn"),
            initializer=_init_worker,
            initargs=(self.dirs, self.campaign.coop.language, self.campaign.directory),
        ) as pool:
            yield from pool.map(_make_one, [(s, self.folder) for s in specs], chunksize=16)

    def filenames(self, conn: Connection, member: int) -> list[str]:
        """The member's document names, without building their contents."""
        if self.statements:
            has = conn.execute(
                sa.select(schema.register_entries.c.id)
                .where(schema.register_entries.c.member_number == member)
                .limit(1)
            ).first()
            return [f"statement-{member:06d}.pdf"] if has else []
        # Only the certificates the member holds now: ones taken back are archived.
        return [
            f"certificate-{c.number:06d}.pdf"
            for c in certificates(conn, member)
            if c.cancelled_on is None
        ]

    def ensure(self, conn: Connection, member: int) -> list[Path]:
        """The member's documents, made now if missing (for the welcome mail)."""
        names = self.filenames(conn, member)
        missing = {n for n in names if not (self.folder / n).exists()}
        if missing:
            self._mkdir()
            for spec in self.specs(conn, member):
                if spec.filename in missing:
                    write_if_changed(self.folder / spec.filename, self.renderer.pdf(spec))
        return [self.folder / n for n in names]
