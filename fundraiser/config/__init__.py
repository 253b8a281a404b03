"""campaign.toml, validated into frozen dataclasses (see `load` for how).

The package's face: what the rest of the kit imports. `model` holds the
dataclasses, `load` reads a file, `reader` and `checks` do the typed reading
and the single-value checks, `sections` and `membership` read each table.
"""

from fundraiser.config.checks import (
    Invalid,
    check_country,
    check_email,
    check_language,
    check_one_line,
    check_timezone,
    check_website,
    did_you_mean,
)
from fundraiser.config.load import Review, check_campaign, load_campaign, review_campaign
from fundraiser.config.model import (
    ROUND_IDS,
    Admission,
    Bank,
    BankCsv,
    Books,
    Campaign,
    CampaignSettings,
    Coop,
    Fee,
    Interval,
    Membership,
    Mode,
    Rate,
    Round,
    ScaleBack,
    ShareTerms,
    Surplus,
    Tier,
)

__all__ = [
    "ROUND_IDS",
    "Admission",
    "Bank",
    "BankCsv",
    "Books",
    "Campaign",
    "CampaignSettings",
    "Coop",
    "Fee",
    "Interval",
    "Invalid",
    "Membership",
    "Mode",
    "Rate",
    "Review",
    "Round",
    "ScaleBack",
    "ShareTerms",
    "Surplus",
    "Tier",
    "check_campaign",
    "check_country",
    "check_email",
    "check_language",
    "check_one_line",
    "check_timezone",
    "check_website",
    "did_you_mean",
    "load_campaign",
    "review_campaign",
]
