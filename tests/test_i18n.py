"""The co-op's language: every word the kit shows comes from its catalogs, in English or French.

- The catalogs are complete (no empty or fuzzy message, the same placeholders,
  markup and Markdown as the English) and hold exactly what Babel extracts from
  the sources today (babel.cfg): a new string without a translation fails here.
- A French co-op (campaign.toml's [coop] language = "fr", in FR, in EUR) gets a
  French site (lang, og:locale, the theme's words, money "50,00 €", dates), a
  French pledge form and its script, French mail from the SMTP server, a French
  certificate and statement, and French private pages from the pledge service.
"""

# French is written with its own apostrophe and the multiplication sign, as the catalogs have them.
# ruff: noqa: RUF001

from __future__ import annotations

import io
import json
import re
import shutil
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pypdf
import pytest
from babel.dates import format_date
from babel.messages.catalog import Catalog, Message
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from babel.numbers import format_currency

from fundraiser import i18n
from fundraiser.config import load_campaign
from fundraiser.documents.certificates import Renderer, Spec
from tests import stripe_fixtures
from tests.conftest import ROOT, Cli
from tests.sitehelpers import Backer, add_pledges, build, copy_campaign, parse_html, sqlite_url
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server, found  # noqa: F401 - fixture
from tests.stripe_fixtures import TestClient, make_settings

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env

LOCALES = ROOT / "fundraiser" / "locale"
LANGUAGES = ("en", "fr")
#: The example campaign as a French co-op would write it.
FRENCH = (
    ('country = "GB-ENG"', 'country = "FR"'),
    ('language = "en-GB"', 'language = "fr"'),
    (
        'legal_form = "co-operative society"',
        'legal_form = "société coopérative d\'intérêt collectif"',
    ),
    ('currency = "GBP"', 'currency = "EUR"'),
    ('timezone = "Europe/London"', 'timezone = "Europe/Paris"'),
)


def euros(amount: str) -> str:
    """Money as Babel writes it in French ("50,00 €", a no-break space before the sign)."""
    return str(format_currency(Decimal(amount), "EUR", locale="fr"))


def french_date(day: date) -> str:
    return str(format_date(day, "long", locale="fr"))


def squash(text: str) -> str:
    """Words with single spaces: French puts no-break spaces before ":" and in numbers,
    which the page's text, a mail's subject and a PDF's text give back as they like."""
    return " ".join(text.split())


def has(text: str, *needles: str) -> None:
    flat = squash(text)
    for needle in needles:
        assert squash(needle) in flat, (needle, flat)


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
    assert [p.name for p in scripts] == ["figures.js", "pledge.js"]
    messages = i18n.script_messages(words, scripts)
    pledge = messages["pledge.js"]
    assert pledge["Recording your pledge…"] == "Enregistrement de votre souscription…"
    total = pledge["%(shares)s share × %(price)s = %(total)s"]
    assert total["one"] == "%(shares)s part × %(price)s = %(total)s"
    assert total["other"] == "%(shares)s parts × %(price)s = %(total)s"
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


# -- the site in French ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def french_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site-fr")
    campaign = copy_campaign(folder, replace=FRENCH)
    url = sqlite_url(folder)
    from fundraiser.money import Money

    add_pledges(
        url,
        [
            Backer("A", "a@example.org", "1 Rue", 4, "2026-10-01T10:00:00+00:00", tier="neighbour"),
            Backer(
                "B", "b@example.org", "2 Rue", 1, "2026-10-02T10:00:00+00:00", display_name="Béa"
            ),
        ],
        Money(5000, "EUR"),
    )
    output = folder / "out"
    result = build(campaign, url, output)
    assert result.exit_code == 0, result.output
    return output


