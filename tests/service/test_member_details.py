"""A member changing their own details: each change in the register with its date,
attacks kept as text (page and CSV), and a new email only once it is confirmed."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from markupsafe import escape

from fundraiser.ledger import schema
from fundraiser.sitegen.aggregates import display_names
from tests.conftest import Cli
from tests.documents.test_mail_truth import text_of
from tests.service import memberpage
from tests.service.memberpage import (
    ATTACKS,
    LOOK_ALIKE,
    Coop,
    link_in,
    register_csv,
    sign_in,
    wait_for_mail,
)
from tests.service.test_private_page import Page
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.spreadsheet import as_typed, live_formulas, open_csv

coop = memberpage.coop
localstripe = memberpage.localstripe
stripe_env = memberpage.stripe_env


def test_changes_are_in_the_register_with_their_date_and_attacks_stay_text(
    coop: Coop, sqlite_cli: Cli, tmp_path: Path
) -> None:
    csrf = sign_in(coop, 1)
    for attack in ATTACKS:
        done = coop.client.post(
            "/member/address", data={"csrf": csrf, "address": attack}, follow_redirects=False
        )
        assert done.status_code == 303, done.text
        page = coop.client.get("/member?done=address").text
        assert "<script>alert" not in page and "<img" not in page
        assert str(escape(attack)) in page
        assert "Your postal address is changed in the register." in Page(page).main
        # The register's CSV, as a spreadsheet opens it: the address is text, never run.
        rows = open_csv(register_csv(sqlite_cli, tmp_path))
        assert live_formulas(rows) == []
        assert as_typed(next(r for r in rows if r["number"] == "1")["address"]) == attack
    # Too long, or control characters: refused by name, nothing changed.
    long = coop.client.post("/member/address", data={"csrf": csrf, "address": "x" * 501})
    assert long.status_code == 400 and "at most 500 characters" in Page(long.text).main
    # Public name: shown, then withdrawn; the site's list follows.
    coop.client.post(
        "/member/public-name", data={"csrf": csrf, "show": "yes", "public_name": "\u0410da"}
    )
    ledger = coop.ledger()
    with ledger.read() as conn:
        assert "\u0410da" in display_names(conn)
        changes = conn.execute(sa.select(schema.member_changes)).all()
    coop.client.post("/member/public-name", data={"csrf": csrf, "public_name": "Ada"})
    with ledger.read() as conn:
        assert "Ada" not in display_names(conn) and "\u0410da" not in display_names(conn)
    # Markup as a public name is text on the page (and on the site, as any name).
    coop.client.post(
        "/member/public-name", data={"csrf": csrf, "show": "yes", "public_name": ATTACKS[1][:80]}
    )
    page = coop.client.get("/member").text
    assert "<script>alert" not in page and str(escape(ATTACKS[1][:80])) in page
    ledger.dispose()
    assert {(c.field, c.changed_on) for c in changes} >= {
        ("address", "2027-03-10"),
        ("public_name", "2027-03-10"),
    }


def test_a_new_email_counts_only_once_the_new_address_confirms_it(coop: Coop) -> None:
    csrf = sign_in(coop, 2)
    bad = coop.client.post("/member/email", data={"csrf": csrf, "email": LOOK_ALIKE})
    assert bad.status_code == 400 and "not an email address we can write to" in Page(bad.text).main
    taken = coop.client.post("/member/email", data={"csrf": csrf, "email": "member1@example.org"})
    assert taken.status_code == 400 and "cannot be used here" in Page(taken.text).main
    for new in ("first@example.org", "second@example.org"):
        sent = coop.client.post(
            "/member/email", data={"csrf": csrf, "email": new}, follow_redirects=False
        )
        assert sent.status_code == 303
    first = link_in(wait_for_mail(coop.smtp, "first@example.org")[0], "/member/email/")
    second_mail = wait_for_mail(coop.smtp, "second@example.org")[0]
    assert "It counts only once you confirm it here" in text_of(second_mail)
    second = link_in(second_mail, "/member/email/")
    page = Page(coop.client.get("/member").text).main
    assert "Waiting for you to confirm second@example.org" in page
    old = coop.client.post(first)
    assert old.status_code == 409 and "use the link sent to that one" in Page(old.text).main
    assert coop.client.post(second).status_code == 200
    assert "This email address is confirmed already" in Page(coop.client.post(second).text).main
    ledger = coop.ledger()
    with ledger.read() as conn:
        email = conn.execute(
            sa.select(schema.members.c.email).where(schema.members.c.number == 2)
        ).scalar()
    ledger.dispose()
    assert email == "second@example.org"
