"""Certificates and statements made into PDF files: WeasyPrint, a process pool for
many, and a manifest so that a rerun rewrites nothing unchanged.

The output depends only on what a document is made from (fundraiser.documents.
certificates: the entry, the member, the co-op's details, the language), never a
clock or a random id, so rerunning `fundraiser certificates make` gives
byte-identical files, and files whose inputs have not changed are not touched.
Files hold a member's name, address and holding: written owner-only.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import cache
from multiprocessing import get_context
from pathlib import Path

import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, StrictUndefined, TemplateError
from sqlalchemy.engine import Connection

from fundraiser import i18n, privatefiles
from fundraiser.config import Campaign
from fundraiser.documents import DocumentError, template_dirs
from fundraiser.documents.certificates import (
    CERTIFICATE,
    PAPER,
    POOL_THRESHOLD,
    STYLESHEET,
    Spec,
    certificate_specs,
    certificates,
    output_dir,
    statement_specs,
)
from fundraiser.errors import NotFound
from fundraiser.ledger import canonical, schema


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
