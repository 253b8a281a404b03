"""`fundraiser init` for founders anywhere: presets, worked-out defaults, a starter site."""

from __future__ import annotations

import json
import tempfile
import tomllib
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from fundraiser.cli import main
from fundraiser.config import Mode, load_campaign
from fundraiser.scaffold import (
    InitAnswers,
    default_deadline,
    default_opens,
    render,
    toml_string,
)

NOW = {"FUNDRAISER_NOW": "2027-01-01T10:00:00+00:00"}
DRAFT_WORDS = "Write your first campaign update"


def init(target: Path, *args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, ["init", str(target), *args], input=input, env=NOW)


def run(campaign: Path, *args: str) -> Result:
    return CliRunner().invoke(main, ["--campaign", str(campaign), *args], env=NOW)


def refused(result: Result, target: Path, *words: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output
    assert not (target / "campaign.toml").exists()


# -- presets --------------------------------------------------------------------------

PRESETS = [
    pytest.param(
        ["--country", "GB-ENG"],
        ("co-operative society", "England and Wales under the Co-operative and Community "
         "Benefit Societies Act 2014", "Financial Conduct Authority"),
        ("GBP", "Europe/London", "en"),
        id="england-and-wales",
    ),
    pytest.param(
        ["--country", "GB-SCT", "--legal-form", "community-benefit-society"],
        ("community benefit society", "Scotland under the Co-operative and Community "
         "Benefit Societies Act 2014", "Financial Conduct Authority"),
        ("GBP", "Europe/London", "en"),
        id="scotland-bencom",
    ),
    pytest.param(
        ["--country", "FR", "--legal-form", "scic"],
        ("société coopérative d'intérêt collectif (SCIC)",
         "France (loi n° 47-1775 du 10 septembre 1947, titre II ter)",
         "Registre du commerce et des sociétés (RCS)"),
        ("EUR", "Europe/Paris", "fr"),
        id="france-scic",
    ),
    pytest.param(
        ["--country", "fr", "--legal-form", "scop"],
        ("société coopérative et participative (SCOP)",
         "France (loi n° 78-763 du 19 juillet 1978)",
         "Registre du commerce et des sociétés (RCS)"),
        ("EUR", "Europe/Paris", "fr"),
        id="france-scop",
    ),
    pytest.param(
        ["--country", "DE"],
        ("co-operative (eingetragene Genossenschaft, eG)",
         "Germany (Genossenschaftsgesetz, GenG)",
         "Genossenschaftsregister of the local court (Amtsgericht)"),
        ("EUR", "Europe/Berlin", "de"),
        id="germany-eg",
    ),
    pytest.param(
        ["--country", "ES"],
        ("sociedad cooperativa", "Spain (Ley 27/1999, de 16 de julio, de Cooperativas)",
         "Registro de Sociedades Cooperativas"),
        ("EUR", "Europe/Madrid", "es"),
        id="spain-cooperativa",
    ),
    pytest.param(
        ["--country", "US", "--jurisdiction",
         "the State of Minnesota under Minnesota Statutes chapter 308A"],
        ("cooperative corporation", "the State of Minnesota under Minnesota Statutes chapter 308A",
         "Secretary of State of the state of incorporation"),
        ("USD", "America/New_York", "en"),
        id="us-cooperative-corporation",
    ),
    pytest.param(
        ["--country", "IT", "--legal-form-name", "società cooperativa",
         "--jurisdiction", "Italy under the Codice civile, articles 2511 to 2548",
         "--registration-authority", "Registro delle imprese"],
        ("società cooperativa", "Italy under the Codice civile, articles 2511 to 2548",
         "Registro delle imprese"),
        ("EUR", "Europe/Rome", "it"),
        id="other-italy",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("args", "legal", "derived"), PRESETS)
def test_init_fills_in_the_legal_form_and_defaults_from_the_country(
    tmp_path: Path, args: list[str], legal: tuple[str, str, str], derived: tuple[str, str, str]
) -> None:
    target = tmp_path / "coop"
    result = init(target, "--yes", "--name", "Riverside Bakers", *args)
    assert result.exit_code == 0, result.output
    campaign = load_campaign(target / "campaign.toml")
    coop = campaign.coop
    assert (coop.legal_form, coop.jurisdiction, coop.registration_authority) == legal
    assert (campaign.currency, campaign.campaign.timezone, coop.language) == derived
    assert coop.country == args[1].upper()
    assert coop.registration_number is None and coop.contact_email is None
    # The dates are the co-op's own: the opening to the hour, in its time zone.
    opens = campaign.campaign.opens
    assert opens.utcoffset() == opens.astimezone(ZoneInfo(derived[1])).utcoffset()
    assert opens.astimezone(ZoneInfo(derived[1])).minute == 0
    assert run(target / "campaign.toml", "check").exit_code == 0


def test_a_french_scic_in_euros_from_options(tmp_path: Path) -> None:
    target = tmp_path / "fourneaux"
    result = init(
        target, "--yes", "--name", "Les Fourneaux", "--country", "FR", "--legal-form", "scic",
        "--contact-email", "bonjour@fourneaux.example", "--website", "https://fourneaux.example",
        "--registration-number", "RCS Lyon 912 345 678", "--goal", "50000", "--price", "50",
        "--min-shares", "1", "--max-shares", "200", "--deadline", "2027-03-31 18:00",
        "--mode", "keep-it-all",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    campaign = load_campaign(target / "campaign.toml")
    assert campaign.coop.registration_number == "RCS Lyon 912 345 678"
    assert campaign.coop.website == "https://fourneaux.example"
    assert campaign.campaign.goal.format() == "€50,000.00"
    # 18:00 in Paris on 31 March 2027 is summer time.
    assert campaign.campaign.deadline.isoformat() == "2027-03-31T18:00:00+02:00"
    check = json.loads(run(target / "campaign.toml", "check", "--json").stdout)
    assert check == {"ok": True, "problems": [], "warnings": []}
    built = run(target / "campaign.toml", "site", "build")
    assert built.exit_code == 0, built.output
    footer = visible_text(target / "site" / "output" / "index.html")
    # The legal form as written: "(SCIC)", not lower-cased to "(scic)"; in French.
    assert (
        "Les Fourneaux — forme juridique : société coopérative d'intérêt collectif "
        "(SCIC) ; droit applicable : France (loi n° 47-1775 du 10 septembre 1947, "
        "titre II ter) ; numéro d’immatriculation RCS Lyon 912 345 678." in footer  # noqa: RUF001 - French typography
    ), footer


def test_other_legal_form_is_asked_for_in_words(tmp_path: Path) -> None:
    answers = [
        "Cooperativa del Forno",
        "IT",
        "",  # legal form: "other" is the only choice without a preset
        "società cooperativa",
        "Italy under the Codice civile",
        "",  # registration authority: not known yet
        "",  # registration number
        "ciao@forno.example",
        "https://forno.example",
        "",  # time zone
        "",  # language
        "",  # currency
        "20000",
        "25",
        "1",
        "100",
        "",  # opens: now
        "",  # deadline: six weeks on
        "",  # mode
    ]
    target = tmp_path / "forno"
    result = init(target, input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert "other: you write the legal form out" in result.output
    coop = load_campaign(target / "campaign.toml").coop
    assert (coop.legal_form, coop.jurisdiction) == (
        "società cooperativa",
        "Italy under the Codice civile",
    )
    assert coop.registration_authority is None and coop.language == "it"  # fmt: skip
    text = (target / "campaign.toml").read_text()
    assert "deadline = 2027-02-12T18:00:00+01:00" in text  # six weeks on, at six, Rome time


def test_a_wrong_answer_is_asked_again(tmp_path: Path) -> None:
    answers = [
        "Harbour Co-op",
        "UK",  # not an ISO code
        "GB-SCT",
        "",  # legal form: co-operative society
        "",
        "harbour at example",  # not an address
        "harbour@harbour.example",
        "harbour.example",  # no scheme
        "https://harbour.example",
        "Europe/Glasgow",  # no such zone
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
        "",
    ]
    target = tmp_path / "harbour"
    result = init(target, input="\n".join(answers) + "\n")
    assert result.exit_code == 0, result.output
    assert 'UK is written GB in ISO 3166: use "GB-ENG" or "GB-SCT" or "GB-WLS"' in result.output
    assert "'harbour at example' is not an email address" in result.output
    assert "'harbour.example' is not a web address" in result.output
    assert "'Europe/Glasgow' is not a known time zone" in result.output
    coop = load_campaign(target / "campaign.toml").coop
    assert coop.country == "GB-SCT" and coop.contact_email == "harbour@harbour.example"
    assert coop.jurisdiction.startswith("Scotland under")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--country", "UK"], ["--country", 'use "GB-ENG" or "GB-SCT" or "GB-WLS"']),
        (["--country", "GB"], ["GB-ENG (England)", "GB-SCT (Scotland)", "GB-WLS (Wales)"]),
        (["--country", "Narnia"], ["'Narnia' is not a country code"]),
        (["--country", "DE", "--legal-form", "scic"], ["'scic' is not a legal form for Germany"]),
        (["--country", "US"], ["--jurisdiction is needed", "state"]),
        (["--country", "IT"], ["--legal-form-name is needed"]),
        (["--country", "IT", "--legal-form-name", "cooperativa"], ["--jurisdiction is needed"]),
        (
            ["--country", "CA", "--legal-form-name", "co-operative", "--jurisdiction", "Ontario"],
            ["--timezone is needed", "America/Toronto", "America/Vancouver"],
        ),
        (["--timezone", "Mars/Olympus"], ["'Mars/Olympus' is not a known time zone"]),
        (["--language", "english"], ["'english' is not a language"]),
        (["--contact-email", "members"], ["'members' is not an email address"]),
        (["--website", "hearth.example"], ["'hearth.example' is not a web address"]),
        (["--name", "Hearth\nStatus: draft"], ["line break"]),
        (["--name", "x" * 300], ["300 characters long"]),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) and v and v[0].startswith("--") else None,
)
def test_init_refuses_what_cannot_make_a_campaign(
    tmp_path: Path, args: list[str], words: list[str]
) -> None:
    target = tmp_path / "bad"
    refused(init(target, "--yes", *args), target, *words)


# -- the starter site -----------------------------------------------------------------


def test_the_starter_update_stays_a_draft_until_published(tmp_path: Path) -> None:
    target = tmp_path / "coop"
    assert init(target, "--yes", "--name", "Riverside Bakers").exit_code == 0
    (update,) = (target / "content" / "updates").glob("*.md")
    header = update.read_text().split("\n\n", 1)[0]
    assert "Status: draft" in header.splitlines()  # Pelican reads only the header
    campaign = target / "campaign.toml"
    preview = run(campaign, "site", "build")
    assert preview.exit_code == 0, preview.output
    output = target / "site" / "output"
    for page in ("index.html", "updates/index.html", "feeds/updates.atom.xml"):
        assert DRAFT_WORDS not in (output / page).read_text(), page
    # The preview keeps it under drafts/, unlinked, for its authors to read.
    assert DRAFT_WORDS in (output / "drafts" / "we-are-launching.html").read_text()
    assert not (output / "updates" / "we-are-launching.html").exists()
    published = CliRunner().invoke(
        main,
        ["--campaign", str(campaign), "site", "build", "--publish"],
        env={**NOW, "STRIPE_PUBLISHABLE_KEY": "pk_test_starter"},
    )
    assert published.exit_code == 0, published.output
    leaks = [
        p
        for p in output.rglob("*")
        if p.is_file() and DRAFT_WORDS in p.read_text("utf-8", "replace")
    ]
    assert leaks == []  # fmt: skip


class Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def visible_text(path: Path) -> str:
    return " ".join(" ".join(read_page(path).text).split())


def test_a_name_with_markup_is_shown_as_text_on_every_page(tmp_path: Path) -> None:
    name = 'Bakers & <img src=x onerror=alert(1)> *Co* [win](http://evil.example) "Ltd"'
    target = tmp_path / "coop"
    result = init(target, "--yes", "--name", name)
    assert result.exit_code == 0, result.output
    assert load_campaign(target / "campaign.toml").coop.name == name
    built = run(target / "campaign.toml", "site", "build")
    assert built.exit_code == 0, built.output
    pages = sorted((target / "site" / "output").rglob("*.html"))
    assert len(pages) >= 10
    for path in pages:
        page = read_page(path)
        assert not [t for t in page.tags if t[0] == "img" and t[1].get("src") == "x"], path
        assert not [t for t in page.tags if "evil.example" in str(t[1].get("href"))], path
        assert "<em>Co</em>" not in path.read_text()
    home = visible_text(target / "site" / "output" / "index.html")
    assert f"Say in two or three sentences what {name} will do" in home


# -- what init writes reads back as it was typed ---------------------------------------

ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=80)
ONE_LINE = st.text(
    alphabet=st.characters(
        exclude_categories=("Cs", "Cc"),
        exclude_characters="\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069",
    ),
    min_size=1,
    max_size=200,
).filter(lambda text: text.strip() != "")


@given(ANY_TEXT)
def test_any_text_is_written_as_a_toml_string_that_reads_back_the_same(text: str) -> None:
    assert tomllib.loads(f"x = {toml_string(text)}\n")["x"] == text


@settings(max_examples=40, deadline=None)
@given(name=ONE_LINE, jurisdiction=ONE_LINE)
def test_any_one_line_name_makes_a_campaign_that_loads_with_that_name(
    name: str, jurisdiction: str
) -> None:
    now = datetime(2027, 1, 1, 10, tzinfo=UTC)
    opens = default_opens(now, "Europe/Paris")
    answers = InitAnswers(
        name=name, country="FR", legal_form="société coopérative", jurisdiction=jurisdiction,
        registration_authority="", registration_number="", contact_email="", website="",
        timezone="Europe/Paris", language="fr", currency="EUR", goal="1000", price="10",
        min_shares=1, max_shares=10, opens=opens, deadline=default_deadline(opens),
        mode=Mode.KEEP_IT_ALL,
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "campaign.toml"
        path.write_text(render(answers), encoding="utf-8")
        coop = load_campaign(path).coop
    assert (coop.name, coop.jurisdiction) == (name.strip(), jurisdiction.strip())
