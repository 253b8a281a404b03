"""The kit's catalogs (fundraiser/i18n.py): complete, up to date, and read as a co-op needs.

- Every message is translated in English and French, with the same placeholders,
  markup and Markdown as the English, none fuzzy; the catalogs hold exactly what
  Babel extracts from the sources today (babel.cfg), so a new string without a
  translation fails here.
- A language reads its catalog, then its parent ("fr-CA", then "fr"), then the
  kit's English; a co-op's own catalog beside campaign.toml goes first, message
  by message, and a broken one is named with the fix.

The French co-op's faces (site, scripts, mail, certificates, private pages) are
tests/journeys/test_french_coop.py.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from fundraiser import i18n
from fundraiser.config import load_campaign
from fundraiser.documents.certificates import Spec
from fundraiser.documents.printing import Renderer
from tests.conftest import ROOT

LOCALES = ROOT / "fundraiser" / "locale"
LANGUAGES = ("en", "fr")


def catalog(language: str) -> Catalog:
    with (LOCALES / language / "LC_MESSAGES" / "fundraiser.po").open("rb") as source:
        return read_po(source)


def forms(message: Message) -> list[str]:
    return list(message.string) if isinstance(message.string, tuple | list) else [message.string]


def ids(message: Message) -> list[str]:
    return list(message.id) if isinstance(message.id, tuple | list) else [message.id]


def shape(text: str) -> tuple[tuple[str, ...], tuple[str, ...], int, int]:
    """What a translation must keep of its message: placeholders, tags, bold, percent signs."""
    return (
        tuple(sorted(i18n.PLACEHOLDER.findall(text))),
        tuple(sorted(re.findall(r"</?[a-z]+", text))),
        text.count("**"),
        text.count("%%"),
    )


# -- the catalogs: complete, and up to date with the sources ---------------------------------


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_message_is_translated_with_its_placeholders_and_markup(language: str) -> None:
    found = catalog(language)
    assert not found.fuzzy, "the catalog's header is marked fuzzy"
    problems = []
    for message in found:
        if not message.id:
            continue
        name = ids(message)[0][:60]
        if message.fuzzy:
            problems.append(f"fuzzy: {name}")
        if any(not text.strip() for text in forms(message)):
            problems.append(f"untranslated: {name}")
            continue
        wanted = {shape(i) for i in ids(message)}
        for text in forms(message):
            if shape(text) not in wanted:
                problems.append(f"placeholders or markup changed: {name} -> {text[:60]}")
    assert problems == []
    assert len([m for m in found if m.id]) > 400


def _extracted() -> set[tuple[str, ...]]:
    """What Babel finds in the sources today, by babel.cfg (as `pybabel extract` does)."""
    with (ROOT / "babel.cfg").open(encoding="utf-8") as config:
        method_map, options_map = parse_mapping_cfg(config)
    return {
        (message,) if isinstance(message, str) else tuple(message)
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=DEFAULT_KEYWORDS
        )
        if message
    }


@pytest.fixture(scope="module")
def extracted() -> set[tuple[str, ...]]:
    return _extracted()


@pytest.mark.parametrize(
    "name", ["fundraiser.pot", "en/LC_MESSAGES/fundraiser.po", "fr/LC_MESSAGES/fundraiser.po"]
)
def test_the_catalogs_hold_exactly_what_the_sources_ask_for(
    name: str, extracted: set[tuple[str, ...]]
) -> None:
    with (LOCALES / name).open("rb") as source:
        held = {tuple(ids(m)) for m in read_po(source) if m.id}
    missing, stale = extracted - held, held - extracted
    fix = (
        "run `pybabel extract -F babel.cfg -o fundraiser/locale/fundraiser.pot .` and "
        "`pybabel update -i fundraiser/locale/fundraiser.pot -d fundraiser/locale -D fundraiser`, "
        "then translate (README: Your language)"
    )
    assert (sorted(missing), sorted(stale)) == ([], []), fix


def test_every_script_message_reaches_the_page_translated() -> None:
    words = i18n.language("fr")
    scripts = i18n.script_files([ROOT / "theme" / "static"])
    assert [p.name for p in scripts] == ["figures.js", "join.js", "pledge.js"]
    messages = i18n.script_messages(words, scripts)
    pledge = messages["pledge.js"]
    assert pledge["Recording your pledge…"] == "Enregistrement de votre souscription…"
    total = pledge["%(shares)s share × %(price)s = %(total)s"]  # noqa: RUF001 - the real sign
    assert total["one"] == "%(shares)s part × %(price)s = %(total)s"  # noqa: RUF001 - the real sign
    assert total["other"] == "%(shares)s parts × %(price)s = %(total)s"  # noqa: RUF001 - the real sign
    assert messages["figures.js"]["all taken"] == "complet"


# -- loading: languages, fallbacks, a co-op's own catalog --------------------------------------


def test_a_language_reads_its_catalog_then_its_parents_then_english(tmp_path: Path) -> None:
    assert i18n.translations("fr").gettext("Pledge for shares") == "Souscrire des parts"
    assert i18n.translations("fr-CA").gettext("Pledge for shares") == "Souscrire des parts"
    assert i18n.translations("en-GB").gettext("Pledge for shares") == "Pledge for shares"
    # No catalog: the kit's own English.
    assert i18n.translations("de").gettext("Pledge for shares") == "Pledge for shares"
    assert i18n.language("de").has_catalog() is False
    assert i18n.translations("fr").ngettext("%(count)s backer", "%(count)s backers", 2) == (
        "%(count)s souscripteurs"
    )
    names = [
        ("fr", "FR"),
        ("fr", None),
        ("fr", "CH"),
        ("en-GB", "GB-SCT"),
        ("en", "US"),
        ("en", None),
    ]
    assert [(i18n.language(tag, country).locale, i18n.language(tag, country).og_locale)
            for tag, country in names] == [
        ("fr", "fr_FR"), ("fr", "fr_FR"), ("fr", "fr_CH"), ("en_GB", "en_GB"), ("en", "en_US"),
        ("en", "en_US"),
    ]  # fmt: skip


def test_a_coop_rewords_one_message_and_keeps_the_kits_others(tmp_path: Path) -> None:
    own = tmp_path / "locale" / "fr" / "LC_MESSAGES"
    own.mkdir(parents=True)
    (own / "fundraiser.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n"Language: fr\\n"\n\n'
        'msgid "Pledge for shares"\nmsgstr "Prendre des parts"\n',
        encoding="utf-8",
    )
    words = i18n.translations("fr", tmp_path)
    assert words.gettext("Pledge for shares") == "Prendre des parts"
    assert words.gettext("Pledge again") == "Souscrire de nouveau"  # the kit's
    # A new language by a catalog alone: German, beside campaign.toml.
    german = tmp_path / "locale" / "de" / "LC_MESSAGES"
    german.mkdir(parents=True)
    (german / "fundraiser.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
        'msgid "Pledge again"\nmsgstr "Erneut zeichnen"\n',
        encoding="utf-8",
    )
    assert i18n.language("de", "DE", tmp_path).gettext("Pledge again") == "Erneut zeichnen"


def test_a_broken_catalog_is_named_with_the_fix(tmp_path: Path) -> None:
    own = tmp_path / "locale" / "fr" / "LC_MESSAGES"
    own.mkdir(parents=True)
    (own / "fundraiser.po").write_text('msgid "x"\nmsgstr "y\nmsgid', encoding="utf-8")
    with pytest.raises(i18n.CatalogError) as caught:
        i18n.translations("fr", tmp_path)
    assert str(own / "fundraiser.po") in str(caught.value) and "fix it" in str(caught.value)


def test_a_certificate_remade_when_its_catalog_changes(tmp_path: Path) -> None:
    from fundraiser.documents import PACKAGE_TEMPLATES
    from fundraiser.documents.printing import templates_fingerprint

    before = templates_fingerprint([PACKAGE_TEMPLATES], i18n.catalog_files("fr"))
    own = tmp_path / "locale" / "fr" / "LC_MESSAGES"
    own.mkdir(parents=True)
    shutil.copy(LOCALES / "fr" / "LC_MESSAGES" / "fundraiser.po", own / "fundraiser.po")
    with (own / "fundraiser.po").open("a", encoding="utf-8") as po:
        po.write("\n# a co-op's change\n")
    after = templates_fingerprint([PACKAGE_TEMPLATES], i18n.catalog_files("fr", tmp_path))
    assert before != after
    # And a renderer in French makes French HTML.
    html = Renderer([PACKAGE_TEMPLATES], "fr").html(
        Spec("x.pdf", "certificates/statement.html", "t", "2026-12-10", _statement_context())
    )
    assert '<html lang="fr">' in html and "Relevé de compte de parts sociales" in html


def _statement_context() -> dict[str, Any]:
    return {
        "language": "fr",
        "coop": {
            "name": "C",
            "legal_form": "SCIC",
            "jurisdiction": "France",
            "registration_number": None,
        },
        "member": {
            "name": "N",
            "number": 1,
            "address": "A",
            "admitted_on": "1 mars",
            "ceased_on": None,
        },
        "lines": [],
        "shares": 0,
        "paid": "0,00 €",
        "as_at": "1 mars",
    }


def test_the_campaign_language_is_checked_as_html_lang_writes_it() -> None:
    campaign = load_campaign(ROOT / "campaign.toml")
    words = i18n.for_campaign(campaign)
    assert (words.tag, words.locale, words.og_locale) == ("en-GB", "en_GB", "en_GB")
    assert words.catalogs == (LOCALES / "en" / "LC_MESSAGES" / "fundraiser.po",)
