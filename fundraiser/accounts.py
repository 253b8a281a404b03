"""Bank account numbers: IBAN and BIC (checked by schwifty), UK sort code and account.

Used for the co-op's own account (campaign.toml's [bank]) and for the
accounts backers give for a refund. A backer's account number is personal
data: callers keep it out of the journal and out of logs (`masked`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class BadAccount(ValueError):
    """An account number that cannot be right, with how to fix it."""

    def __init__(self, message: str, fix: str) -> None:
        super().__init__(f"{message}: {fix}")
        self.message = message
        self.fix = fix


def iban(text: str) -> str:
    """The IBAN in its compact form (DE89370400440532013000), or BadAccount."""
    raw = text.strip()
    from schwifty import IBAN  # its bank registry loads when first used
    from schwifty.exceptions import SchwiftyException

    try:
        return str(IBAN(raw).compact)
    except SchwiftyException as exc:
        raise BadAccount(
            f"{masked(raw)!r} is not a valid IBAN ({exc})",
            "copy it again from the bank's statement or app, e.g. DE89 3704 0044 0532 0130 00",
        ) from None


def spaced(compact_iban: str) -> str:
    """An IBAN in groups of four, as people read it."""
    return " ".join(compact_iban[i : i + 4] for i in range(0, len(compact_iban), 4))


def bic(text: str) -> str:
    raw = text.strip()
    from schwifty import BIC  # its bank registry loads when first used
    from schwifty.exceptions import SchwiftyException

    try:
        return str(BIC(raw).compact)
    except SchwiftyException as exc:
        raise BadAccount(
            f"{raw!r} is not a valid BIC ({exc})", "give the 8 or 11 characters, e.g. COBADEFFXXX"
        ) from None


def bic_of(iban_text: str) -> str | None:
    """The BIC schwifty knows for an IBAN's bank, if any."""
    from schwifty import IBAN  # its bank registry loads when first used
    from schwifty.exceptions import SchwiftyException

    try:
        found = IBAN(iban_text).bic
    except SchwiftyException:
        return None
    return str(found.compact) if found is not None else None


_DIGITS = re.compile(r"[\s-]")


def sort_code(text: str) -> str:
    """A UK sort code as six digits (08-92-99 -> 089299)."""
    digits = _DIGITS.sub("", text.strip())
    if not (len(digits) == 6 and digits.isascii() and digits.isdigit()):
        raise BadAccount(f"{text.strip()!r} is not a sort code", "give six digits, e.g. 08-92-99")
    return digits


def account_number(text: str) -> str:
    """A UK account number as eight digits (seven-digit ones get a leading zero)."""
    digits = _DIGITS.sub("", text.strip())
    if not (digits.isascii() and digits.isdigit() and len(digits) in (7, 8)):
        raise BadAccount(
            f"{masked(text.strip())!r} is not a UK account number",
            "give the eight digits, e.g. 65432100",
        )
    return digits.zfill(8)


def masked(number: str) -> str:
    """An account number for a message or a list: only its last four characters."""
    compact = _DIGITS.sub("", number)
    return "…" + compact[-4:] if len(compact) > 4 else compact


@dataclass(frozen=True)
class Account:
    """Where money goes: an IBAN (with a BIC when known) or a UK sort code and account."""

    holder: str
    iban: str | None = None
    bic: str | None = None
    sort_code: str | None = None
    number: str | None = None

    @property
    def scheme(self) -> str:
        return "iban" if self.iban else "uk"

    def describe(self) -> str:
        """For a person's screen: the scheme and the last digits only."""
        if self.iban:
            return f"IBAN {self.iban[:2]} {masked(self.iban)}"
        return f"sort code {self.sort_code} account {masked(self.number or '')}"


def make(
    holder: str,
    *,
    iban_text: str | None = None,
    bic_text: str | None = None,
    sort_code_text: str | None = None,
    number_text: str | None = None,
) -> Account:
    """Check one account's parts; BadAccount names the one that is wrong."""
    name = " ".join(holder.split())
    if not name:
        raise BadAccount("the account holder's name is empty", "give it as the bank has it")
    if len(name) > 70:
        raise BadAccount(f"the holder's name is {len(name)} characters", "keep it to 70")
    if iban_text:
        if sort_code_text or number_text:
            raise BadAccount("both an IBAN and a UK account were given", "give one of them")
        compact = iban(iban_text)
        found_bic = bic(bic_text) if bic_text else bic_of(compact)
        return Account(name, iban=compact, bic=found_bic)
    if sort_code_text and number_text:
        return Account(
            name, sort_code=sort_code(sort_code_text), number=account_number(number_text)
        )
    raise BadAccount("no account was given", "give an IBAN, or a UK sort code and account number")
