"""The EPC payment QR code, read back from its picture as a banking app reads it."""

from __future__ import annotations

import io
import re

import zxingcpp
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fundraiser.bankfiles import epc
from fundraiser.money import Money

IBAN = "FR76 3000 6000 0112 3456 7890 189"


def scanned(png: bytes) -> str:
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1
    assert found[0].format == zxingcpp.BarcodeFormat.QRCode
    return str(found[0].text)


def test_a_scan_gives_the_bank_the_payee_account_amount_and_reference() -> None:
    text = epc.payload(
        name="Les Fourneaux SCIC", iban=IBAN, bic="BNPAFRPP", amount=Money(5050, "EUR"),
        reference="PLEDGE-7",
    )  # fmt: skip
    assert text is not None
    lines = scanned(epc.png(text)).split("\n")
    assert lines == [
        "BCD", "002", "1", "SCT", "BNPAFRPP", "Les Fourneaux SCIC",
        "FR7630006000011234567890189", "EUR50.50", "", "", "PLEDGE-7",
    ]  # fmt: skip


def test_only_euros_to_pay_have_a_code() -> None:
    base = {"name": "Hearth", "iban": IBAN, "bic": None, "reference": "PLEDGE-1"}
    assert epc.payload(**base, amount=Money(5000, "GBP")) is None
    assert epc.payload(**base, amount=Money(0, "EUR")) is None
    assert epc.payload(**base, amount=Money(100_000_000_000, "EUR")) is None  # over the scheme
    assert epc.payload(**base, amount=Money(99_999_999_999, "EUR")) is not None


def test_a_name_cannot_break_the_payload_into_other_fields() -> None:
    # A line break in the name would shift the IBAN and amount a bank app reads.
    text = epc.payload(
        name="Evil\nFR0000000000000000000000000\r\nEUR1.00\u2028x" + "y" * 200,
        iban=IBAN, bic=None, amount=Money(2000, "EUR"), reference="PLEDGE-2\nEUR9",
    )  # fmt: skip
    assert text is not None
    lines = text.split("\n")
    assert len(lines) == 11
    assert lines[6] == "FR7630006000011234567890189" and lines[7] == "EUR20.00"
    assert len(lines[5]) == epc.NAME_LIMIT and lines[5].startswith("Evil FR0000")
    assert lines[10] == "PLEDGE-2 EUR9"


def test_the_page_gets_markup_with_its_title_escaped() -> None:
    text = epc.payload(name="A", iban=IBAN, bic=None, amount=Money(1, "EUR"), reference="R")
    assert text is not None
    svg = epc.svg(text, title="Pay <b>A & B</b>")
    assert svg.startswith("<svg") and "<title>Pay &lt;b&gt;A &amp; B&lt;/b&gt;</title>" in svg
    assert "<?xml" not in svg and not re.search(r"\bwidth=", svg)  # sized by the page's CSS


@settings(max_examples=25, deadline=None)
@given(cents=st.integers(min_value=1, max_value=99_999_999_999))
def test_every_amount_reads_back_to_the_cent(cents: int) -> None:
    text = epc.payload(name="Co-op", iban=IBAN, bic=None, amount=Money(cents, "EUR"), reference="P")
    assert text is not None
    amount = text.split("\n")[7]
    assert re.fullmatch(r"EUR\d{1,9}\.\d\d", amount)
    assert int(amount[3:].replace(".", "")) == cents
