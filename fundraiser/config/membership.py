"""[membership]: joining after the campaign, the fee and its rates, checked against
the share terms.
"""

from __future__ import annotations

from fundraiser.config.model import Admission, Fee, Interval, Membership, ShareTerms, Surplus
from fundraiser.config.reader import Reader, Table


def read_membership(reader: Reader, table: Table, terms: ShareTerms | None) -> Membership | None:
    """[membership], checked against [shares]: who may join after the campaign, and how."""
    if not table:
        return None
    currency = terms.price.currency if terms else None
    is_open = reader.get(table, "open", bool, example="true")
    low = reader.count(table, "min_shares_to_join", minimum=1, required=False)
    admission = reader.choice(table, "admission", Admission, [a.value for a in Admission])
    fee = read_fee(reader, table, currency)
    grace = reader.count(table, "grace_days", minimum=0, required=False)
    notice = reader.count(table, "withdrawal_notice_days", minimum=0, required=False)
    reader.unknown_keys(table)
    if terms and low is not None and not terms.min_shares <= low <= terms.max_shares:
        reader.problem(
            table.where("min_shares_to_join"),
            f"{low} is outside the holding limits ({terms.min_shares} to {terms.max_shares})",
            "choose a number within shares.min_shares and shares.max_shares",
        )
        return None
    if fee is None and grace is not None:
        reader.problem(
            table.where("grace_days"),
            "is given without a fee",
            'remove it, or set a fee, e.g. fee = "5.00"',
        )
    if is_open is None or admission is None or isinstance(fee, bool):
        return None
    return Membership(
        is_open,
        low if low is not None else (terms.min_shares if terms else 1),
        admission,
        fee,
        30 if grace is None else grace,
        0 if notice is None else notice,
    )


def read_fee(reader: Reader, table: Table, currency: str | None) -> Fee | bool | None:
    """The fee, None for no fee, or False when it is wrong (the problems are reported)."""
    raw = table.get("fee")
    none = raw is None or (isinstance(raw, str) and raw.strip().lower() == "none")
    keys = ("fee_interval", "reduced_fee", "supporter_fee", "supporter_surplus")
    if none:
        for key in keys:
            if table.get(key) is not None:
                reader.problem(
                    table.where(key),
                    "is given without a fee",
                    'remove it, or set a fee, e.g. fee = "5.00"',
                )
        return None
    amount = reader.money(table, "fee", currency)
    interval = reader.choice(table, "fee_interval", Interval, [i.value for i in Interval])
    reduced = reader.money(table, "reduced_fee", currency, required=False)
    supporter = reader.money(table, "supporter_fee", currency, required=False)
    surplus = None
    if table.get("supporter_surplus") is not None:
        surplus = reader.choice(table, "supporter_surplus", Surplus, [s.value for s in Surplus])
        if surplus is None:
            return False
    if amount is None or interval is None:
        return False
    wrong = False
    if amount.amount <= 0:
        reader.problem(
            table.where("fee"),
            "is zero",
            'write fee = "none" for membership without a fee, or give an amount',
        )
        wrong = True
    if reduced is not None and not 0 < reduced.amount < amount.amount:
        reader.problem(
            table.where("reduced_fee"),
            f"{reduced.format()} is not between nothing and the fee ({amount.format()})",
            "make it less than fee, or remove it",
        )
        wrong = True
    if supporter is not None and supporter.amount <= amount.amount:
        reader.problem(
            table.where("supporter_fee"),
            f"{supporter.format()} is not above the fee ({amount.format()})",
            "make it more than fee, or remove it",
        )
        wrong = True
    if surplus is not None and supporter is None:
        reader.problem(
            table.where("supporter_surplus"),
            "is given without a supporter_fee",
            'add supporter_fee, e.g. supporter_fee = "10.00", or remove it',
        )
        wrong = True
    if wrong:
        return False
    return Fee(amount, interval, reduced, supporter, surplus or Surplus.FREE_PLACES)
