"""`fundraiser init`: a new campaign directory that passes `fundraiser check`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from fundraiser.config import Mode, ScaleBack, check_campaign
from fundraiser.errors import ConfigError, UserInputError
from fundraiser.money import check_currency, parse


@dataclass(frozen=True)
class InitAnswers:
    name: str
    legal_form: str
    jurisdiction: str
    currency: str
    goal: str
    price: str
    min_shares: int
    max_shares: int
    opens: datetime
    deadline: datetime
    mode: Mode
    timezone: str = "UTC"
    scale_back: ScaleBack = ScaleBack.PRO_RATA


def defaults(now: datetime) -> InitAnswers:
    start = now.replace(minute=0, second=0, microsecond=0)
    return InitAnswers(
        name="Our Co-operative",
        legal_form="Co-operative society",
        jurisdiction="England and Wales",
        currency="GBP",
        goal="100000.00",
        price="10.00",
        min_shares=5,
        max_shares=1000,
        opens=start,
        deadline=start + timedelta(days=42),
        mode=Mode.ALL_OR_NOTHING,
    )


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(a: InitAnswers) -> str:
    currency = check_currency(a.currency)
    goal = parse(a.goal, currency).plain()
    price = parse(a.price, currency).plain()
    opens, deadline = a.opens.isoformat(), a.deadline.isoformat()
    return f"""# {a.name}: campaign settings. Check them with `fundraiser check`.
# Amounts are text in major units; dates carry a UTC offset.

[coop]
name = {_q(a.name)}
legal_form = {_q(a.legal_form)}
jurisdiction = {_q(a.jurisdiction)}
registration_number = ""
certificates = true

[campaign]
currency = "{currency}"
goal = "{goal}"
opens = {opens}
deadline = {deadline}
timezone = {_q(a.timezone)}
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
    (directory / ".gitignore").write_text("var/\nsite/output/\n", encoding="utf-8")
    return target
