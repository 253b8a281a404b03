"""Our Pelican plugin: campaign settings and live figures in every template.

Enable it with PLUGINS = ["fundraiser.sitegen.plugin"]. The receivers are
module-level functions connected in `register()`. They act only on builds that
enabled this plugin, so another Pelican build in the same process is untouched.

- initialized: load campaign.toml and the ledger's aggregates once (unless
  `fundraiser site build` already did), take the site's name, time zone,
  language and public address from the campaign, and check the optional images;
- generator_init: turn on autoescaping, install the co-op's language (Jinja's
  i18n extension with the kit's catalogs: `{% trans %}`, `_()`, `ngettext()`)
  and add `campaign`, `figures`, `site`, `transparency`, `images`,
  `script_messages` and the `money`, `number` and date filters to Jinja;
- article_generator_finalized: link each update to the next newer and older one;
- page_generator_finalized: work out the menus once, from MENU_PAGES and FOOTER_PAGES;
- content_written: note each page written, for the sitemap;
- finalized: write campaign.json, the share image and sitemap.xml beside the pages.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from pelican import signals  # type: ignore[import-untyped]

from fundraiser import i18n
from fundraiser.money import exponent
from fundraiser.sitegen import SiteBuildError
from fundraiser.sitegen.data import SiteData, load_site_data, parse_now, write_campaign_json
from fundraiser.sitegen.filters import make_filters
from fundraiser.sitegen.shareimage import share_text, write_share_image
from fundraiser.sitegen.sitemap import public_url, write_sitemap
from fundraiser.sitegen.transparency import build as build_transparency

logger = logging.getLogger(__name__)

PLUGIN = __name__
#: Settings keys the plugin fills in (templates see them too).
SITE_DATA = "FUNDRAISER_SITE"
TRANSPARENCY = "FUNDRAISER_TRANSPARENCY"
WRITTEN = "FUNDRAISER_WRITTEN"
MENUS = "FUNDRAISER_MENUS"
IMAGES = "FUNDRAISER_IMAGES"
BASE_URL = "SITE_BASE_URL"
LANGUAGE = "FUNDRAISER_LANGUAGE"
SCRIPT_MESSAGES = "FUNDRAISER_SCRIPT_MESSAGES"

_SECRET_PREFIXES = ("sk_", "rk_", "whsec_")


@dataclass(frozen=True)
class Link:
    """A menu entry or a neighbouring update: worked out once, not on every page."""

    slug: str
    title: str
    url: str


def register() -> None:
    signals.initialized.connect(initialized)
    signals.generator_init.connect(generator_init)
    signals.article_generator_finalized.connect(link_neighbours)
    signals.page_generator_finalized.connect(build_menus)
    signals.content_written.connect(content_written)
    signals.finalized.connect(finalized)


def check_public_settings(settings: dict[str, Any]) -> None:
    """Refuse settings that would publish a secret: the site is public."""
    key = str(settings.get("STRIPE_PUBLISHABLE_KEY") or "")
    if key.startswith(_SECRET_PREFIXES):
        raise SiteBuildError(
            "STRIPE_PUBLISHABLE_KEY holds a secret key, which the site would publish: "
            "set it to the publishable key (pk_live_… or pk_test_…) and keep the secret "
            "key only in STRIPE_SECRET_KEY on the server"
        )
    stripe_js = str(settings.get("STRIPE_JS_URL") or "")
    if not stripe_js.startswith(("https://", "http://127.0.0.1", "http://localhost")):
        raise SiteBuildError(
            f"STRIPE_JS_URL={stripe_js!r} is not an https address: use "
            "https://js.stripe.com/v3/ (or a local emulator on 127.0.0.1)"
        )


@dataclass(frozen=True)
class Image:
    """An optional picture from content/: where the site has it, and its size if known."""

    url: str  # relative to the site's root
    alt: str
    width: int | None = None
    height: int | None = None


_IMAGE_TYPES = (".svg", ".png", ".jpg", ".jpeg", ".webp", ".gif", ".avif")


def check_images(settings: dict[str, Any]) -> dict[str, Image | None]:
    """SITE_LOGO and HERO_IMAGE, each checked: a file in content/ that the build copies."""
    found: dict[str, Image | None] = {"logo": None, "hero": None}
    for key, name in (("SITE_LOGO", "logo"), ("HERO_IMAGE", "hero")):
        value = str(settings.get(key) or "").strip().lstrip("/")
        if not value:
            continue
        content = Path(str(settings.get("PATH") or "content"))
        path = content / value
        static = [str(s).strip("/") for s in settings.get("STATIC_PATHS") or []]
        if not path.is_file():
            raise SiteBuildError(
                f"{key}={value!r}: there is no such file in {content}: put the image under "
                f'{content / "images"} and give its path from there, or set {key} = ""'
            )
        if path.suffix.lower() not in _IMAGE_TYPES:
            raise SiteBuildError(
                f"{key}={value!r} is not an image a browser shows: use SVG, PNG, JPEG or WebP"
            )
        if not any(value == s or value.startswith(s + "/") for s in static):
            raise SiteBuildError(
                f"{key}={value!r} is not under STATIC_PATHS ({', '.join(static) or 'none'}), "
                "so the build would not copy it: move it to content/images/"
            )
        alt = ""
        if key == "HERO_IMAGE":
            given = settings.get("HERO_IMAGE_ALT")
            if not isinstance(given, str):
                raise SiteBuildError(
                    "HERO_IMAGE_ALT is not set: write what the picture shows, for people "
                    'who cannot see it, or set HERO_IMAGE_ALT = "" if it is only decoration'
                )
            alt = given.strip()
        found[name] = Image(value, alt, *_pixel_size(path))
    return found


def _pixel_size(path: Path) -> tuple[int | None, int | None]:
    """A raster image's width and height, so the page keeps its room while it loads."""
    if path.suffix.lower() == ".svg":
        return None, None
    from PIL import Image as Pillow
    from PIL import UnidentifiedImageError

    try:
        with Pillow.open(path) as picture:
            return picture.width, picture.height
    except (OSError, UnidentifiedImageError):
        raise SiteBuildError(
            f"{path} cannot be read as an image: save it again as PNG, JPEG or WebP"
        ) from None


