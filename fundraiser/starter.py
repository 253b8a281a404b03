"""Starter site for `fundraiser init`: settings that use the kit's theme by
reference (found in the installed package when the site is built, never a
path of this machine), and placeholder pages a founding team rewrites in its
own words.

The share offer, pledge and transparency pages are rendered from campaign.toml
and the ledger by the theme, so their starter text is short.
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from fundraiser import kit

PAGES: dict[str, str] = {
    "home.md": """Title: {title}
Slug: home
Status: hidden
Save_as: index.html
Url: index.html
Template: index
Summary: {name} is raising its founding capital from its future members.

Say in two or three sentences what {name} will do and why it should belong to
its members. Every backer who pays becomes a member with one vote.
""",
    "manifesto.md": """Title: Manifesto
Slug: manifesto
Summary: Why {name} should be owned by its members.

## Why a co-operative

Replace this with your own words: the problem you see, why the people who use
{name} should own it, and what members will decide together.
""",
    "roadmap.md": """Title: Roadmap
Slug: roadmap
Summary: What we will build, when, and what the money pays for.

| When | Milestone | Cost |
|------|-----------|------|
| Month 1 | Register the society and open the offer | |
| Month 3 | First general meeting of founding members | |
""",
    "bylaws.md": """Title: Bylaws
Slug: bylaws
Menu_title: Our rules
Summary: The rules of the co-operative.

Summarise your registered rules here: membership, one member one vote, share
capital and withdrawal, the elected board, general meetings, the asset lock and
dissolution.
""",
    "share-offer.md": """Title: Share offer
Slug: share-offer
Template: share-offer
Summary: The terms of {name}'s founding share offer and its risks.

Please read all of this offer, and especially the risks, before you pledge.
""",
    "privacy.md": """Title: Privacy charter
Slug: privacy
Menu_title: Privacy
Summary: What we collect, why, and what we publish.

We keep your name, email and postal address for the share register, which the
law asks a co-operative to keep. We publish totals only, and your chosen public
name if you give one.
""",
    "faq.md": """Title: Questions and answers
Menu_title: FAQ
Slug: faq
Summary: Answers to the questions people ask most.

### When is my card charged?

See the share offer: it depends on whether this is an all-or-nothing campaign.
""",
    "pledge.md": """Title: Pledge for shares
Menu_title: Pledge
Slug: pledge
Template: pledge
Summary: Become a founding member of {name}.

Choose how many shares you would like, tell us who you are, and give your card
details. Please read the [share offer]({{filename}}share-offer.md) first.
""",
    "transparency.md": """Title: Transparency
Slug: transparency
Template: transparency
Summary: The campaign's money in the open.

Where the campaign stands, built straight from our ledger.
""",
}

# A draft until its founders say otherwise: Pelican reads Status only in the
# header (the lines before the first blank one), so that is where it must be.
FIRST_UPDATE = """Title: We are launching
Date: {date}
Slug: we-are-launching
Summary: {name}'s founding share offer is being prepared.
Status: draft

Write your first campaign update here, then publish it by deleting the
`Status: draft` line above. `fundraiser update new "Title"` starts the next one.
"""

PELICANCONF = '''"""Pelican settings: the launch kit's, with this folder's {what}.

The kit's settings and theme come from the installed fundraiser package, found
when the site is built: nothing here names a folder of the machine it was
written on. Your own copy of any theme file wins over the kit's: templates in
theme/templates/, stylesheets, scripts and images in theme/static/, beside
campaign.toml (`fundraiser theme copy --template base.html` starts one).
"""

import os
from pathlib import Path

from fundraiser import kit

globals().update(kit.settings())
_HERE = Path(__file__).resolve().parent
_FOLDER = _HERE.parent
{content}OUTPUT_PATH = str(_HERE / "output")
FUNDRAISER_CAMPAIGN = os.environ.get("FUNDRAISER_CAMPAIGN") or str(_FOLDER / "campaign.toml")
globals().update(kit.coop_theme_settings(_FOLDER))
'''
_OWN_CONTENT = 'PATH = str(_FOLDER / "content")\n'
_KIT_CONTENT = "# The pages and updates are the kit's example co-op's (PATH from kit.settings()).\n"


# The characters Python-Markdown unescapes after a backslash (with `extra`: and |).
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|>])")


def markdown_text(text: str) -> str:
    """Text that Markdown shows as it is: a co-op named `<b>` or `*Us*` is no markup."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", text.replace("&", "&amp;").replace("<", "&lt;"))


def write_settings(directory: Path, *, own_content: bool = True) -> Path:
    """DIR/site/pelicanconf.py and publishconf.py, reading the kit from the installed package.

    Without `own_content` the site shows the kit's example co-op (the demo's).
    """
    site = directory / "site"
    site.mkdir(parents=True, exist_ok=True)
    settings = site / "pelicanconf.py"
    settings.write_text(
        PELICANCONF.format(
            what="content and theme" if own_content else "campaign (the example co-op's pages)",
            content=_OWN_CONTENT if own_content else _KIT_CONTENT,
        ),
        encoding="utf-8",
    )
    (site / "publishconf.py").write_text(
        kit.publish_settings_file().read_text(encoding="utf-8"), encoding="utf-8"
    )
    return settings


def write_site(directory: Path, name: str, now: datetime) -> bool:
    """Write site settings and starter content (True); raises KitMissing without the kit."""
    kit.root()  # before writing anything: the settings need the kit's theme
    pages = directory / "content" / "pages"
    updates = directory / "content" / "updates"
    for folder in (pages, updates):
        folder.mkdir(parents=True, exist_ok=True)
    write_settings(directory)
    # Titles are plain text to Pelican; summaries and bodies are Markdown.
    words = {"title": name, "name": markdown_text(name)}
    for filename, text in PAGES.items():
        (pages / filename).write_text(text.format(**words), encoding="utf-8")
    stamp = now.strftime("%Y-%m-%d %H:%M%z")
    (updates / f"{now:%Y-%m-%d}-we-are-launching.md").write_text(
        FIRST_UPDATE.format(date=stamp, **words), encoding="utf-8"
    )
    return True
