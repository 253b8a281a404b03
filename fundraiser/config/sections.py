"""The campaign's sections read and checked one by one: the co-op, the campaign, the
shares, rounds, tiers, the bank (and its CSV statements) and the books.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fundraiser import accounts, countries
from fundraiser.config.checks import (
    Invalid,
    check_country,
    check_email,
    check_language,
    check_one_line,
    check_timezone,
    check_website,
)
from fundraiser.config.model import (
    ROUND_IDS,
    Bank,
    BankCsv,
    Books,
    CampaignSettings,
    Coop,
    Mode,
    Round,
    ScaleBack,
    ShareTerms,
    Tier,
)
from fundraiser.config.reader import Reader, Table
from fundraiser.errors import MoneyError
from fundraiser.money import check_currency


def _account_part(
    reader: Reader, table: Table, key: str, check: Callable[[str], str]
) -> str | None:
    raw = reader.text(table, key, required=False)
    if raw is None:
        return None
    try:
        return check(raw)
    except accounts.BadAccount as exc:
        reader.problem(table.where(key), exc.message, exc.fix)
        return None


def read_bank(reader: Reader, table: Table) -> Bank | None:
    if not table:
        return None
    name = reader.text(
        table, "account_name", example='"Hearth Social Co-operative Ltd"', check=check_one_line
    )
    iban = _account_part(reader, table, "iban", accounts.iban)
    bic = _account_part(reader, table, "bic", accounts.bic)
    sort_code = _account_part(reader, table, "sort_code", accounts.sort_code)
    number = _account_part(reader, table, "account_number", accounts.account_number)
    structured = bool(iban or (sort_code and number))
    details = reader.text(
        table,
        "details",
        required=not structured,
        example='"Sort code 08-92-99, account 65432100"',
    )
    if bic and not iban:
        reader.problem(table.where("bic"), "is given without an IBAN", "add iban, or remove bic")
    if iban and (sort_code or number):
        reader.problem(
            table.where("iban"),
            "is given with a UK sort code and account number",
            "give one of them: iban (and bic), or sort_code and account_number",
        )
    given = {k for k in ("sort_code", "account_number") if k in table.data}
    if len(given) == 1:
        other = ({"sort_code", "account_number"} - given).pop()
        reader.problem(table.where(other), "is missing", f"give it with {given.pop()}")
    if iban and not bic:
        bic = accounts.bic_of(iban)
    csv_settings = read_bank_csv(reader, reader.table(table, "csv", required=False))
    reader.unknown_keys(table)
    if not details:
        if iban:
            details = f"IBAN {accounts.spaced(iban)}" + (f", BIC {bic}" if bic else "")
        elif sort_code and number:
            details = (
                f"Sort code {sort_code[:2]}-{sort_code[2:4]}-{sort_code[4:]}, account {number}"
            )
    if not (name and details):
        return None
    return Bank(name, details, iban, bic, sort_code, number, csv_settings)


_CSV_DEFAULTS = BankCsv(date="", text=())


def read_bank_csv(reader: Reader, table: Table) -> BankCsv | None:
    if not table:
        return None
    date_column = reader.text(table, "date", example='"Date"')
    raw_text = table.get("text")
    text: tuple[str, ...] = ()
    if isinstance(raw_text, str) and raw_text.strip():
        text = (raw_text.strip(),)
    elif (
        isinstance(raw_text, list)
        and raw_text
        and all(isinstance(v, str) and v.strip() for v in raw_text)
    ):
        text = tuple(v.strip() for v in raw_text)
    else:
        reader.problem(
            table.where("text"),
            "is missing or empty"
            if raw_text is None
            else f"must be a column name, not {raw_text!r}",
            'name the column(s) with the payment reference, e.g. text = ["Reference", "Details"]',
        )
    amount = reader.text(table, "amount", required=False)
    credit = reader.text(table, "credit", required=False)
    debit = reader.text(table, "debit", required=False)
    if amount and (credit or debit):
        reader.problem(
            table.where("amount"),
            "is given with credit/debit",
            "name one signed amount column, or the credit and debit columns, not both",
        )
    elif not amount and not credit:
        reader.problem(
            table.where("amount"),
            "is missing",
            'name the amount column, e.g. amount = "Amount" (or credit = "Paid in" and '
            'debit = "Paid out")',
        )
    name = reader.text(table, "name", required=False)
    bank_id = reader.text(table, "id", required=False)
    currency = reader.text(table, "currency", required=False)
    date_format = reader.text(table, "date_format", required=False) or _CSV_DEFAULTS.date_format
    if "%" not in date_format:
        reader.problem(
            table.where("date_format"),
            f"{date_format!r} has no % codes",
            'write it as Python\'s strptime does, e.g. date_format = "%d/%m/%Y"',
        )
    decimal = reader.get(table, "decimal", str, required=False) or _CSV_DEFAULTS.decimal
    if decimal not in (".", ","):
        reader.problem(table.where("decimal"), f"{decimal!r} is not . or ,", 'e.g. decimal = ","')
    delimiter = reader.get(table, "delimiter", str, required=False) or _CSV_DEFAULTS.delimiter
    if delimiter not in (",", ";", "\t", "|"):
        reader.problem(
            table.where("delimiter"),
            f"{delimiter!r} is not one of , ; | or a tab",
            'e.g. delimiter = ";"',
        )
    encoding = reader.text(table, "encoding", required=False) or _CSV_DEFAULTS.encoding
    try:
        "".encode(encoding)
    except LookupError:
        reader.problem(
            table.where("encoding"), f"{encoding!r} is not a known encoding", 'e.g. "utf-8"'
        )
    account = reader.text(table, "account", required=False, check=check_one_line) or "csv"
    reader.unknown_keys(table)
    if not (date_column and text and (amount or credit)):
        return None
    return BankCsv(
        date_column,
        text,
        amount,
        credit,
        debit,
        name,
        bank_id,
        currency,
        date_format,
        decimal,
        delimiter,
        encoding,
        account,
    )


_ACCOUNT_NAME = re.compile(r"^[A-Z][A-Za-z0-9-]*(?::[A-Z0-9][A-Za-z0-9-]*)+$")


def read_books(reader: Reader, table: Table) -> Books:
    defaults = Books()
    values: dict[str, str] = {}
    for key, root in Books.ROOTS.items():
        raw = reader.text(table, key, required=False)
        if raw is None:
            continue
        if not _ACCOUNT_NAME.match(raw):
            reader.problem(
                table.where(key),
                f"{raw!r} is not an account name",
                f"write it as beancount does: capitalised parts joined by colons, "
                f'e.g. {key} = "{getattr(defaults, key)}"',
            )
        elif raw.split(":", 1)[0] != root:
            reader.problem(
                table.where(key),
                f"{raw!r} is not under {root}",
                f'name an {root} account, e.g. {key} = "{getattr(defaults, key)}"',
            )
        else:
            values[key] = raw
    path = reader.text(table, "path", required=False, check=check_books_path)
    reader.unknown_keys(table)
    return Books(**values, path=books_path(reader.path, path))


def check_books_path(value: str) -> str:
    text = check_one_line(value)
    if text.endswith(("/", "\\")):
        raise Invalid(
            f"{text!r} is a folder", 'name the beancount file, e.g. path = "books/coop.beancount"'
        )
    return text


def books_path(campaign_file: Path, given: str | None) -> Path | None:
    """The books' file: as written when absolute, else beside campaign.toml."""
    if given is None:
        return None
    path = Path(given).expanduser()
    return path if path.is_absolute() else campaign_file.resolve().parent / path


