"""Countries and legal-form presets: what `init` works out from a country code."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from fundraiser import countries
from fundraiser.config import Invalid, check_country, check_language

ON = date(2027, 1, 1)
UK_FORMS = ["co-operative-society", "community-benefit-society"]


@pytest.mark.parametrize(
    ("code", "currency", "timezone", "language", "forms"),
    [
        ("GB-ENG", "GBP", "Europe/London", "en", UK_FORMS),
        ("GB-WLS", "GBP", "Europe/London", "en", UK_FORMS),
        ("GB-SCT", "GBP", "Europe/London", "en", UK_FORMS),
        ("FR", "EUR", "Europe/Paris", "fr", ["scic", "scop"]),
        ("DE", "EUR", "Europe/Berlin", "de", ["eg"]),
        ("ES", "EUR", "Europe/Madrid", "es", ["cooperativa"]),
        ("US", "USD", "America/New_York", "en", ["cooperative-corporation"]),
        # No preset: CLDR still gives the defaults, and the founder writes the legal form.
        ("IT", "EUR", "Europe/Rome", "it", []),
        ("JP", "JPY", "Asia/Tokyo", "ja", []),
        ("CH", "CHF", "Europe/Zurich", "de", []),
    ],
)  # fmt: skip
def test_a_country_gives_its_currency_time_zone_language_and_legal_forms(
    code: str, currency: str, timezone: str, language: str, forms: list[str]
) -> None:
    country = countries.lookup(code, ON)
    assert country is not None
    assert (country.code, country.currency, country.timezone, country.language) == (
        code,
        currency,
        timezone,
        language,
    )
    assert [form.key for form in country.legal_forms] == forms
    ZoneInfo(timezone)  # a zone this machine's tz database knows
    assert check_language(language) == language


def test_the_uk_presets_name_the_2014_act_and_the_fca() -> None:
    for code, place in (
        ("GB-ENG", "England and Wales"),
        ("GB-WLS", "England and Wales"),
        ("GB-SCT", "Scotland"),
    ):
        country = countries.lookup(code, ON)
        assert country is not None
        society = country.legal_form("co-operative-society")
        assert society is not None
        assert society.jurisdiction == (
            f"{place} under the Co-operative and Community Benefit Societies Act 2014"
        )
        assert society.registrar == "Financial Conduct Authority"  # fmt: skip


@pytest.mark.parametrize(
    ("code", "key", "words"),
    [
        ("FR", "scic", "société coopérative d'intérêt collectif (SCIC)"),
        ("FR", "scop", "société coopérative et participative (SCOP)"),
        ("DE", "eg", "eingetragene Genossenschaft, eG"),
        ("ES", "cooperativa", "sociedad cooperativa"),
        ("US", "cooperative-corporation", "cooperative corporation"),
    ],
)
def test_each_preset_names_its_legal_form(code: str, key: str, words: str) -> None:
    country = countries.lookup(code, ON)
    assert country is not None
    form = country.legal_form(key)
    assert form is not None and words in form.name and form.registrar


def test_every_preset_reads_after_a_and_registered_in() -> None:
    """Pages say "a <legal form> registered in <jurisdiction>": no "a eingetragene"."""
    for code, preset in countries.PRESETS.items():
        assert countries.lookup(code, ON) is not None, code
        for form in preset.legal_forms:
            assert form.name[0].lower() not in "aeiou", form.name
            # The place, then its law: "under" in English, or in brackets where the law
            # keeps its own language's name (which then reads in either language).
            law = form.jurisdiction
            assert law is None or " under " in law or law.endswith(")"), form
            assert form.key == form.key.lower() and " " not in form.key
            assert form.key != countries.OTHER


def test_only_the_us_preset_leaves_the_jurisdiction_to_the_founder() -> None:
    open_ended = [
        code
        for code, preset in countries.PRESETS.items()
        for form in preset.legal_forms
        if form.jurisdiction is None
    ]
    assert open_ended == ["US"]


def test_a_country_with_many_time_zones_and_no_preset_has_no_default() -> None:
    canada = countries.lookup("CA", ON)
    assert canada is not None and canada.timezone is None
    assert "America/Toronto" in canada.zones and "America/Vancouver" in canada.zones


@pytest.mark.parametrize(
    ("text", "code"),
    [("fr", "FR"), (" gb-sct ", "GB-SCT"), ("GB-NIR", "GB-NIR"), ("DE-BY", "DE-BY")],
)
def test_codes_are_read_in_any_case_and_kept_upper_case(text: str, code: str) -> None:
    assert check_country(text) == code


@pytest.mark.parametrize(
    ("text", "fix"),
    [
        ("UK", 'UK is written GB in ISO 3166: use "GB-ENG" or "GB-SCT" or "GB-WLS"'),
        ("FRA", 'FRA is written FR in ISO 3166: use "FR"'),
        ("UK-SCT", 'use "GB-SCT"'),
        ("EU", "use an ISO 3166 code such as"),
        ("ZZ", "use an ISO 3166 code such as"),
        ("France", "use an ISO 3166 code such as"),
        ("GB-", "use an ISO 3166 code such as"),
        ("", "use an ISO 3166 code such as"),
    ],
)
def test_a_code_that_names_no_country_is_refused_with_the_fix(text: str, fix: str) -> None:
    with pytest.raises(Invalid) as info:
        check_country(text)
    assert "is not a country code" in info.value.message
    assert fix in info.value.fix


@pytest.mark.parametrize(
    ("text", "tag"),
    [("fr", "fr"), ("EN", "en"), ("en-gb", "en-GB"), ("zh-hant-tw", "zh-Hant-TW")],
)
def test_a_language_is_kept_as_html_lang_writes_it(text: str, tag: str) -> None:
    assert check_language(text) == tag


@pytest.mark.parametrize("text", ["english", "en_GB", "en-XX", "x", ""])
def test_a_language_babel_does_not_know_is_refused(text: str) -> None:
    with pytest.raises(Invalid):
        check_language(text)
