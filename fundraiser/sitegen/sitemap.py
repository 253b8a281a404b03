"""sitemap.xml, from the pages the build wrote (no third-party plugin)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from pathlib import Path, PurePosixPath
from xml.sax.saxutils import escape

NAMESPACE = "http://www.sitemaps.org/schemas/sitemap/0.9"

#: Written but not for search engines: draft previews and the error page.
SKIP_PREFIXES = ("drafts/",)
SKIP_FILES = frozenset({"404.html"})


def public_url(base: str, relative: str) -> str:
    """The address people use for an output file: 'updates/index.html' -> base/updates/."""
    path = PurePosixPath(relative)
    text = str(path.parent) + "/" if path.name == "index.html" else str(path)
    text = "" if text == "./" else text
    return f"{base.rstrip('/')}/{text}"


def write_sitemap(
    output_dir: Path, pages: Iterable[tuple[str, date | None]], base_url: str
) -> Path:
    """Write sitemap.xml listing each (output path, last modified) once, in order."""
    seen: dict[str, date | None] = {}
    for relative, modified in pages:
        if relative.startswith(SKIP_PREFIXES) or relative in SKIP_FILES:
            continue
        seen.setdefault(relative, modified)
    lines = ['<?xml version="1.0" encoding="UTF-8"?>', f'<urlset xmlns="{NAMESPACE}">']
    for relative in sorted(seen, key=lambda r: (r != "index.html", r)):
        modified = seen[relative]
        lastmod = f"<lastmod>{modified.isoformat()}</lastmod>" if modified else ""
        lines.append(f"<url><loc>{escape(public_url(base_url, relative))}</loc>{lastmod}</url>")
    lines.append("</urlset>")
    target = output_dir / "sitemap.xml"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target
