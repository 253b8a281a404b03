"""fundraiser init, check (status: cli/status.py)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from fundraiser import countries
from fundraiser.cli.app import App, fail, pass_app, plural
from fundraiser.config import (
    Invalid,
    Mode,
    check_email,
    check_language,
    check_one_line,
    check_timezone,
    check_website,
    review_campaign,
)
from fundraiser.errors import MoneyError, Problem
from fundraiser.money import Money, check_currency, parse
from fundraiser.scaffold import (
    DEFAULT_COUNTRY,
    DEFAULT_GOAL,
    DEFAULT_MAX_SHARES,
    DEFAULT_MIN_SHARES,
    DEFAULT_MODE,
    DEFAULT_NAME,
    DEFAULT_PRICE,
    InitAnswers,
    check_init_country,
    default_deadline,
    default_opens,
    parse_moment,
    shown,
    write_campaign,
)
from fundraiser.starter import write_site

if TYPE_CHECKING:
    _ParamType = click.ParamType[Any]  # generic in newer click; plain at run time in 8.1
else:
    _ParamType = click.ParamType


class Checked(_ParamType):
    """An answer checked by the same function that checks campaign.toml."""

    def __init__(self, name: str, check: Callable[[str], Any], *, optional: bool = False) -> None:
        self.name = name
        self._check = check
        self._optional = optional

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if not isinstance(value, str):
            return value
        if self._optional and not value.strip():
            return ""
        try:
            return self._check(value)
        except Invalid as exc:
            self.fail(f"{exc.message}: {exc.fix}", param, ctx)
        except MoneyError as exc:
            self.fail(str(exc), param, ctx)


NAME = Checked("text", check_one_line)
OPTIONAL_TEXT = Checked("text", check_one_line, optional=True)
COUNTRY = Checked("country", check_init_country)
EMAIL = Checked("email", check_email, optional=True)
WEBSITE = Checked("address", check_website, optional=True)
TIMEZONE = Checked("time zone", check_timezone)
LANGUAGE = Checked("language", check_language)
CURRENCY = Checked("currency", check_currency)


class Questions:
    """Each answer from its option, else the default (--yes), else a prompt."""

    def __init__(self, yes: bool) -> None:
        self.yes = yes

    def __call__(
        self,
        given: Any,
        prompt: str,
        default: Any,
        kind: click.ParamType[Any] | None,
        option: str,
        needed: str = "",
    ) -> Any:
        if given is not None:
            return given
        if self.yes:
            if default is None:
                fail(f"{option} is needed: {needed}" if needed else f"{option} is needed")
            return default
        return click.prompt(
            prompt if default != "" else f"{prompt} (Enter to leave empty)",
            default=default,
            type=kind,
            show_default=default != "",
        )

    def say(self, text: str) -> None:
        if not self.yes:
            click.echo(text)


def _legal_form(
    ask: Questions,
    place: countries.Country,
    key: str | None,
    name: str | None,
    jurisdiction: str | None,
    authority: str | None,
) -> tuple[str, str, str]:
    """The legal form's name, jurisdiction and registration authority."""
    keys = [form.key for form in place.legal_forms] + [countries.OTHER]
    if key is None and name is not None:
        key = countries.OTHER
    if key is None:
        ask.say(f"Legal forms for {place.name}:")
        for form in place.legal_forms:
            where = form.jurisdiction or "a jurisdiction you name"
            ask.say(f"  {form.key}: a {form.name} registered in {where}")
        ask.say(f"  {countries.OTHER}: you write the legal form out")
    chosen = ask(key, "Legal form", keys[0], click.Choice(keys), "--legal-form")
    if chosen not in keys:
        fail(f"--legal-form {chosen!r} is not a legal form for {place.name}: use {', '.join(keys)}")
    preset = place.legal_form(chosen)
    if preset is None:
        needed = "with --legal-form other, say what the co-op is"
        form_name = ask(
            name,
            "Legal form, as it reads after 'a' (e.g. co-operative society)",
            None,
            NAME,
            "--legal-form-name",
            needed,
        )
        where = ask(
            jurisdiction,
            "Jurisdiction, as it reads after 'registered in' (e.g. Italy under ...)",
            None,
            NAME,
            "--jurisdiction",
            needed,
        )
        registrar = ask(
            authority,
            "Registration authority (who gives the registration number)",
            "",
            OPTIONAL_TEXT,
            "--registration-authority",
        )
        return form_name, where, registrar
    if preset.note:
        click.echo(f"Note: {preset.note}")
    law = jurisdiction or preset.jurisdiction
    if law is None:
        law = ask(
            None,
            "Jurisdiction, as it reads after 'registered in' "
            "(e.g. the State of Minnesota under Minnesota Statutes chapter 308A)",
            None,
            NAME,
            "--jurisdiction",
            f"a {preset.name} is registered under one state's law: name it, e.g. "
            '--jurisdiction "the State of Minnesota under Minnesota Statutes chapter 308A"',
        )
    return name or preset.name, law, authority or preset.registrar


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--name", type=NAME, help="The co-op's name.")
@click.option(
    "--country",
    type=COUNTRY,
    help="ISO 3166 code of the law the co-op is registered under: GB-ENG, GB-SCT, FR, DE, "
    "ES, US or any other.",
)
@click.option(
    "--legal-form",
    help="A preset of the country (e.g. co-operative-society, scic, scop, eg, cooperativa, "
    "cooperative-corporation) or 'other'.",
)
@click.option("--legal-form-name", type=NAME, help="The legal form in words (with 'other').")
@click.option("--jurisdiction", type=NAME, help="Where and under which law it is registered.")
@click.option(
    "--registration-authority", type=OPTIONAL_TEXT, help="Who gives the registration number."
)
@click.option("--registration-number", type=OPTIONAL_TEXT, help="Empty until registered.")
@click.option("--contact-email", type=EMAIL, help="Where members and backers write to.")
@click.option("--website", type=WEBSITE, help="The co-op's web address (https://...).")
@click.option("--timezone", type=TIMEZONE, help="IANA time zone [default: the country's].")
@click.option("--language", type=LANGUAGE, help="e.g. en, fr, de [default: the country's].")
@click.option("--currency", type=CURRENCY, help="ISO 4217 code [default: the country's].")
@click.option("--goal", help="The campaign's goal, in major units (e.g. 100000.00).")
@click.option("--price", help="Price of one share, in major units.")
@click.option("--min-shares", type=click.IntRange(min=1), help="Fewest shares a member holds.")
@click.option("--max-shares", type=click.IntRange(min=1), help="Most shares a member holds.")
@click.option("--opens", help="Opening, e.g. '2027-02-01 09:00' (the co-op's time) [default: now].")
@click.option("--deadline", help="Closing, e.g. '2027-03-31 18:00' (the co-op's time).")
@click.option("--mode", type=click.Choice([m.value for m in Mode]), help="How cards are charged.")
@click.option("--yes", "-y", is_flag=True, help="Accept the default for every question.")
@pass_app
def init(
    app: App,
    directory: Path,
    name: str | None,
    country: str | None,
    legal_form: str | None,
    legal_form_name: str | None,
    jurisdiction: str | None,
    registration_authority: str | None,
    registration_number: str | None,
    contact_email: str | None,
    website: str | None,
    timezone: str | None,
    language: str | None,
    currency: str | None,
    goal: str | None,
    price: str | None,
    min_shares: int | None,
    max_shares: int | None,
    opens: str | None,
    deadline: str | None,
    mode: str | None,
    yes: bool,
) -> None:
    """Start a new campaign in DIRECTORY (asks, or takes options)."""
    now = app.now()
    ask = Questions(yes)
    name = ask(name, "Co-op name", DEFAULT_NAME, NAME, "--name")
    if country is None:
        ask.say(
            "Countries with legal-form presets: "
            + ", ".join(f"{code} ({countries.label(code)})" for code in countries.PRESETS)
            + "; any other ISO 3166 code works too."
        )
    code = ask(country, "Country", DEFAULT_COUNTRY, COUNTRY, "--country")
    place = countries.lookup(code, now.date())
    assert place is not None  # COUNTRY checked it
    form, where, registrar = _legal_form(
        ask, place, legal_form, legal_form_name, jurisdiction, registration_authority
    )
    number = ask(
        registration_number, "Registration number", "", OPTIONAL_TEXT, "--registration-number"
    )
    email = ask(contact_email, "Contact email", "", EMAIL, "--contact-email")
    site = ask(website, "Website", "", WEBSITE, "--website")
    several = f"{place.name} has several time zones: choose one of {', '.join(sorted(place.zones))}"
    if timezone is None and place.timezone is None and place.zones:
        ask.say(several)
    zone = ask(
        timezone,
        "Time zone",
        place.timezone,
        TIMEZONE,
        "--timezone",
        several if place.zones else "say which, as an IANA name such as Europe/London",
    )
    lang = ask(language, "Language", place.language, LANGUAGE, "--language")
    money = ask(
        currency,
        "Currency (ISO 4217)",
        place.currency,
        CURRENCY,
        "--currency",
        f"{place.name} has no currency of its own in CLDR's data",
    )
    amount = Checked("amount", lambda text: parse(text, money).plain())
    goal_text = ask(goal, "Goal", DEFAULT_GOAL, amount, "--goal")
    price_text = ask(price, "Share price", DEFAULT_PRICE, amount, "--price")
    for option, text in (("--goal", goal_text), ("--price", price_text)):
        _amount(option, text, money)
    low = ask(
        min_shares,
        "Minimum shares per member",
        DEFAULT_MIN_SHARES,
        click.IntRange(min=1),
        "--min-shares",
    )
    high = ask(
        max_shares,
        "Maximum shares per member",
        max(DEFAULT_MAX_SHARES, low),
        click.IntRange(min=low),
        "--max-shares",
    )
    if low > high:
        fail(
            f"--min-shares ({low}) is more than --max-shares ({high}): lower it or raise the other"
        )
    moment = Checked("date and time", lambda text: parse_moment(text, zone))
    start = _moment(
        "--opens",
        ask(opens, f"Opens ({zone} time)", shown(default_opens(now, zone)), moment, "--opens"),
        zone,
    )
    end = _moment(
        "--deadline",
        ask(
            deadline,
            f"Deadline ({zone} time)",
            shown(default_deadline(start)),
            moment,
            "--deadline",
        ),
        zone,
    )
    if end <= now:
        fail("--deadline is not in the future: choose a later date")
    if end <= start:
        fail("--deadline is not after --opens: choose a later deadline")
    chosen_mode = Mode(
        ask(mode, "Mode", DEFAULT_MODE.value, click.Choice([m.value for m in Mode]), "--mode")
    )
    answers = InitAnswers(
        name=name,
        country=code,
        legal_form=form,
        jurisdiction=where,
        registration_authority=registrar,
        registration_number=number,
        contact_email=email,
        website=site,
        timezone=zone,
        language=lang,
        currency=money,
        goal=goal_text,
        price=price_text,
        min_shares=low,
        max_shares=high,
        opens=start,
        deadline=end,
        mode=chosen_mode,
    )
    target = write_campaign(directory, answers)
    with_site = write_site(directory, name, now)
    click.echo(f"Wrote {target}" + (" and a starter site (site/, content/)." if with_site else "."))
    _print_warnings(review_campaign(target).warnings)
    click.echo(f"Next: cd {directory} && fundraiser check && fundraiser site build")


