"""Mail through the outbox, delivered to a real SMTP server on loopback."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import pypdf
import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from tests.conftest import Cli
from tests.smtp_fixtures import (  # noqa: F401 - fixtures
    SmtpServer,
    fixture_smtp_ca,
    fixture_smtp_server,
    fixture_smtp_tls_server,
    found,
)

#: Shares are issued before the deadline: a keep-it-all campaign may.
KEEP_IT_ALL = pytest.mark.keep_it_all

LATER = "2026-12-10T14:00:00+00:00"


def outbox_rows(cli: Cli) -> list[dict[str, object]]:
    ledger = open_ledger(cli.db_url)
    try:
        with ledger.read() as conn:
            rows = conn.execute(sa.text("SELECT * FROM outbox ORDER BY id")).mappings().all()
            return [dict(r) for r in rows]
    finally:
        ledger.dispose()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def pdf_text(data: bytes) -> str:
    return "\n".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(data)).pages)


@KEEP_IT_ALL
def test_welcome_mail_is_sent_once_with_the_certificate(cli: Cli, smtp_server: SmtpServer) -> None:
    found(cli)
    result = cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    assert "Sent 3 messages" in result.output
    assert len(smtp_server.inbox) == 3
    grace = smtp_server.to("grace@example.org")
    assert len(grace) == 1
    msg = grace[0].message
    assert "member number 1" in msg["Subject"]
    assert msg["From"].addresses[0].addr_spec == "members@hearth.example"
    assert msg["Message-ID"].startswith("<outbox.1.")
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert "Dear Grace Hopper" in text and "**Member number:** 1" in text
    assert "<strong>Member number:</strong> 1" in html
    attachments = list(msg.iter_attachments())
    assert [a.get_filename() for a in attachments] == ["certificate-000001.pdf"]
    body = pdf_text(attachments[0].get_content())
    assert "Grace Hopper" in body and "member number 1" in body and "4 fully paid" in body
    rows = outbox_rows(cli)
    assert {r["status"] for r in rows} == {"sent"}
    assert all(r["attempts"] == 1 and r["message_id"] for r in rows)
    # Exactly once: a second run finds nothing to send.
    again = cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    assert "Sent 0 messages" in again.output and len(smtp_server.inbox) == 3


@KEEP_IT_ALL
def test_starttls_and_login(sqlite_cli: Cli, smtp_tls_server: SmtpServer) -> None:
    found(sqlite_cli)
    result = sqlite_cli.ok("mail", "send", "--json", env={"SMTP_URL": smtp_tls_server.url})
    assert json.loads(result.output)["sent"] == 3
    assert len(smtp_tls_server.inbox) == 3


@KEEP_IT_ALL
def test_wrong_password_stops_and_marks_nothing(
    sqlite_cli: Cli, smtp_tls_server: SmtpServer, campaign_dir: Path
) -> None:
    found(sqlite_cli)
    before = digest(campaign_dir / "var" / "ledger.sqlite")
    url = smtp_tls_server.url.replace("s3cret-pass", "wrong")
    result = sqlite_cli("mail", "send", env={"SMTP_URL": url})
    assert result.exit_code == 1
    assert "refused the login" in result.output and "wrong" not in result.output
    assert digest(campaign_dir / "var" / "ledger.sqlite") == before


@KEEP_IT_ALL
def test_tls_without_the_ca_is_explained(sqlite_cli: Cli, smtp_tls_server: SmtpServer) -> None:
    found(sqlite_cli)
    url = smtp_tls_server.url.split("&cafile=")[0]
    result = sqlite_cli("mail", "send", env={"SMTP_URL": url})
    assert result.exit_code == 1 and "TLS with the mail server" in result.output
    assert "cafile" in result.output


@KEEP_IT_ALL
def test_unreachable_server_changes_nothing(sqlite_cli: Cli, campaign_dir: Path) -> None:
    from tests.conftest import free_port

    found(sqlite_cli)
    ledger_file = campaign_dir / "var" / "ledger.sqlite"
    before = digest(ledger_file)
    result = sqlite_cli("mail", "send", env={"SMTP_URL": f"smtp://127.0.0.1:{free_port()}"})
    assert result.exit_code == 1
    assert "cannot reach the mail server" in result.output and "connection refused" in result.output
    assert "Traceback" not in result.output
    assert digest(ledger_file) == before


@KEEP_IT_ALL
def test_bad_settings_are_usage_errors(sqlite_cli: Cli, campaign_dir: Path) -> None:
    found(sqlite_cli)
    ledger_file = campaign_dir / "var" / "ledger.sqlite"
    before = digest(ledger_file)
    cases = [
        ({}, "set SMTP_URL"),
        ({"SMTP_URL": "ftp://host"}, "must start with smtp://"),
        ({"SMTP_URL": "smtp://u:p@mail.example.org:25"}, "no encryption"),
        ({"SMTP_URL": "smtp://host:25?tls=yes"}, "unknown option"),
        ({"SMTP_URL": "smtp://127.0.0.1:25", "MAIL_FROM": "not-an-address"}, "MAIL_FROM"),
    ]
    for env, message in cases:
        result = sqlite_cli("mail", "send", env={"SMTP_URL": "", **env})
        assert result.exit_code == 2, (env, result.output)
        assert message in result.output, (env, result.output)
    assert digest(ledger_file) == before


@KEEP_IT_ALL
def test_temporary_and_permanent_refusals(cli: Cli, smtp_server: SmtpServer) -> None:
    found(cli)
    smtp_server.handler.refuse_temporarily.add("alan@example.org")
    smtp_server.handler.refuse_permanently.add("big@example.org")
    result = cli("mail", "send", env={"SMTP_URL": smtp_server.url})
    assert result.exit_code == 1
    assert "Sent 1 message; 1 to retry later; 1 failed." in result.output
    assert "451" in result.output and "550" in result.output
    by_to = {r["to_email"]: r for r in outbox_rows(cli)}
    assert by_to["grace@example.org"]["status"] == "sent"
    alan = by_to["alan@example.org"]
    assert alan["status"] == "queued" and "451" in str(alan["last_error"])
    assert str(alan["next_attempt_at"]) > "2026-12-10T12:00"
    assert by_to["big@example.org"]["status"] == "failed"
    # Not due yet: nothing is sent before the backoff ends.
    smtp_server.handler.refuse_temporarily.clear()
    assert "Sent 0" in cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url}).output
    later = cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url, "FUNDRAISER_NOW": LATER})
    assert "Sent 1 message" in later.output
    assert [m.rcpt_tos for m in smtp_server.inbox] == [["grace@example.org"], ["alan@example.org"]]
    # A failed message goes again only when an organizer asks.
    big = by_to["big@example.org"]["id"]
    cli.ok("mail", "retry", str(big))
    smtp_server.handler.refuse_permanently.clear()
    assert "Sent 1" in cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url}).output


@KEEP_IT_ALL
def test_a_message_left_sending_by_a_crash_goes_again_with_the_same_id(
    sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    found(sqlite_cli)
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.write() as tx:  # a run that claimed message 1, then died
        tx.bookkeep(
            schema.outbox,
            schema.outbox.c.id == 1,
            status="sending",
            attempts=1,
            next_attempt_at="2026-12-10T11:50:00+00:00",
        )
    ledger.dispose()
    sqlite_cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    first = smtp_server.to("grace@example.org")[0].message
    assert first["Message-ID"] == outbox_rows(sqlite_cli)[0]["message_id"]
    assert outbox_rows(sqlite_cli)[0]["attempts"] == 2


@KEEP_IT_ALL
def test_preview_shows_without_sending(sqlite_cli: Cli, smtp_server: SmtpServer) -> None:
    found(sqlite_cli)
    result = sqlite_cli.ok("mail", "preview", "2")
    assert "To: Alan Turing <alan@example.org>" in result.output
    assert "Subject: Welcome to Hearth Social Co-operative: you are member number 2" in (
        result.output
    )
    assert "Dear Alan Turing" in result.output
    html = sqlite_cli.ok("mail", "preview", "2", "--html").output
    assert "<strong>Member number:</strong> 2" in html
    assert smtp_server.inbox == []
    assert outbox_rows(sqlite_cli)[1]["status"] == "queued"
    missing = sqlite_cli("mail", "preview", "99")
    assert missing.exit_code == 2 and "message 99 does not exist" in missing.output


@KEEP_IT_ALL
def test_names_cannot_inject_html(sqlite_cli: Cli, smtp_server: SmtpServer) -> None:
    sqlite_cli.ok(
        "pledges", "add", "--name", "<script>alert(1)</script> & Co", "--email",
        "x@example.org", "--address", "1 Road", "--amount", "50.00", "--status", "paid",
    )  # fmt: skip
    sqlite_cli.ok("shares", "issue")
    sqlite_cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    msg = smtp_server.inbox[0].message
    html = msg.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "Dear <script>alert(1)</script> & Co" in msg.get_body(("plain",)).get_content()


@KEEP_IT_ALL
def test_list_and_dry_run(sqlite_cli: Cli) -> None:
    found(sqlite_cli)
    listed = json.loads(sqlite_cli.ok("mail", "list", "--json").output)
    assert [m["kind"] for m in listed] == ["welcome"] * 3
    dry = sqlite_cli.ok("mail", "send", "--dry-run")
    assert "Dry run: 3 messages due. Nothing was sent." in dry.output


def test_every_kind_of_message_renders(sqlite_cli: Cli) -> None:
    """The shapes of data the payments code queues (see fundraiser/payments/events.py)."""
    from fundraiser import outbox as outbox_mod

    sqlite_cli.ok(
        "pledges", "add", "--name", "Ada", "--email", "ada@example.org", "--address", "1 Road",
        "--amount", "100.00",
    )  # fmt: skip
    kinds = {
        outbox_mod.Kind.PLEDGE_RECEIVED: {"pledge_id": 1, "amount": 10000, "currency": "GBP"},
        outbox_mod.Kind.PAYMENT_FAILED: {
            "pledge_id": 1,
            "amount": 10000,
            "currency": "GBP",
            "reason": "card_declined",
            "authentication_required": False,
            "fix_until": "2026-12-17T12:00:00+00:00",
            "fix_url": "https://hearth.example/fix/1?t=abc",
        },
        outbox_mod.Kind.CAMPAIGN_FAILED: {"raised": 12300000, "currency": "GBP"},
        outbox_mod.Kind.REFUND_SENT: {"pledge_id": 1, "amount": 2500, "currency": "GBP"},
    }
    ledger = open_ledger(sqlite_cli.db_url)
    with ledger.write() as tx:
        # The shapes are the card payments': the pledge as if made online, card saved.
        tx.update(schema.pledges, {"id": 1}, source="online", status="authorized")
        tx.record("test.setup", "pledge:1", {"source": "online"})
        for kind, data in kinds.items():
            outbox_mod.queue(
                tx, kind, f"test-{kind.value}", to_email="ada@example.org", to_name="Ada",
                data=data, pledge_id=1,
            )  # fmt: skip
    ledger.dispose()
    expected = {
        1: ["We have your pledge", "£100.00", "Nothing is charged yet"],
        2: ["did not go through", "card declined", "https://hearth.example/fix/1?t=abc",
            "17 December 2026"],
        3: ["did not reach its goal", "£123,000.00", "Your pledge is released"],
        4: ["Your refund from Hearth Social Co-operative: £25.00"],
    }  # fmt: skip
    for message_id, needles in expected.items():
        text = sqlite_cli.ok("mail", "preview", str(message_id)).output
        for needle in needles:
            assert needle in text, (message_id, needle, text)
    html = sqlite_cli.ok("mail", "preview", "2", "--html").output
    assert '<a href="https://hearth.example/fix/1?t=abc">Complete your payment</a>' in html


def test_wire_format_is_crlf_and_encodes_non_ascii() -> None:
    from email import message_from_bytes, policy

    from fundraiser.documents.mime import wire_message

    pdf = bytes(range(256)) * 40
    data = wire_message(
        {
            "From": "Coöp <m@coop.example>",
            "To": "Zoë Ünïcode <z@example.org>",
            "Subject": "Bienvenue à la coopérative, membre numéro 1 — merci",
        },
        "héllo\r\n.\n" + "x" * 300 + "\n",
        "<p>hé</p>",
        [("certificate-000001.pdf", pdf)],
        boundary="=_fr1",
    )  # fmt: skip
    assert b"\n" not in data.replace(b"\r\n", b"") and data.isascii()
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    msg = message_from_bytes(data, policy=policy.default)
    assert msg["To"].addresses[0].display_name == "Zoë Ünïcode"
    assert msg["Subject"] == "Bienvenue à la coopérative, membre numéro 1 — merci"
    text = msg.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert text == "héllo\n.\n" + "x" * 300 + "\n"
    [attachment] = msg.iter_attachments()
    assert attachment.get_filename() == "certificate-000001.pdf"
    assert attachment.get_content() == pdf


# -- offline pledges: the organizer asks for the backer's mail ------------------


def test_offline_pledge_mail_tells_the_backer_where_to_pay(
    sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    quiet = sqlite_cli.ok(*PROMISE, "--email", "quiet@example.org")  # no --notify: no mail
    assert "mail is queued" not in quiet.output
    added = json.loads(sqlite_cli.ok(*PROMISE, "--notify", "--json").output)
    assert added["notified"] is True and added["status"] == "pending"
    paid = sqlite_cli.ok(
        *PROMISE, "--email", "paid@example.org", "--status", "paid", "--reference", "TX-9"
    )
    assert "Recorded pledge 3" in paid.output and "mail is queued" not in paid.output
    sqlite_cli.ok(
        *PROMISE,
        "--email",
        "ada@example.org",
        "--status",
        "paid",
        "--reference",
        "TX-10",
        "--notify",
    )
    assert [(r["kind"], r["to_email"]) for r in outbox_rows(sqlite_cli)] == [
        ("pledge_received", "seed@example.org"),
        ("pledge_received", "ada@example.org"),
    ]
    sqlite_cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    [promise] = smtp_server.to("seed@example.org")
    text = " ".join(promise.message.get_body(("plain",)).get_content().split())
    for needle in (
        "Please send **£2,500.00** by bank transfer",
        "Account name: Hearth Social Co-operative Ltd",
        "Sort code 08-92-99, account 65432100",
        "Reference: **PLEDGE-2**",
    ):
        assert needle in text, needle
    [receipt] = smtp_server.to("ada@example.org")
    text = " ".join(receipt.message.get_body(("plain",)).get_content().split())
    assert "We have received your payment of **£2,500.00**" in text
    assert "bank transfer to" not in text
    assert smtp_server.to("quiet@example.org") == smtp_server.to("paid@example.org") == []


PROMISE = (
    "pledges",
    "add",
    "--name",
    "Seed Backer",
    "--email",
    "seed@example.org",
    "--address",
    "1 Seed Lane, Leeds",
    "--amount",
    "2500.00",
)


def test_import_notify_queues_one_mail_per_new_pledge_and_needs_bank_details(
    sqlite_cli: Cli, campaign_dir: Path, tmp_path: Path
) -> None:
    source = tmp_path / "seed.csv"
    source.write_text(
        "name,email,amount,round,status,reference,address\n"
        "Seed One,one@example.org,1000.00,seed,pledged,,1 Road\n"
        "Seed Two,two@example.org,2000.00,seed,paid,TX-2,2 Road\n",
        encoding="utf-8",
    )
    dry = json.loads(
        sqlite_cli.ok("pledges", "import", str(source), "--notify", "--dry-run", "--json").output
    )
    assert (dry["new"], dry["notified"]) == (2, 0) and outbox_rows(sqlite_cli) == []

    # Without [bank], an unpaid pledge's mail could not say where to pay: refused, nothing written.
    path = campaign_dir / "campaign.toml"
    text = path.read_text(encoding="utf-8")
    start, end = text.index("[bank]"), text.index("[[tiers]]")
    path.write_text(text[:start] + text[end:], encoding="utf-8")
    ledger_file = Path(sqlite_cli.db_url.removeprefix("sqlite:///"))
    before = ledger_file.read_bytes() if ledger_file.exists() else None
    refused = sqlite_cli("pledges", "import", str(source), "--notify")
    assert refused.exit_code in (1, 2) and "Traceback" not in refused.output
    assert "no [bank] section" in refused.output and "account_name and details" in refused.output
    assert (ledger_file.read_bytes() if ledger_file.exists() else None) == before
    path.write_text(text, encoding="utf-8")

    done = json.loads(sqlite_cli.ok("pledges", "import", str(source), "--notify", "--json").output)
    assert (done["imported"], done["notified"]) == (2, 2)
    rows = outbox_rows(sqlite_cli)
    assert [(r["to_email"], r["dedupe_key"]) for r in rows] == [
        ("one@example.org", f"pledge-{rows[0]['pledge_id']}-received"),
        ("two@example.org", f"pledge-{rows[1]['pledge_id']}-received"),
    ]
    again = json.loads(sqlite_cli.ok("pledges", "import", str(source), "--notify", "--json").output)
    assert (again["skipped"], again["notified"]) == (2, 0) and len(outbox_rows(sqlite_cli)) == 2


def test_a_bank_transfer_marked_paid_can_tell_the_backer(
    sqlite_cli: Cli, smtp_server: SmtpServer
) -> None:
    sqlite_cli.ok(*PROMISE, "--notify")
    sqlite_cli.ok(*PROMISE, "--email", "other@example.org")
    done = sqlite_cli.ok("pledges", "mark-paid", "1", "--reference", "BT-1", "--notify")
    assert "The backer's mail is queued" in done.output
    sqlite_cli.ok("pledges", "mark-paid", "2", "--reference", "BT-2")  # no --notify: no mail
    assert [(r["kind"], r["pledge_id"]) for r in outbox_rows(sqlite_cli)] == [
        ("pledge_received", 1),
        ("payment_received", 1),
    ]
    sqlite_cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    subjects = sorted(m.message["Subject"] for m in smtp_server.to("seed@example.org"))
    assert subjects == [
        "We have received your payment to Hearth Social Co-operative (£2,500.00)",
        "We have your pledge to Hearth Social Co-operative (£2,500.00)",
    ]
    [paid] = [
        m for m in smtp_server.to("seed@example.org") if "received your" in m.message["Subject"]
    ]
    text = " ".join(paid.message.get_body(("plain",)).get_content().split())
    assert "your bank transfer of **£2,500.00** for pledge number 1 has arrived" in text
    assert smtp_server.to("other@example.org") == []