def _enabled(settings: dict[str, Any]) -> bool:
    return PLUGIN in (settings.get("PLUGINS") or [])


def initialized(pelican: Any) -> None:
    settings: dict[str, Any] = pelican.settings
    if not _enabled(settings):
        return
    data = settings.get(SITE_DATA)
    if not isinstance(data, SiteData):
        data = load_site_data(
            settings.get("FUNDRAISER_CAMPAIGN") or "campaign.toml",
            settings.get("FUNDRAISER_DATABASE_URL") or None,
            parse_now(settings.get("FUNDRAISER_NOW")),
        )
        settings[SITE_DATA] = data
    check_public_settings(settings)
    coop = data.campaign.coop
    language = set_language(settings, i18n.for_campaign(data.campaign))
    # Dates in Markdown without an offset are in the campaign's time zone.
    settings["TIMEZONE"] = data.campaign.campaign.timezone
    if not settings.get("SITENAME") or settings["SITENAME"] == "A Pelican Blog":
        settings["SITENAME"] = coop.name
    # Updates without an Author: line are by the co-op (Atom entries need an author).
    settings["AUTHOR"] = settings.get("AUTHOR") or coop.name
    website = (coop.website or "").rstrip("/")
    if not settings.get("RELATIVE_URLS") and not settings.get("SITEURL") and website:
        # Publishing without SITEURL: the co-op's own website is the address.
        settings["SITEURL"] = website
    if not settings.get("RELATIVE_URLS") and not settings.get("FEED_DOMAIN"):
        settings["FEED_DOMAIN"] = settings.get("SITEURL") or ""
    siteurl = str(settings.get("SITEURL") or "")
    absolute = siteurl.startswith(("https://", "http://")) and not settings.get("RELATIVE_URLS")
    # Canonical links, Open Graph and the sitemap need a full address even in a preview.
    settings[BASE_URL] = siteurl.rstrip("/") if absolute else website
    settings[WRITTEN] = []
    settings[MENUS] = {"main": [], "footer": [], "pledge": [], "join": []}
    add_join_page(settings, data)
    settings[TRANSPARENCY] = build_transparency(data, language)
    settings[IMAGES] = check_images(settings)
    settings[SCRIPT_MESSAGES] = i18n.script_messages(
        language, i18n.script_files(static_folders(settings))
    )


def add_join_page(settings: dict[str, Any], data: SiteData) -> None:
    """join.html, from the theme, while [membership] takes people in (open = true)."""
    membership = data.campaign.membership
    if membership is None or not membership.open:
        return
    templates = list(settings.get("DIRECT_TEMPLATES") or [])
    if "join" not in templates:
        settings["DIRECT_TEMPLATES"] = [*templates, "join"]
    settings.setdefault("JOIN_SAVE_AS", "join.html")
    settings[MENUS]["join"].append(Link("join", "Join", settings["JOIN_SAVE_AS"]))


