"""Drafts and the local preview: `fundraiser update new`, `site build`, `site serve`."""

from __future__ import annotations

import threading
import time
import urllib.request
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

from fundraiser.sitegen.build import serve
from tests.sitehelpers import (
    NOW,
    copy_campaign,
    copy_content,
    parse_html,
    run_cli,
    settings_for,
    sqlite_url,
)


def test_a_new_update_is_a_draft_until_its_status_line_goes(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    content = copy_content(tmp_path)
    settings = settings_for(tmp_path, content)
    settings_for(tmp_path, content, publish=True)
    url = sqlite_url(tmp_path)
    made = run_cli(campaign, url, "update", "new", "Halfway there", "--content", str(content))
    assert made.exit_code == 0, made.output
    draft = Path(made.output.strip())
    assert draft.parent == content / "updates"

    preview = tmp_path / "preview"
    result = run_cli(
        campaign, url, "site", "build", "--settings", str(settings), "--output", str(preview)
    )
    assert result.exit_code == 0, result.output
    assert (preview / "drafts" / "halfway-there.html").is_file()
    listing = (preview / "updates" / "index.html").read_text()
    assert "Halfway there" not in listing
    assert "halfway-there" not in (preview / "sitemap.xml").read_text()
    assert "halfway-there" not in (preview / "feeds" / "updates.atom.xml").read_text()

    public = tmp_path / "public"
    result = run_cli(
        campaign,
        url,
        "site",
        "build",
        "--publish",
        "--settings",
        str(settings),
        "--output",
        str(public),
    )
    assert result.exit_code == 0, result.output
    assert not (public / "drafts").exists()

    draft.write_text(draft.read_text().replace("Status: draft\n", ""))
    result = run_cli(
        campaign,
        url,
        "site",
        "build",
        "--publish",
        "--settings",
        str(settings),
        "--output",
        str(public),
    )
    assert result.exit_code == 0, result.output
    assert (public / "updates" / "halfway-there.html").is_file()
    ns = {"a": "http://www.w3.org/2005/Atom"}
    feed = ET.parse(public / "feeds" / "updates.atom.xml").getroot()
    titles = [e.findtext("a:title", namespaces=ns) for e in feed.findall("a:entry", ns)]
    assert titles[0] == "Halfway there"  # dated now: the newest update


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode("utf-8"))


def test_serve_previews_and_rebuilds_when_content_changes(tmp_path: Path) -> None:
    campaign = copy_campaign(tmp_path)
    content = copy_content(tmp_path)
    settings = settings_for(tmp_path, content)
    messages: list[str] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            serve(
                settings,
                campaign_path=campaign,
                database_url=sqlite_url(tmp_path),
                now=lambda: datetime.fromisoformat(NOW),
                host="127.0.0.1",
                port=0,
                output=tmp_path / "out",
                echo=messages.append,
                stop=stop,
            )
        except BaseException as exc:  # reported by the test below
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        while not any(m.startswith("Serving") for m in messages):
            assert not errors, errors
            assert time.monotonic() < deadline, messages
            time.sleep(0.05)
        address = next(m for m in messages if m.startswith("Serving")).split(" at ")[1].split()[0]
        home = _get(address + "index.html")
        assert "Hearth Social Co-operative" in home

        time.sleep(0.5)  # let the watcher settle before the edit
        faq = content / "pages" / "faq.md"
        faq.write_text(faq.read_text() + "\n### Is the preview live?\n\nYes, it rebuilds.\n")
        deadline = time.monotonic() + 30
        while "Is the preview live?" not in _get(address + "faq.html"):
            assert not errors, errors
            assert time.monotonic() < deadline, messages
            time.sleep(0.1)
        assert any(m.startswith("Changed: ") for m in messages), messages

        # A broken edit keeps the last good site up and says what broke.
        bad = content / "updates" / "2026-12-01-broken.md"
        bad.write_text("Title: Broken\nDate: not a date\n\nText.\n")
        deadline = time.monotonic() + 30
        while not any(m.startswith("Build failed") for m in messages):
            assert not errors, errors
            assert time.monotonic() < deadline, messages
            time.sleep(0.1)
        assert "2026-12-01-broken.md" in next(m for m in messages if m.startswith("Build failed"))
        assert "Is the preview live?" in _get(address + "faq.html")
        assert parse_html(tmp_path / "out" / "index.html").find("main") is not None
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert not errors, errors


def test_a_page_read_while_the_preview_rebuilds_is_always_whole(tmp_path: Path) -> None:
    """The preview builds beside the served folder and renames each page in: a reader
    (the preview's server, a browser) never gets a page emptied or cut short."""
    from fundraiser.sitegen.build import build_site

    campaign = copy_campaign(tmp_path)
    settings = settings_for(tmp_path, copy_content(tmp_path))
    out = tmp_path / "out"

    def rebuild() -> None:
        report = build_site(
            settings,
            campaign_path=campaign,
            database_url=sqlite_url(tmp_path),
            now=datetime.fromisoformat(NOW),
            output=out,
            staged=True,
        )
        assert report.output == out.resolve()

    rebuild()
    pages = [out / "index.html", out / "faq.html", out / "pledge.html"]
    unchanged = (out / "theme" / "css").stat().st_ino
    torn: list[str] = []
    reads = 0
    done = threading.Event()

    def read() -> None:
        nonlocal reads
        while not done.is_set():
            for page in pages:
                text = page.read_text(encoding="utf-8")
                reads += 1
                if not text.rstrip().endswith("</html>"):
                    torn.append(f"{page.name}: {len(text)} characters")

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        for _ in range(4):
            rebuild()
    finally:
        done.set()
        reader.join(10)
    assert reads > 100, reads  # the reader ran through the rebuilds
    assert torn == []
    assert (out / "theme" / "css").stat().st_ino == unchanged  # folders stay where they are
    assert not (tmp_path / ".out.next").exists()  # nothing left beside the site
