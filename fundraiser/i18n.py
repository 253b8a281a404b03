"""The co-op's language: the kit's words from gettext catalogs, and the names of its locale.

Every word the kit puts before a person (the site's theme and its scripts, the
pledge service's pages, the mails, the certificates) is a message of the
`fundraiser` domain: Babel extracts them (babel.cfg) into
fundraiser/locale/fundraiser.pot, and each language has its catalog in
fundraiser/locale/<lang>/LC_MESSAGES/fundraiser.po. Which one is used is
campaign.toml's `[coop] language`.

Catalogs are read as .po text and compiled in memory the first time they are
asked for (a few milliseconds): there is no compiled .mo to build, commit or
let go stale, an editable checkout, a wheel and CI read the same file, and a
co-op adds a language, or rewords a message, by putting a .po file under
locale/<lang>/LC_MESSAGES/ beside its campaign.toml. That catalog is read
before the kit's, message by message; "fr-CA" reads fr_CA, then fr. The
message ids are the kit's English, so a language without any catalog reads
English. Fuzzy entries are left out, as msgfmt leaves them out.
"""

from __future__ import annotations

import functools
import gettext
import io
import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.messages.mofile import write_mo
from babel.messages.pofile import PoFileError, read_po
from babel.support import Translations

from fundraiser.errors import FundraiserError
from fundraiser.formatting import babel_locale

if TYPE_CHECKING:
    import jinja2

    from fundraiser.config import Campaign

DOMAIN = "fundraiser"
#: The kit's catalogs, and the template new ones start from (fundraiser.pot).
PACKAGE_LOCALES = Path(__file__).resolve().parent / "locale"
TEMPLATE = PACKAGE_LOCALES / f"{DOMAIN}.pot"
#: A co-op's own catalogs: locale/<lang>/LC_MESSAGES/fundraiser.po beside campaign.toml.
OWN_LOCALES = "locale"

#: Numbers tried to find one of each plural category (CLDR's) for the page's scripts.
_SAMPLES = (*range(0, 32), 100, 101, 102, 1000, 1001, 1_000_000)
#: `%(name)s` placeholders, as Jinja's trans blocks, Python and our scripts write them.
PLACEHOLDER = re.compile(r"%\((\w+)\)[sd]")


class CatalogError(FundraiserError):
    """A catalog (.po file) cannot be read."""


def N_(message: str) -> str:
    """Marks a message for extraction where it is written; it is translated where shown."""
    return message


def candidates(language: str) -> list[str]:
    """Catalog folders to try, most specific first: 'fr-CA' -> ['fr_CA', 'fr']."""
    name = babel_locale(language, default="")
    if not name:
        return []
    pieces = name.split("_")
    return ["_".join(pieces[:count]) for count in range(len(pieces), 0, -1)]


def catalog_files(language: str, own: Path | None = None) -> list[Path]:
    """The catalogs that speak for `language`, the first one first: at each level (fr_CA,
    then fr) the co-op's own catalog, then the kit's."""
    folders = ([own / OWN_LOCALES] if own is not None else []) + [PACKAGE_LOCALES]
    found = []
    for name in candidates(language):
        for folder in folders:
            path = folder / name / "LC_MESSAGES" / f"{DOMAIN}.po"
            if path.is_file():
                found.append(path)
    return found


@functools.lru_cache(maxsize=64)
def _compiled(path: str, stamp: tuple[int, int]) -> bytes:
    """One catalog as .mo bytes (`stamp`: its mtime and size, so an edit is read again)."""
    try:
        with open(path, "rb") as source:
            catalog = read_po(source, domain=DOMAIN, abort_invalid=True)
    except (PoFileError, UnicodeDecodeError, ValueError) as exc:
        raise CatalogError(
            f"the catalog {path} cannot be read ({exc}): fix it (a .po file, e.g. checked "
            "with `pybabel compile --statistics`), or remove it"
        ) from None
    data = io.BytesIO()
    write_mo(data, catalog, use_fuzzy=False)
    return data.getvalue()


@functools.lru_cache(maxsize=32)
def _chain(files: tuple[tuple[str, tuple[int, int]], ...]) -> gettext.NullTranslations:
    """The catalogs joined, the first asked first; English (the ids) when none has it."""
    if not files:
        return gettext.NullTranslations()
    links = [
        Translations(io.BytesIO(_compiled(path, stamp)), domain=DOMAIN) for path, stamp in files
    ]
    for link, after in itertools.pairwise(links):
        link.add_fallback(after)
    return links[0]


def translations(language: str, own: Path | None = None) -> gettext.NullTranslations:
    """The kit's words in `language` (a BCP 47 tag or Babel's name), with the co-op's own
    catalogs (under `own`/locale) first. Shared and cached: do not add fallbacks to it."""
    files = []
    for path in catalog_files(language, own):
        stat = path.stat()
        files.append((str(path), (stat.st_mtime_ns, stat.st_size)))
    return _chain(tuple(files))


