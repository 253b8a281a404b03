"""Where a co-op is registered: legal-form presets, and what CLDR says of its country.

Only what no data set knows is written here: the legal forms a founder can pick
in a country (with the words that describe them on the site, the certificates and
the mail) and a time zone where a country has several. A country's name,
currency, language and single time zone come from Babel's copy of CLDR, so any
ISO 3166 country works, presets or not.

Codes are ISO 3166-1 alpha-2 ("FR"), or ISO 3166-2 where co-operative law
differs within a country ("GB-ENG" for England, "GB-SCT" for Scotland).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from functools import cache

from babel import Locale
from babel.core import get_global
from babel.languages import get_official_languages
from babel.numbers import get_territory_currencies


@dataclass(frozen=True)
class LegalForm:
    """A legal form as campaign.toml's [coop] describes it.

    The site, certificates and mail read "a {name} registered in {jurisdiction}",
    so both are written to read well there (a name starts with a consonant).
    """

    key: str  # what `fundraiser init --legal-form` takes
    name: str
    jurisdiction: str | None  # None: the founder says (a US state's own statute)
    registrar: str  # who registers the co-op and gives its number
    note: str = ""  # said once by `fundraiser init`


@dataclass(frozen=True)
class Preset:
    legal_forms: tuple[LegalForm, ...]
    label: str | None = None  # a subdivision's name; a country's comes from CLDR
    timezone: str | None = None  # only where CLDR lists several zones


UK_ACT = "the Co-operative and Community Benefit Societies Act 2014"
_FCA = "Financial Conduct Authority"


def _uk_forms(where: str) -> tuple[LegalForm, ...]:
    return (
        LegalForm("co-operative-society", "co-operative society", f"{where} under {UK_ACT}", _FCA),
        LegalForm(
            "community-benefit-society",
            "community benefit society",
            f"{where} under {UK_ACT}",
            _FCA,
        ),
    )


_RCS = "Registre du commerce et des sociétés (RCS)"

#: The presets, one row per country or subdivision with its own co-operative law.
PRESETS: dict[str, Preset] = {
    "GB-ENG": Preset(_uk_forms("England and Wales"), label="England"),
    "GB-WLS": Preset(_uk_forms("England and Wales"), label="Wales"),
    "GB-SCT": Preset(_uk_forms("Scotland"), label="Scotland"),
    "FR": Preset(
        (
            LegalForm(
                "scic",
                "société coopérative d'intérêt collectif (SCIC)",
                "France (loi n° 47-1775 du 10 septembre 1947, titre II ter)",
                _RCS,
            ),
            LegalForm(
                "scop",
                "société coopérative et participative (SCOP)",
                "France (loi n° 78-763 du 19 juillet 1978)",
                _RCS,
            ),
        )
    ),
    "DE": Preset(
        (
            LegalForm(
                "eg",
                "co-operative (eingetragene Genossenschaft, eG)",
                "Germany (Genossenschaftsgesetz, GenG)",
                "Genossenschaftsregister of the local court (Amtsgericht)",
                note="An eG joins an auditing association (Prüfungsverband) before it "
                "is registered.",
            ),
        ),
        timezone="Europe/Berlin",
    ),
    "ES": Preset(
        (
            LegalForm(
                "cooperativa",
                "sociedad cooperativa",
                "Spain (Ley 27/1999, de 16 de julio, de Cooperativas)",
                "Registro de Sociedades Cooperativas",
                note="A co-operative working mainly in one autonomous community registers "
                "under that community's own law: edit coop.jurisdiction if so.",
            ),
        ),
        timezone="Europe/Madrid",
    ),
    "US": Preset(
        (
            LegalForm(
                "cooperative-corporation",
                "cooperative corporation",
                None,
                "Secretary of State of the state of incorporation",
                note="Each state has its own cooperative statute: name the state and "
                "its law as the jurisdiction.",
            ),
        ),
        timezone="America/New_York",
    ),
}

OTHER = "other"  # `--legal-form other`: the founder writes the legal form out

_CODE = re.compile(r"^([A-Z]{2})(?:-([A-Z0-9]{1,3}))?$")
_UNKNOWN_REGION = "ZZ"


@dataclass(frozen=True)
class Country:
    code: str  # as written in campaign.toml: "FR", "GB-SCT"
    territory: str  # the ISO 3166-1 part: "GB"
    name: str
    currency: str | None  # None: CLDR knows no legal tender there
    timezone: str | None  # None: several zones and no preset to choose one
    zones: tuple[str, ...]
    language: str
    legal_forms: tuple[LegalForm, ...]

    def legal_form(self, key: str) -> LegalForm | None:
        return next((form for form in self.legal_forms if form.key == key), None)


@cache
def _territories() -> frozenset[str]:
    # Countries are the two-letter regions CLDR has population data for; that
    # leaves out groupings such as EU and UN, and the private-use codes.
    return frozenset(
        code
        for code in get_global("territory_languages")
        if len(code) == 2 and code.isalpha() and code != _UNKNOWN_REGION
    )


def normalize(code: str) -> str | None:
    """The code as campaign.toml keeps it ("fr" -> "FR"), or None if it names no country."""
    match = _CODE.match(code.strip().upper())
    return match[0] if match is not None and match[1] in _territories() else None


def lookup(code: str, on: date | None = None) -> Country | None:
    """The country (or subdivision) a code names, or None when there is none."""
    normal = normalize(code)
    if normal is None:
        return None
    territory = normal[:2]
    preset = PRESETS.get(normal, Preset(()))
    zones: tuple[str, ...] = tuple(get_global("territory_zones").get(territory, ()))
    currencies = get_territory_currencies(territory, start_date=on or date.today(), tender=True)
    languages = get_official_languages(territory, de_facto=True)
    return Country(
        code=normal,
        territory=territory,
        name=preset.label or Locale("en").territories.get(territory, territory),
        currency=currencies[0] if currencies else None,
        timezone=preset.timezone or (zones[0] if len(zones) == 1 else None),
        zones=zones,
        language=languages[0].replace("_", "-") if languages else "en",
        legal_forms=preset.legal_forms,
    )


def subdivision_presets(territory: str) -> list[str]:
    """Preset codes within a country ("GB" -> GB-ENG, GB-SCT, GB-WLS)."""
    return sorted(code for code in PRESETS if code.startswith(f"{territory}-"))


def suggest(code: str) -> str:
    """How to fix a code that names no country ("UK", "FRA")."""
    text = code.strip().upper()
    head, _, tail = text.partition("-")
    canonical = get_global("territory_aliases").get(head, [])
    if len(canonical) == 1 and canonical[0] in _territories():
        right = f"{canonical[0]}-{tail}"
        nearest = [right] if tail and normalize(right) else []
        nearest = nearest or subdivision_presets(canonical[0]) or [canonical[0]]
        return f"{head} is written {canonical[0]} in ISO 3166: use " + " or ".join(
            f'"{c}"' for c in nearest
        )
    examples = ", ".join(f'"{c}"' for c in PRESETS)
    return f"use an ISO 3166 code such as {examples}, or any other country's two letters"


def label(code: str) -> str:
    """How init names a code: a preset's own label, else the country's, with the code."""
    preset = PRESETS.get(code)
    if preset is not None and preset.label:
        return preset.label
    found = lookup(code)
    if found is None:
        return code
    return found.name if found.code == found.territory else f"{found.name} ({found.code})"