def read_coop(reader: Reader, table: Table) -> Coop | None:
    if not table:
        return None
    name = reader.text(table, "name", example='"Commons Social"', check=check_one_line)
    country = reader.text(table, "country", required=False, check=check_country)
    legal_form = reader.text(
        table, "legal_form", example='"co-operative society"', check=check_one_line
    )
    jurisdiction = reader.text(
        table,
        "jurisdiction",
        example=f'"England and Wales under {countries.UK_ACT}"',
        check=check_one_line,
    )
    authority = reader.text(table, "registration_authority", required=False, check=check_one_line)
    number = reader.text(table, "registration_number", required=False, check=check_one_line)
    website = reader.text(table, "website", required=False, check=check_website)
    contact = reader.text(table, "contact_email", required=False, check=check_email)
    language = reader.text(table, "language", required=False, check=check_language)
    certificates = reader.get(table, "certificates", bool, required=False)
    reader.unknown_keys(table)
    if not (name and legal_form and jurisdiction):
        return None
    if language is None:
        found = countries.lookup(country) if country else None
        language = found.language if found else "en"
    return Coop(
        name,
        legal_form,
        jurisdiction,
        number,
        website,
        contact,
        True if certificates is None else certificates,
        country,
        language,
        authority,
    )


def read_settings(reader: Reader, table: Table) -> CampaignSettings | None:
    if not table:
        return None
    currency = None
    raw_currency = reader.text(table, "currency", example='"GBP"')
    if raw_currency is not None:
        try:
            currency = check_currency(raw_currency)
        except MoneyError as exc:
            reader.problem("campaign.currency", str(exc), 'e.g. currency = "GBP"')
    goal = reader.money(table, "goal", currency)
    offer_max = reader.money(table, "offer_maximum", currency, required=False)
    opens = reader.moment(table, "opens")
    deadline = reader.moment(table, "deadline")
    mode = reader.choice(table, "mode", Mode, [m.value for m in Mode])
    tz_name = reader.text(table, "timezone", required=False, check=check_timezone)
    reader.unknown_keys(table)
    if opens and deadline and deadline <= opens:
        reader.problem(
            "campaign.deadline",
            "is not after campaign.opens",
            "set the deadline later than the opening",
        )
    if not (currency and goal and opens and deadline and mode):
        return None
    return CampaignSettings(currency, goal, opens, deadline, mode, tz_name or "UTC", offer_max)