def set_language(settings: dict[str, Any], language: i18n.Language) -> i18n.Language:
    """The site's language is the campaign's ([coop] language), whatever the settings
    file says: `lang`, Open Graph's locale, Babel's locale for money and dates."""
    settings[LANGUAGE] = language
    settings["HTML_LANG"] = language.tag
    settings["DEFAULT_LANG"] = language.primary
    settings["FUNDRAISER_LOCALE"] = language.locale
    settings["OG_LOCALE"] = language.og_locale
    if not language.has_catalog():
        logger.warning(
            "the kit has no catalog for the language %r (campaign.toml's [coop] language), "
            "so the theme's own words stay in English: add one as README.md's "
            '"Your language" says',
            language.tag,
        )
    return language


def static_folders(settings: dict[str, Any]) -> list[Path]:
    """The theme's static folders, in the order the build copies them (later wins)."""
    theme = Path(str(settings.get("THEME") or "."))
    folders = [Path(str(p)).expanduser() for p in settings.get("THEME_STATIC_PATHS") or ["static"]]
    return [p if p.is_absolute() else theme / p for p in folders]


def _language(settings: dict[str, Any]) -> i18n.Language:
    found = settings.get(LANGUAGE)
    return found if isinstance(found, i18n.Language) else i18n.language("en-GB")


def generator_init(generator: Any) -> None:
    data = generator.settings.get(SITE_DATA)
    if not isinstance(data, SiteData):
        return
    env = generator.env
    # Display names are typed by backers: they must render as text, never markup.
    env.autoescape = True
    language = _language(generator.settings)
    i18n.install(env, language.translations)
    env.filters.update(make_filters(language.locale, data.campaign.campaign.timezone))
    env.filters["absolute_url"] = partial(_absolute_url, base=generator.settings.get(BASE_URL))
    env.globals.update(
        campaign=data.campaign,
        figures=data.figures,
        site=data,
        transparency=generator.settings.get(TRANSPARENCY),
        menus=generator.settings.get(MENUS),
        images=generator.settings.get(IMAGES) or {"logo": None, "hero": None},
        # Digits after the decimal point, for the pledge form's running total.
        money_exponent=exponent(data.campaign.currency),
        # The scripts' words in the site's language (templates/_messages.html).
        script_messages=generator.settings.get(SCRIPT_MESSAGES) or {},
    )


def build_menus(generator: Any) -> None:
    """Fill the menus (MENU_PAGES, FOOTER_PAGES, the pledge page) from the pages read."""
    menus = generator.settings.get(MENUS)
    if not isinstance(generator.settings.get(SITE_DATA), SiteData) or menus is None:
        return
    by_slug = {page.slug: page for page in generator.pages}

    def links(slugs: list[str]) -> list[Link]:
        return [
            Link(
                slug,
                getattr(by_slug[slug], "menu_title", None) or by_slug[slug].title,
                by_slug[slug].url,
            )
            for slug in slugs
            if slug in by_slug
        ]

    menus["main"][:] = links(list(generator.settings.get("MENU_PAGES") or []))
    menus["footer"][:] = links(list(generator.settings.get("FOOTER_PAGES") or []))
    menus["pledge"][:] = links(["pledge"])


def link_neighbours(generator: Any) -> None:
    """Give each published update `newer` and `older` links, in one pass."""
    if not isinstance(generator.settings.get(SITE_DATA), SiteData):
        return
    articles = generator.articles  # newest first (ARTICLE_ORDER_BY reversed-date)
    links = [Link(a.slug, a.title, a.url) for a in articles]
    for index, article in enumerate(articles):
        article.newer = links[index - 1] if index > 0 else None
        article.older = links[index + 1] if index + 1 < len(articles) else None


def _absolute_url(relative: str, base: str | None) -> str:
    """The full address of an output file, for canonical links and Open Graph."""
    return public_url(base or "", relative)


def content_written(path: str, context: Any = None) -> None:
    written = context.get(WRITTEN) if isinstance(context, dict) else None
    if written is None:
        return
    relative = Path(os.path.relpath(path, context["OUTPUT_PATH"])).as_posix()
    item = context.get("article") or context.get("page")
    moment = getattr(item, "modified", None) or getattr(item, "date", None)
    modified = moment.date() if isinstance(moment, datetime) else None
    written.append((relative, modified if isinstance(modified, date) else None))


def finalized(pelican: Any) -> None:
    settings: dict[str, Any] = pelican.settings
    data = settings.get(SITE_DATA)
    if not _enabled(settings) or not isinstance(data, SiteData):
        return
    output = Path(settings["OUTPUT_PATH"])
    write_campaign_json(output, data.campaign_json())
    coop = data.campaign.coop
    write_share_image(
        output, share_text(settings["SITENAME"], data.figures, coop.website, _language(settings))
    )
    base = settings.get(BASE_URL)
    if base:
        write_sitemap(output, settings.get(WRITTEN) or [], base)
    else:
        logger.warning(
            "no sitemap.xml: set coop.website in campaign.toml (or SITEURL) so "
            "the sitemap can give full addresses"
        )