def test_the_site_is_french_from_its_lang_to_its_money_and_dates(french_site: Path) -> None:
    pages = (
        "index.html",
        "pledge.html",
        "share-offer.html",
        "transparency.html",
        "updates/index.html",
    )
    for name in pages:
        page = parse_html(french_site / name)
        [html] = page.find_all("html")
        assert html.attrs["lang"] == "fr", name
        [og] = page.find_all("meta", property="og:locale")
        assert og.attrs["content"] == "fr_FR", name
        has(page.text, "Aller au contenu principal", "Ce site ne dépose aucun cookie")
        assert "Skip to the main content" not in page.text

    home = parse_html(french_site / "index.html").text
    has(home, "souscrits sur un objectif de 250 000 €", "Souscrire des parts", "Devenir sociétaire")
    has(home, f"Chaque part sociale coûte {euros('50')}.", "Tout ou rien :")
    # The deadline in French, in Paris time: 18:00 UTC is 19:00 there.
    has(home, f"L’offre prend fin le {french_date(date(2027, 2, 28))}, 19:00 UTC+01:00.")

    raw = (french_site / "pledge.html").read_text(encoding="utf-8")
    assert euros("50") in raw  # exactly as Babel writes it
    pledge = parse_html(french_site / "pledge.html")
    has(pledge.text, "Combien de parts ?", f"Chaque part coûte {euros('50')}.")
    has(pledge.text, f"Good neighbour : 4 parts, {euros('200')}")
    has(pledge.text, f"De 1 à 200 (de {euros('50')} à {euros('10000')}).")
    has(pledge.text, "Enregistrer ma carte et souscrire")
    [form] = pledge.find_all("form", id="pledge-form")
    assert form.attrs["data-locale"] == "fr"
    words = json.loads(form.attrs["data-messages"])
    assert words["Keep this link"] == "Conservez ce lien"

    offer = parse_html(french_site / "share-offer.html").text
    has(offer, f"Du {french_date(date(2026, 9, 1))}, 10:00 UTC+02:00")
    has(offer, f"{euros('250000')} ; l’offre n’accepte pas plus de {euros('400000')}.")

    transparency = parse_html(french_site / "transparency.html").text
    has(transparency, "Vérifiez nos comptes", "Béa")
    has(transparency, "1 nom public, choisi par les souscripteurs eux-mêmes.")
    # The charts are drawn in French too.
    svg = (french_site / "transparency.html").read_text(encoding="utf-8")
    assert '<title id="chart-days-title">Montants souscrits par jour</title>' in svg
    has(svg, f"{euros('250')} souscrits en", "Le meilleur jour a réuni")


def test_the_pledge_forms_script_speaks_french_in_the_browser(french_site: Path) -> None:
    from tests.browser import CHROMIUM, browser_page

    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed") if not _ci() else pytest.fail("no Chromium in CI")
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Quiet, directory=str(french_site))
    )
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{server.server_address[1]}/"
        with browser_page() as (page, errors):
            # Stripe.js cannot load here, so the script says so: in French.
            page.route("**/js.stripe.com/**", lambda route: route.abort())
            page.goto(base + "pledge.html")
            status = page.locator("#pledge-status")
            status.wait_for(state="attached")
            page.wait_for_function("document.querySelector('#pledge-status').textContent !== ''")
            has(status.inner_text(), "Le formulaire de carte n’a pas pu se charger.")
            page.check("#tier-neighbour")
            # The browser's own French money (Intl), in the catalog's sentence.
            total = squash(page.inner_text("#pledge-total"))
            assert total == "Good neighbour : 4 parts × 50,00 € = 200,00 €", total
            page.check("#tier-custom")
            page.fill("#shares", "900")
            has(page.inner_text("#pledge-total"), "Indiquez un nombre entier de parts, de 1 à 200.")
            assert errors == []
    finally:
        server.shutdown()
        server.server_close()


def _ci() -> bool:
    import os

    return os.environ.get("CI") == "true"


# -- mail, certificates and statements in French --------------------------------------------


@pytest.fixture
def french_cli(campaign_dir: Path, sqlite_url: str) -> Cli:
    copy_campaign(campaign_dir, replace=FRENCH)
    return Cli(campaign_dir / "campaign.toml", sqlite_url)


def plain(message: EmailMessage) -> str:
    return " ".join(message.get_body(("plain",)).get_content().split())


def test_a_french_backer_gets_french_mail_from_the_smtp_server(
    french_cli: Cli, smtp_server: SmtpServer
) -> None:
    name = "Zoé [lien](http://evil.example) **gras**"
    french_cli.ok(
        "pledges", "add", "--name", name, "--email", "zoe@example.org", "--address", "1 Rue",
        "--amount", "2500.00", "--notify",
    )  # fmt: skip
    french_cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    [received] = smtp_server.to("zoe@example.org")
    message = received.message
    assert squash(str(message["Subject"])) == squash(
        f"Nous avons bien reçu votre souscription à Hearth Social Co-operative ({euros('2500')})"
    )
    text = plain(message)
    assert text.startswith(f"Bonjour {name},")
    has(text, f"Nous avons enregistré votre souscription de **{euros('2500')}**")
    has(text, f"Merci de virer **{euros('2500')}** sur le compte suivant :")
    has(text, "Titulaire du compte : Hearth Social Co-operative Ltd")
    has(text, f"À la clôture de la campagne, le {french_date(date(2027, 2, 28))}")
    assert "Dear" not in text and "Thank you" not in text and "Please send" not in text
    html = message.get_body(("html",)).get_content()
    assert '<html lang="fr">' in html and "Bonjour Zoé" in html
    assert f"<strong>{euros('2500')}</strong>" in html  # the translator's bold, as Markdown
    # A name is text in the French words too: never a link, never bold.
    assert "evil.example" in html and 'href="http://evil.example' not in html
    assert "<strong>gras</strong>" not in html
    has(html, "forme juridique : société coopérative d&#39;intérêt collectif")


