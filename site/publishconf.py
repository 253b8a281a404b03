"""Pelican settings for publishing: pelicanconf.py with absolute addresses.

`fundraiser site build --publish` reads this file. SITEURL comes from the
environment, or else from coop.website in campaign.toml (the plugin fills it in).
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# Read pelicanconf afresh: its values come from the environment of this build.
sys.modules.pop("pelicanconf", None)
from pelicanconf import *  # noqa: E402, F403

SITEURL = os.environ.get("SITEURL", "").rstrip("/")
RELATIVE_URLS = False
FEED_DOMAIN = SITEURL
FEED_ALL_ATOM = "feeds/updates.atom.xml"

# Start from an empty folder, so nothing stale is uploaded.
DELETE_OUTPUT_DIRECTORY = True
# Drafts are previewed locally, never published.
DRAFT_SAVE_AS = DRAFT_LANG_SAVE_AS = ""
DRAFT_PAGE_SAVE_AS = DRAFT_PAGE_LANG_SAVE_AS = ""
