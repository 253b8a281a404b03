"""Pelican settings for the launch site: a local preview with relative links.

`fundraiser site build` reads this file; so does a plain
`pelican content -s site/pelicanconf.py` run from the project folder.
site/publishconf.py starts from these and changes what publishing needs.

These are also the kit's settings: a co-op made by `fundraiser init` starts
from them (its site/pelicanconf.py asks fundraiser.kit for them) and sets
only its own content, output and theme overrides. Paths here are worked out
from this file's place, so they hold wherever the kit is installed.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

_SITE = Path(__file__).resolve().parent
_ROOT = _SITE.parent
# A plain `pelican` run in a checkout must find the fundraiser package beside it.
# (An installed kit reads this file from inside the package, where there is none.)
if (_ROOT / "fundraiser").is_dir() and str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))

# -- The campaign: settings file, ledger, clock -------------------------------
# Relative paths are from the folder the build runs in, like the fundraiser command's.
FUNDRAISER_CAMPAIGN = os.environ.get("FUNDRAISER_CAMPAIGN") or str(_ROOT / "campaign.toml")
# Empty: the campaign's own SQLite ledger, var/ledger.sqlite beside campaign.toml.
FUNDRAISER_DATABASE_URL = os.environ.get("DATABASE_URL") or None
# An ISO date and time with offset rehearses the site as it will look then.
FUNDRAISER_NOW = os.environ.get("FUNDRAISER_NOW") or None
# Babel locale for money and dates on the site.
FUNDRAISER_LOCALE = "en_GB"

# -- The pledge page -----------------------------------------------------------
# The only outside script on the site, and only on the pledge page. Tests point
# it at the Stripe emulator's fake Stripe.js.
STRIPE_JS_URL = os.environ.get("STRIPE_JS_URL") or "https://js.stripe.com/v3/"
# The pledge service's base address; empty means the site's own origin.
PLEDGE_API = os.environ.get("PLEDGE_API", "").rstrip("/")
# Publishable (pk_...) only: the build refuses a secret key here.
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", "")

# -- Images (optional; none is needed) -------------------------------------------
# Paths inside content/, under one of STATIC_PATHS (content/images/), copied as they are.
# A logo before the co-op's name in the header (SVG, PNG, JPEG or WebP), shown 2rem high.
SITE_LOGO = ""
# A picture on the home page beside the campaign's figures, and what it shows for
# people who cannot see it. HERO_IMAGE_ALT must be set with HERO_IMAGE: write what the
# picture shows, or "" if it is only decoration.
HERO_IMAGE = ""
HERO_IMAGE_ALT = None
# Every page's Open Graph and Twitter card image is share.png, drawn by the build with
# the campaign's figures (and redrawn by `fundraiser site figures`): nothing to set.

# -- Where things are ------------------------------------------------------------
PATH = str(_ROOT / "content")
THEME = str(_ROOT / "theme")
OUTPUT_PATH = str(_SITE / "output")
PLUGINS = ["fundraiser.sitegen.plugin"]

SITENAME = ""  # empty: coop.name from campaign.toml
SITEURL = ""
RELATIVE_URLS = True  # the preview works from any folder, even opened as files
TIMEZONE = "UTC"  # the plugin sets campaign.timezone
DEFAULT_LANG = "en"
HTML_LANG = "en-GB"

# -- Content -------------------------------------------------------------------
ARTICLE_PATHS = ["updates"]
PAGE_PATHS = ["pages"]
STATIC_PATHS = ["images"]
ARTICLE_URL = ARTICLE_SAVE_AS = "updates/{slug}.html"
PAGE_URL = PAGE_SAVE_AS = "{slug}.html"
# The home page is content/pages/home.md (hidden, saved as index.html); the list
# of updates is the `updates` template, paginated.
DIRECT_TEMPLATES = ["updates"]
UPDATES_SAVE_AS = "updates/index.html"
PAGINATED_TEMPLATES = {"updates": 10}
DEFAULT_PAGINATION = False
SUMMARY_MAX_LENGTH = 60
DEFAULT_DATE_FORMAT = "%d %B %Y"
# Pages in the top menu, in order, by slug; the list of updates is added after them.
MENU_PAGES = ["manifesto", "roadmap", "share-offer", "transparency", "faq"]
FOOTER_PAGES = ["bylaws", "privacy", "share-offer", "transparency"]

# Only what the site links to: no tag, category, author or archive pages.
TAG_SAVE_AS = TAGS_SAVE_AS = ""
CATEGORY_SAVE_AS = CATEGORIES_SAVE_AS = ""
AUTHOR_SAVE_AS = AUTHORS_SAVE_AS = ""
ARCHIVES_SAVE_AS = ""
DISPLAY_CATEGORIES_ON_MENU = False
# With no category pages Pelican gives updates no category, and then cannot write
# drafts; one fixed category keeps draft previews working.
DEFAULT_METADATA = {"category": "Updates"}

# One Atom feed, of campaign updates.
FEED_ALL_ATOM = "feeds/updates.atom.xml"
CATEGORY_FEED_ATOM = None
AUTHOR_FEED_ATOM = None
AUTHOR_FEED_RSS = None
TRANSLATION_FEED_ATOM = None
FEED_MAX_ITEMS = 20
# A preview's feed has relative links, which Pelican warns about; publishconf.py
# (with SITEURL, or coop.website filled in by the plugin) gives it full addresses.
LOG_FILTER = [
    (
        logging.WARNING,
        "Feeds generated without SITEURL or FEED_DOMAIN set properly may not be valid",
    )
]

# Autoescape is on: text a backer typed (a display name) is never markup.
JINJA_ENVIRONMENT = {
    "trim_blocks": True,
    "lstrip_blocks": True,
    "autoescape": True,
    "extensions": [],
}
MARKDOWN = {
    "extension_configs": {
        "markdown.extensions.extra": {},  # tables, footnotes, {#id} on headings
        "markdown.extensions.meta": {},
    },
    "output_format": "html5",
}
CACHE_CONTENT = False