def read_shares(reader: Reader, table: Table, currency: str | None) -> ShareTerms | None:
    if not table:
        return None
    price = reader.money(table, "price", currency)
    low = reader.count(table, "min_shares", minimum=1)
    high = reader.count(table, "max_shares", minimum=1)
    policy = reader.choice(table, "scale_back", ScaleBack, [s.value for s in ScaleBack])
    reader.unknown_keys(table)
    if low is not None and high is not None and low > high:
        reader.problem(
            "shares.min_shares",
            f"({low}) is more than shares.max_shares ({high})",
            "make min_shares at most max_shares",
        )
        return None
    if not (price and low and high and policy):
        return None
    return ShareTerms(price, low, high, policy)


def read_rounds(
    reader: Reader, table: Table, settings: CampaignSettings | None
) -> tuple[Round, ...] | None:
    if not table:
        return None
    rounds: list[Round] = []
    for round_id in ROUND_IDS:
        table.get(round_id)  # the rounds there can be: any other is unknown
    reader.unknown_keys(table, what="round")
    for round_id, body in table.data.items():
        prefix = table.where(round_id)
        if round_id not in ROUND_IDS:
            continue
        if not isinstance(body, dict):
            reader.problem(prefix, "must be a table", f"write it as [{prefix}]")
            continue
        one = Table(prefix, body)
        name = (
            reader.text(one, "name", required=False, check=check_one_line) or round_id.capitalize()
        )
        opens = reader.moment(one, "opens")
        closes = reader.moment(one, "closes")
        reader.unknown_keys(one)
        if opens and closes and closes <= opens:
            reader.problem(f"{prefix}.closes", "is not after opens", "set closes later than opens")
            continue
        if settings and closes and closes > settings.deadline:
            reader.problem(
                f"{prefix}.closes",
                "is after campaign.deadline",
                "close the round by the campaign's deadline",
            )
            continue
        if opens and closes:
            rounds.append(Round(round_id, name, opens, closes))
    if "crowd" not in table.data:
        reader.problem(
            "rounds.crowd", "is missing", "add a [rounds.crowd] table with opens and closes"
        )
    return tuple(sorted(rounds, key=lambda r: (r.opens, r.id)))


def read_tiers(reader: Reader, data: Any, terms: ShareTerms | None) -> tuple[Tier, ...]:
    if not isinstance(data, list):
        reader.problem("tiers", "must be a list of tables", "write each tier as [[tiers]]")
        return ()
    tiers: list[Tier] = []
    seen: set[str] = set()
    for index, body in enumerate(data, start=1):
        prefix = f"tiers[{index}]"
        if not isinstance(body, dict):
            reader.problem(prefix, "must be a table", "write each tier as [[tiers]]")
            continue
        table = Table(prefix, body)
        tier_id = reader.text(table, "id", example='"founder"')
        name = reader.text(table, "name", example='"Founding member"', check=check_one_line)
        shares = reader.count(table, "shares", minimum=1)
        description = reader.text(table, "description", required=False) or ""
        limit = reader.count(table, "limit", minimum=1, required=False)
        reader.unknown_keys(table)
        if tier_id in seen:
            reader.problem(
                f"{prefix}.id", f"{tier_id!r} is used twice", "give each tier its own id"
            )
            continue
        if tier_id and not tier_id.replace("-", "").replace("_", "").isalnum():
            reader.problem(
                f"{prefix}.id",
                f"{tier_id!r} has characters other than letters, digits, - and _",
                'use a short slug such as "founder"',
            )
            continue
        if terms and shares is not None and not terms.min_shares <= shares <= terms.max_shares:
            reader.problem(
                f"{prefix}.shares",
                f"{shares} is outside the holding limits "
                f"({terms.min_shares} to {terms.max_shares})",
                "choose a number of shares within shares.min_shares and max_shares",
            )
            continue
        if tier_id and name and shares:
            seen.add(tier_id)
            tiers.append(Tier(tier_id, name, shares, description, limit))
    return tuple(tiers)