def og_locale(tag: str, country: str | None = None) -> str:
    """Open Graph's language_TERRITORY: 'en-GB' -> 'en_GB'; 'fr' in FR -> 'fr_FR'; 'fr'
    alone -> CLDR's likely territory, 'fr_FR'."""
    try:
        locale = Locale.parse(babel_locale(tag))
    except (ValueError, UnknownLocaleError):
        return "en_GB"
    if locale.territory:
        return f"{locale.language}_{locale.territory}"
    region = (country or "").split("-")[0].upper()
    if region:
        try:
            Locale.parse(f"{locale.language}_{region}")
        except (ValueError, UnknownLocaleError):
            pass
        else:
            return f"{locale.language}_{region}"
    likely = str(get_global("likely_subtags").get(locale.language, ""))
    territory = likely.split("_")[-1] if likely.count("_") else ""
    return f"{locale.language}_{territory}" if territory.isupper() else locale.language


@dataclass(frozen=True)
class Language:
    """The co-op's language, as each face needs it named, with its translations."""

    tag: str  # BCP 47, as HTML's lang has it: "fr", "en-GB"
    locale: str  # Babel's, for money and dates: "fr", "en_GB"
    og_locale: str  # Open Graph's: "fr_FR", "en_GB"
    translations: gettext.NullTranslations = field(compare=False, repr=False)
    catalogs: tuple[Path, ...] = ()  # the .po files read, the first one first

    @property
    def primary(self) -> str:
        """The language alone: 'en' for 'en-GB' (Pelican's DEFAULT_LANG)."""
        return self.tag.split("-")[0].lower()

    def gettext(self, message: str) -> str:
        return self.translations.gettext(message)

    def ngettext(self, singular: str, plural: str, count: int) -> str:
        return self.translations.ngettext(singular, plural, count)

    def has_catalog(self) -> bool:
        return bool(self.catalogs)


def language(tag: str, country: str | None = None, own: Path | None = None) -> Language:
    """The Language for a BCP 47 tag (campaign.toml's), with a co-op's folder for its own
    catalogs."""
    return Language(
        tag=tag,
        locale=babel_locale(tag),
        og_locale=og_locale(tag, country),
        translations=translations(tag, own),
        catalogs=tuple(catalog_files(tag, own)),
    )


def for_campaign(campaign: Campaign) -> Language:
    """The campaign's language: [coop] language, the co-op's country, its own catalogs."""
    coop = campaign.coop
    return language(coop.language, coop.country, campaign.directory)


def install(env: jinja2.Environment, words: gettext.NullTranslations) -> None:
    """Jinja's i18n extension in `env` with these translations: `{% trans %}` (trimmed:
    a message is one line of words, however the template wraps it), `_()`, `ngettext()`,
    new-style (`%(name)s` filled in by gettext, values escaped where autoescaping is on)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.install_gettext_translations(words, newstyle=True)  # type: ignore[attr-defined]


def install_callables(
    env: jinja2.Environment,
    gettext_: Callable[..., str],
    ngettext_: Callable[..., str],
) -> None:
    """As `install`, with our own new-style callables (they fill in the values themselves)."""
    if "jinja2.ext.InternationalizationExtension" not in env.extensions:
        env.add_extension("jinja2.ext.i18n")
    env.policies["ext.i18n.trimmed"] = True
    env.newstyle_gettext = True  # type: ignore[attr-defined]
    env.globals.update(gettext=gettext_, ngettext=ngettext_)


def plural_samples(locale: str) -> dict[str, int]:
    """A number of each plural category the locale has (CLDR's names: one, few, many,
    other), as the browser's Intl.PluralRules names them."""
    rule = Locale.parse(locale).plural_form
    samples: dict[str, int] = {}
    for count in _SAMPLES:
        samples.setdefault(rule(count), count)
    return samples


def script_messages(words: Language, scripts: Iterable[Path]) -> dict[str, dict[str, Any]]:
    """The messages each of the page's scripts asks for, translated, by the script's file
    name: {msgid: text} for `_()`, and {singular: {category: text}} for `ngettext()`,
    read from the scripts themselves by Babel's JavaScript extractor. The page carries
    them (a data-messages attribute), so nothing is fetched for them."""
    from babel.messages.extract import extract

    samples = plural_samples(words.locale)
    found: dict[str, dict[str, Any]] = {}
    for path in scripts:
        mine = found.setdefault(path.name, {})
        with path.open("rb") as source:
            for _line, message, _comments, _context in extract("javascript", source):
                if isinstance(message, str):
                    mine[message] = words.gettext(message)
                elif len(message) >= 2 and message[0] and message[1]:
                    singular, plural = str(message[0]), str(message[1])
                    mine[singular] = {
                        category: words.ngettext(singular, plural, count)
                        for category, count in samples.items()
                    }
        found[path.name] = dict(sorted(mine.items()))
    return found


def script_files(folders: Iterable[Path]) -> list[Path]:
    """The scripts a site serves (js/*.js in each static folder; a later folder's copy of
    a file wins, as the build copies it over the earlier one)."""
    chosen: dict[str, Path] = {}
    for folder in folders:
        for path in sorted((folder / "js").glob("*.js")):
            chosen[path.name] = path
    return [chosen[name] for name in sorted(chosen)]
