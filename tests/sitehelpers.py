"""Helpers for the site tests: real builds in temporary folders, and a small HTML reader."""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from click.testing import CliRunner, Result

from fundraiser.cli import main
from fundraiser.ledger import open_ledger
from fundraiser.money import Money
from fundraiser.pledges import NewPledge, Status, create

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ROOT / "site" / "pelicanconf.py"
#: Inside the seed round of the example campaign.
NOW = "2026-11-27T12:00:00+00:00"

VOID = frozenset(
    [
        "area",
        "base",
        "br",
        "col",
        "embed",
        "hr",
        "img",
        "input",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    ]
)


def copy_campaign(folder: Path, *, replace: Sequence[tuple[str, str]] = ()) -> Path:
    """The example campaign.toml in `folder`, with text replacements applied."""
    folder.mkdir(parents=True, exist_ok=True)
    text = (ROOT / "campaign.toml").read_text(encoding="utf-8")
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    path = folder / "campaign.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder / 'var' / 'ledger.sqlite'}"


@dataclass(frozen=True)
class Backer:
    """One pledge to insert; `at` is when it was made (ISO 8601 in UTC)."""

    name: str
    email: str
    address: str
    shares: int
    at: str
    round: str = "seed"
    tier: str | None = None
    display_name: str | None = None
    status: Status = Status.AUTHORIZED


def add_pledges(url: str, backers: Sequence[Backer], price: Money) -> None:
    """Insert pledges the way the service and CLI do: pledges.create in ledger.write()."""
    ledger = open_ledger(url)
    try:
        for b in backers:
            with ledger.write(now=b.at) as tx:
                create(
                    tx,
                    NewPledge(
                        name=b.name,
                        email=b.email,
                        address=b.address,
                        amount=price * b.shares,
                        round=b.round,
                        status=b.status,
                        display_name=b.display_name,
                        tier=b.tier,
                        shares=b.shares,
                    ),
                )
    finally:
        ledger.dispose()


#: A public build is refused without a publishable key (the pledge page needs one).
PUBLISH_ENV = {"STRIPE_PUBLISHABLE_KEY": "pk_test_site_tests"}


def run_cli(campaign: Path, db_url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    publishing = PUBLISH_ENV if "--publish" in args else {}
    environment = {"FUNDRAISER_NOW": NOW, **publishing, **(env or {})}
    return CliRunner().invoke(
        main, ["--campaign", str(campaign), "--db", db_url, *args], env=environment
    )


def build(
    campaign: Path,
    db_url: str,
    output: Path,
    *extra: str,
    env: dict[str, str] | None = None,
) -> Result:
    """`fundraiser site build` with this repository's settings, into `output`."""
    return run_cli(
        campaign,
        db_url,
        "site",
        "build",
        "--settings",
        str(SETTINGS),
        "--output",
        str(output),
        *extra,
        env=env,
    )


def copy_content(folder: Path) -> Path:
    target = folder / "content"
    shutil.copytree(ROOT / "content", target)
    return target


def settings_for(folder: Path, content: Path, *, publish: bool = False) -> Path:
    """A settings file like the repository's (or its publishconf), reading `content`."""
    name = "publishconf" if publish else "pelicanconf"
    settings = folder / "site" / f"{name}.py"
    settings.parent.mkdir(exist_ok=True)
    settings.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(ROOT / 'site')!r})\n"
        f"sys.modules.pop({name!r}, None)\n"
        f"from {name} import *  # noqa: F403\n"
        f"PATH = {str(content)!r}\n"
    )
    return settings


# -- Reading HTML ------------------------------------------------------------------


@dataclass
class Element:
    tag: str
    attrs: dict[str, str]
    parent: Element | None = field(default=None, repr=False, compare=False)
    children: list[Element] = field(default_factory=list, repr=False)
    #: Text and child elements in document order.
    content: list[Element | str] = field(default_factory=list, repr=False)

    @property
    def text(self) -> str:
        """All the text inside, in order, whitespace collapsed."""
        parts: list[str] = []

        def walk(node: Element) -> None:
            for item in node.content:
                if isinstance(item, str):
                    parts.append(item)
                else:
                    walk(item)

        walk(self)
        return " ".join("".join(parts).split())

    def iter(self) -> Iterator[Element]:
        yield self
        for child in self.children:
            yield from child.iter()

    def find_all(self, tag: str | None = None, **attrs: str) -> list[Element]:
        return [
            e
            for e in self.iter()
            if (tag is None or e.tag == tag)
            and all(e.attrs.get(k.rstrip("_").replace("_", "-")) == v for k, v in attrs.items())
        ]

    def find(self, tag: str | None = None, **attrs: str) -> Element | None:
        found = self.find_all(tag, **attrs)
        return found[0] if found else None

    def by_id(self, ident: str) -> Element | None:
        return next((e for e in self.iter() if e.attrs.get("id") == ident), None)

    def ancestors(self) -> Iterator[Element]:
        node = self.parent
        while node is not None:
            yield node
            node = node.parent


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Element("#document", {})
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        self.current.content.append(element)
        if tag not in VOID:
            self.current = element

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        element = Element(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(element)
        self.current.content.append(element)

    def handle_endtag(self, tag: str) -> None:
        node: Element | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.content.append(data)


def parse_html(path: Path) -> Element:
    builder = _TreeBuilder()
    builder.feed(path.read_text(encoding="utf-8"))
    builder.close()
    return builder.root


def internal_target(page: Path, url: str, output: Path) -> Path | None:
    """The file a link on `page` points at inside the site, or None if it leads elsewhere."""
    parts = urlsplit(url)
    if parts.scheme or parts.netloc or url.startswith(("mailto:", "#")):
        return None
    if not parts.path:
        return None
    if parts.path.startswith("/"):
        target = output / unquote(parts.path.lstrip("/"))
    else:
        target = page.parent / unquote(parts.path)
    if parts.path.endswith("/"):
        target = target / "index.html"
    return target.resolve()