def test_a_french_members_welcome_and_certificate_read_french(
    french_cli: Cli, smtp_server: SmtpServer, campaign_dir: Path
) -> None:
    found(french_cli)
    french_cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    [received] = smtp_server.to("grace@example.org")
    message = received.message
    assert squash(str(message["Subject"])) == (
        "Bienvenue dans Hearth Social Co-operative : votre numéro de sociétaire est le 1"
    )
    text = plain(message)
    has(text, "**Numéro de sociétaire :** 1", f"**Parts détenues :** 4 ({euros('200')} versés)")
    has(text, f"**Date d’admission :** {french_date(date(2026, 12, 10))}")
    has(text, "assemblée générale", "Votre certificat de parts sociales est joint")
    [pdf] = [a.get_content() for a in message.iter_attachments()]
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    words = " ".join(" ".join(p.extract_text() for p in reader.pages).split())
    for needle in (
        "CERTIFICAT DE PARTS SOCIALES",  # the heading is set in capitals
        "Certificat n° 1",
        "Il est certifié que",
        "Grace Hopper",
        "sociétaire n° 1",
        "4 parts sociales entièrement libérées",
        f"Émis le {french_date(date(2026, 12, 10))}",
        "Pour la société : secrétaire",
    ):
        has(words, needle)
    has(words, euros("50"), euros("200"))
    assert "Share" not in words and "Certificate" not in words
    assert reader.metadata is not None
    assert (
        reader.metadata.title
        == "Certificat de parts sociales n°\u00a01, Hearth Social Co-operative"
    )


def test_a_french_statement_reads_french(french_cli: Cli, campaign_dir: Path) -> None:
    toml = campaign_dir / "campaign.toml"
    toml.write_text(toml.read_text().replace("certificates = true", "certificates = false"))
    found(french_cli)
    french_cli.ok("members", "withdraw", "3", "--shares", "50")
    french_cli.ok("certificates", "make")
    path = campaign_dir / "var" / "certificates" / "statement-000003.pdf"
    words = " ".join(p.extract_text() for p in pypdf.PdfReader(path).pages)
    has(words, "Relevé de compte de parts sociales", "Parts émises", "Parts retirées")
    has(words, "Parts détenues au", "Page 1", "fait foi de votre détention", euros("-2500"))


def test_a_certificate_remade_when_its_catalog_changes(tmp_path: Path) -> None:
    from fundraiser.documents import PACKAGE_TEMPLATES
    from fundraiser.documents.certificates import templates_fingerprint

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


# -- the pledge service's private pages in French -----------------------------------------


@pytest.fixture
def french_service(campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]) -> Any:
    from dataclasses import replace

    from fundraiser.service.app import create_app

    copy_campaign(campaign_dir, replace=(*FRENCH, ('goal = "250000.00"', 'goal = "100.00"')))
    settings = replace(
        make_settings(campaign_dir, sqlite_url, stripe_env),
        pledges_per_minute=6000,
        pledge_burst=500,
    )
    with TestClient(create_app(settings), base_url="http://testserver") as client:
        yield client


def test_the_private_page_speaks_french(
    french_service: TestClient, stripe_env: dict[str, str]
) -> None:
    from tests.test_private_page import Page, saved_pledge, token_of

    body = saved_pledge(french_service, stripe_env, email="zoe@example.org", tier="neighbour")
    token = token_of(body)
    manage = french_service.get(f"/manage/{token}")
    assert manage.status_code == 200
    page = Page(manage.text)
    assert page.find("html", lang="fr")
    assert page.find("meta", property="og:locale", content="fr_FR")
    text = page.text
    assert "Votre souscription" in text and "Votre carte est enregistrée" in text
    has(
        text,
        f"Elle sera débitée de {euros('200')} le {french_date(date(2027, 2, 28))} "
        "si l’objectif est atteint.",
        f"{euros('200')} (4 parts à {euros('50')})",
    )
    has(text, "Vous avez changé d’avis ?", "Annuler cette souscription")
    assert "Offre de parts sociales" in text  # the menu's link to the share offer
    assert "Your pledge" not in text and "Cancel this pledge" not in text

    ask = Page(french_service.get(f"/manage/{token}/cancel").text)
    has(ask.text, "Annuler cette souscription ?", "Oui, annuler ma souscription")
    done = french_service.post(f"/manage/{token}/cancel", follow_redirects=True)
    assert "Votre souscription est annulée" in Page(done.text).text

    broken = Page(french_service.get("/manage/not-a-token").text)
    assert "Ce lien ne fonctionne pas" in broken.text


def test_the_campaign_language_is_checked_as_html_lang_writes_it() -> None:
    campaign = load_campaign(ROOT / "campaign.toml")
    words = i18n.for_campaign(campaign)
    assert (words.tag, words.locale, words.og_locale) == ("en-GB", "en_GB", "en_GB")
    assert words.catalogs == (LOCALES / "en" / "LC_MESSAGES" / "fundraiser.po",)
