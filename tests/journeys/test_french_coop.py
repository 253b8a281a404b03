"""A French co-op, face by face: campaign.toml's [coop] language = "fr", in FR, in EUR.

The site (lang, og:locale, the theme's words, money as Babel writes "50,00 €",
dates in French and in Paris time, the charts), the pledge form's script in a
real browser, the "we have your pledge" and welcome mails from the loopback SMTP
server (a person's text still never markup), the certificate and the statement
as PDF text, and the pledge service's private pages: all in French. The
founders' own Markdown stays as they wrote it.
"""

# French is written with its own apostrophe and the multiplication sign, as the catalogs have them.
# ruff: noqa: RUF001

from __future__ import annotations

import functools
import http.server
import io
import json
import threading
from dataclasses import replace
from datetime import date
from decimal import Decimal
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pypdf
import pytest
from babel.dates import format_date
from babel.numbers import format_currency

from fundraiser.money import Money
from fundraiser.service.app import create_app
from tests import stripe_fixtures
from tests.browser import browser_page
from tests.conftest import Cli
from tests.service.test_private_page import Page, saved_pledge, token_of
from tests.sitehelpers import Backer, add_pledges, build, copy_campaign, parse_html, sqlite_url
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server, found  # noqa: F401 - fixture
from tests.stripe_fixtures import TestClient, make_settings

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env

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


# -- the site in French ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def french_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("site-fr")
    campaign = copy_campaign(folder, replace=FRENCH)
    url = sqlite_url(folder)

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
    from tests.browser import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("Chromium is not installed") if not _ci() else pytest.fail("no Chromium in CI")

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
def french_cli(campaign_dir: Path, sqlite_url: str, request: pytest.FixtureRequest) -> Cli:
    # Marked keep_it_all: shares issued before the deadline (only keep-it-all may).
    mode = ('mode = "all-or-nothing"', 'mode = "keep-it-all"')
    keep = (mode,) if request.node.get_closest_marker("keep_it_all") else ()
    copy_campaign(campaign_dir, replace=(*FRENCH, *keep))
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


@pytest.mark.keep_it_all
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


@pytest.mark.keep_it_all
def test_a_french_statement_reads_french(french_cli: Cli, campaign_dir: Path) -> None:
    toml = campaign_dir / "campaign.toml"
    toml.write_text(toml.read_text().replace("certificates = true", "certificates = false"))
    found(french_cli)
    french_cli.ok("members", "withdraw", "3", "--shares", "50", "--waive-notice")
    french_cli.ok("certificates", "make")
    path = campaign_dir / "var" / "certificates" / "statement-000003.pdf"
    words = " ".join(p.extract_text() for p in pypdf.PdfReader(path).pages)
    has(words, "Relevé de compte de parts sociales", "Parts émises", "Parts retirées")
    has(words, "Parts détenues au", "Page 1", "fait foi de votre détention", euros("-2500"))


# -- the pledge service's private pages in French -----------------------------------------


@pytest.fixture
def french_service(campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]) -> Any:

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
