"""`fundraiser init`: a new campaign directory that passes `fundraiser check`.

What a founder cannot be asked for is worked out here: a country's time zone,
language and currency (fundraiser.countries), the campaign's dates in that time
zone, the crowd round and a first tier.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from fundraiser import countries
from fundraiser.config import Invalid, Mode, ScaleBack, check_campaign, check_country
from fundraiser.errors import ConfigError, UserInputError
from fundraiser.money import check_currency, parse

DEFAULT_NAME = "Our Co-operative"
DEFAULT_COUNTRY = "GB-ENG"
DEFAULT_GOAL = "100000.00"
DEFAULT_PRICE = "10.00"
DEFAULT_MIN_SHARES = 5
DEFAULT_MAX_SHARES = 1000
DEFAULT_MODE = Mode.ALL_OR_NOTHING
CAMPAIGN_DAYS = 42


@dataclass(frozen=True)
class InitAnswers:
    name: str
    country: str
    legal_form: str
    jurisdiction: str
    registration_authority: str
    registration_number: str
    contact_email: str
    website: str
    timezone: str
    language: str
    currency: str
    goal: str
    price: str
    min_shares: int
    max_shares: int
    opens: datetime
    deadline: datetime
    mode: Mode
    scale_back: ScaleBack = ScaleBack.PRO_RATA


def check_init_country(value: str) -> str:
    """A country code init can pick legal forms for: GB must say which nation."""
    code = check_country(value)
    within = countries.subdivision_presets(code)
    if within:
        raise Invalid(
            f"{code}'s co-operative law differs within the country",
            "choose "
            + ", ".join(f"{c} ({countries.label(c)})" for c in within)
            + f", or another {code}-XXX code",
        )
    return code


def default_opens(now: datetime, zone: str) -> datetime:
    """The campaign opens now, to the hour, in the co-op's own time zone."""
    return now.astimezone(ZoneInfo(zone)).replace(minute=0, second=0, microsecond=0)


def default_deadline(opens: datetime) -> datetime:
    """Six weeks on, at six in the evening of the co-op's own day."""
    return (opens + timedelta(days=CAMPAIGN_DAYS)).replace(hour=18)


def shown(moment: datetime) -> str:
    """A moment as a founder types it: local time, the zone being known."""
    return f"{moment:%Y-%m-%d %H:%M}"


_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_moment(text: str, zone: str) -> datetime:
    """'2027-03-31 18:00' in the co-op's time zone, or any ISO 8601 time with an offset."""
    raw = text.strip()
    example = "e.g. 2027-03-31 18:00"
    if _DATE_ONLY.match(raw):
        raise Invalid(f"{raw!r} has no time of day", f"give one too, {example}")
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(f"{raw!r} is not a date and time", example) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))  # the co-op's own clock
    return moment


def toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    out = []
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char == "\n":
            out.append("\\n")
        elif char == "\t":
            out.append("\\t")
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def render(a: InitAnswers) -> str:
    q = toml_string
    currency = check_currency(a.currency)
    goal = parse(a.goal, currency).plain()
    price = parse(a.price, currency).plain()
    opens, deadline = a.opens.isoformat(), a.deadline.isoformat()
    return f"""# Campaign settings. Check them with `fundraiser check`.
# Amounts are text in major units; dates carry a UTC offset.

[coop]
name = {q(a.name)}
# ISO 3166 code of the country (or part of it) whose law the co-op is registered under.
country = {q(a.country)}
# The site, certificates and mail read "a <legal_form> registered in <jurisdiction>".
legal_form = {q(a.legal_form)}
jurisdiction = {q(a.jurisdiction)}
registration_authority = {q(a.registration_authority)}
# The number the registration authority gives; empty until the co-op is registered.
registration_number = {q(a.registration_number)}
website = {q(a.website)}
contact_email = {q(a.contact_email)}
# The language of the site, mails and certificates (a BCP 47 tag: "fr", "en-GB").
language = {q(a.language)}
certificates = true

[campaign]
currency = "{currency}"
goal = "{goal}"
opens = {opens}
deadline = {deadline}
timezone = {q(a.timezone)}
mode = "{a.mode.value}"

[shares]
price = "{price}"
min_shares = {a.min_shares}
max_shares = {a.max_shares}
scale_back = "{a.scale_back.value}"

[rounds.crowd]
name = "Crowd round"
opens = {opens}
closes = {deadline}

# Where offline backers send bank transfers (`pledges add --notify` mails it):
# [bank]
# account_name = "Your Co-operative Ltd"
# details = "Sort code 00-00-00, account 00000000"

# Joining after the campaign, when the rules allow it (`fundraiser check` reads it):
# [membership]
# open = true
# min_shares_to_join = {a.min_shares}
# admission = "board"          # or "automatic": admitted on payment
# fee = "3.00"                 # per fee_interval; fee = "none" for no fee
# fee_interval = "month"       # or "year"
# reduced_fee = "1.00"
# supporter_fee = "6.00"
# supporter_surplus = "free-places"
# grace_days = 30              # an unpaid fee lapses the membership after this
# withdrawal_notice_days = 90

[[tiers]]
id = "member"
name = "Member"
shares = {a.min_shares}
description = "The minimum holding: one member, one vote."
"""


def write_campaign(directory: Path, answers: InitAnswers) -> Path:
    """Write DIR/campaign.toml; refuse to overwrite; check it before keeping it."""
    target = directory / "campaign.toml"
    if target.exists():
        raise UserInputError(f"{target} already exists: choose another folder or edit it")
    text = render(answers)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / ".campaign.toml.part"
        tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise UserInputError(
            f"cannot write in {directory}: {exc.strerror}; choose a folder you can write to"
        ) from None
    problems = check_campaign(tmp)
    if problems:
        tmp.unlink()
        raise ConfigError("these answers do not make a valid campaign:", problems)
    tmp.replace(target)
    # site/.output.next/: where the preview builds before it moves pages in (sitegen/staging)
    (directory / ".gitignore").write_text(
        "var/\nsite/output/\nsite/.output.next/\n", encoding="utf-8"
    )
    return target