def _amount(option: str, text: Any, currency: str) -> Money:
    try:
        return parse(str(text), currency)
    except MoneyError as exc:
        fail(f"{option}: {exc}")
        raise  # fail() raised; for the type checker


def _moment(option: str, value: Any, zone: str) -> datetime:
    if isinstance(value, datetime):
        return value
    try:
        return parse_moment(str(value), zone)
    except Invalid as exc:
        fail(f"{option} {exc.message}: {exc.fix}")
        raise


def _print_warnings(warnings: list[Problem]) -> None:
    if warnings:
        click.echo(f"{plural(len(warnings), 'warning')}:", err=True)
        for warning in warnings:
            click.echo(f"  - {warning}", err=True)


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print problems and warnings as JSON.")
@pass_app
def check(app: App, as_json: bool) -> None:
    """Check campaign.toml; list every problem (exit 1 if any) and every warning."""
    review = review_campaign(app.campaign_path)
    problems = list(review.problems)
    if not problems and app.campaign.books.path is not None:
        from fundraiser.books import spending  # beancount: only for a co-op that keeps books

        problems += spending.check(app.campaign)
    if as_json:
        app.print_json(
            {
                "ok": not problems,
                "problems": [p.as_dict() for p in problems],
                "warnings": [w.as_dict() for w in review.warnings],
            }
        )
    else:
        if problems:
            click.echo(f"{app.campaign_path} has {plural(len(problems), 'problem')}:", err=True)
            for problem in problems:
                click.echo(f"  - {problem}", err=True)
        else:
            campaign = app.campaign
            click.echo(
                f"{app.campaign_path}: OK ({campaign.coop.name}, goal "
                f"{campaign.campaign.goal.format()}, {campaign.campaign.mode.value})"
            )
        _print_warnings(review.warnings)
    if problems:
        raise SystemExit(1)


def register(main: click.Group) -> None:
    for command in (init, check):
        main.add_command(command)
