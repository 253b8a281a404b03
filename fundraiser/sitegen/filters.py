"""Jinja filters for the theme: money, numbers and dates, formatted with Babel.

The formatting is fundraiser.formatting's, shared with the pledge service's
private pages, so both read the same; this module names it for the site.
"""

from __future__ import annotations

from fundraiser.formatting import (
    iso_date,
    local_date,
    local_datetime,
    money,
    money_short,
    number,
    to_money,
)
from fundraiser.formatting import jinja_filters as make_filters

__all__ = [
    "iso_date",
    "local_date",
    "local_datetime",
    "make_filters",
    "money",
    "money_short",
    "number",
    "to_money",
]
