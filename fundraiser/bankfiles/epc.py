"""The EPC payment QR code ("GiroCode"): a SEPA transfer that a banking app fills in
from a scan, so a backer types neither the IBAN nor the reference.

The payload is the European Payments Council's guideline EPC069-12, version 002,
in UTF-8: the service tag BCD, the SEPA credit transfer (SCT), the BIC (optional
within the EEA), the payee's name (at most 70 characters), the IBAN, the amount as
"EUR12.34", no purpose code, no structured reference, and the pledge's transfer
reference as the remittance text (at most 140 characters). The code is drawn by
segno at error correction level M, as the guideline asks.

Only for euros to an IBAN: the scheme is SEPA's. Anything else has no code.
"""

from __future__ import annotations

import io
import unicodedata

from fundraiser.bank.instructions import Transfer
from fundraiser.money import Money

#: The guideline's limits, in characters.
NAME_LIMIT = 70
TEXT_LIMIT = 140
_MOST = 99_999_999_999  # EUR 999,999,999.99 in cents


def _one_line(text: str, limit: int) -> str:
    """Text a line of the payload can carry: no line breaks or control characters."""
    kept = "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)
    return " ".join(kept.split())[:limit]


def payload(*, name: str, iban: str, bic: str | None, amount: Money, reference: str) -> str | None:
    """The text the QR code carries, or None when a scan could not pay it (not euros,
    nothing to pay or more than the scheme takes)."""
    if amount.currency != "EUR" or not 0 < amount.amount <= _MOST:
        return None
    euros, cents = divmod(amount.amount, 100)
    lines = [
        "BCD",
        "002",
        "1",  # UTF-8
        "SCT",
        (bic or "").strip(),
        _one_line(name, NAME_LIMIT),
        iban.replace(" ", "").upper(),
        f"EUR{euros}.{cents:02d}",
        "",  # purpose
        "",  # structured creditor reference: ours is not an ISO 11649 RF reference
        _one_line(reference, TEXT_LIMIT),
    ]
    return "\n".join(lines)


def for_transfer(transfer: Transfer) -> str | None:
    """The payload for a backer's transfer, when a scan can pay it."""
    if not transfer.scannable or transfer.iban is None:
        return None
    return payload(
        name=transfer.account_name,
        iban=transfer.iban,
        bic=transfer.bic,
        amount=transfer.due,
        reference=transfer.reference,
    )


def _code(text: str):  # type: ignore[no-untyped-def]  # segno is typed loosely
    import segno  # drawn only where a code is shown: keep it off every start-up

    return segno.make(text, error="m", encoding="utf-8", micro=False, boost_error=False)


def png(text: str, *, scale: int = 6) -> bytes:
    """The code as a PNG with the quiet zone the standard asks for (4 modules)."""
    out = io.BytesIO()
    _code(text).save(out, kind="png", scale=scale, border=4)
    return out.getvalue()


def svg(text: str, *, title: str) -> str:
    """The code as inline SVG markup for a page, named for screen readers by `title`."""
    out = io.BytesIO()
    _code(text).save(
        out,
        kind="svg",
        scale=4,
        border=4,
        xmldecl=False,
        svgns=True,
        title=title,
        svgclass="paycode",
        lineclass=None,
        omitsize=True,
    )
    return out.getvalue().decode("utf-8")
