"""Joining after the campaign: applications, the board's decisions, top-ups."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server, found  # noqa: F401

# Members are made before the deadline here: a keep-it-all campaign may issue shares then.
pytestmark = pytest.mark.keep_it_all


AFTER = {"FUNDRAISER_NOW": "2027-03-10T12:00:00+00:00"}  # the campaign closed on Feb 28th


def pay_after(cli: Cli, name: str, email: str, amount: str, ref: str) -> str:
    result = cli(
        "pledges", "add", "--name", name, "--email", email, "--address", f"{name}'s house",
        "--amount", amount, "--status", "paid", "--reference", ref, env=AFTER,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return result.output


def members(cli: Cli) -> dict[str, tuple[int, int]]:
    listed = json.loads(cli.ok("members", "list", "--json", env=AFTER).output)
    return {m["email"]: (m["number"], m["shares"]) for m in listed}


def apps(cli: Cli) -> list[dict[str, object]]:
    return json.loads(cli.ok("members", "applications", "--json", env=AFTER).output)


def test_a_joiner_waits_for_the_board_and_is_admitted_with_the_next_number(
    cli: Cli, smtp_server: SmtpServer
) -> None:
    found(cli)  # members 1 to 3 in the founding issue
    cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url})
    said = pay_after(cli, "Ada Lovelace", "ada@example.org", "100.00", "J1")
    assert "1 application to join waiting for the board" in said
    assert "ada@example.org" not in members(cli)  # paid, not yet a member
    (ada,) = apps(cli)
    assert (ada["kind"], ada["status"], ada["shares"], ada["amount"]) == (
        "join",
        "waiting",
        2,
        10000,
    )
    # The founding issue does not take her in behind the board's back.
    cli.ok("shares", "issue", env=AFTER)
    assert "ada@example.org" not in members(cli)

    # She is told her payment arrived and the board decides, once however often
    # the applications are read.
    apps(cli)
    cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url, **AFTER})
    (received,) = smtp_server.to("ada@example.org")
    assert received.message["Subject"] == (
        "We have your application to join Hearth Social Co-operative"
    )
    words = " ".join(received.message.get_body(("plain",)).get_content().split())
    assert "Dear Ada Lovelace" in words and "Your payment of **£100.00**" in words
    assert "board to decide" in words and "comes back to you in full" in words
    assert "card" not in words  # she paid by bank: nothing about cards
    smtp_server.inbox.clear()

    admitted = cli.ok("members", "admit", str(ada["id"]), env=AFTER).output
    assert "Admitted application 1: 2 shares issued; welcome member 4." in admitted
    assert members(cli)["ada@example.org"] == (4, 2)
    (ada,) = apps(cli)
    assert (ada["status"], ada["member_number"], ada["decided_on"]) == ("admitted", 4, "2027-03-10")
    again = cli("members", "admit", "1", env=AFTER)
    assert again.exit_code == 2 and "application 1 is already admitted" in again.output

    sent = cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url, **AFTER})
    assert "Sent 1 message" in sent.output
    (mail,) = smtp_server.to("ada@example.org")
    assert "you are member number 4" in mail.message["Subject"]
    text = mail.message.get_body(("plain",)).get_content()
    assert "Dear Ada Lovelace" in text and "10 March 2027" in text
    (attachment,) = mail.message.iter_attachments()
    assert attachment.get_filename() == "certificate-000004.pdf"  # certificates continue too


def test_a_member_tops_up_by_bank_transfer_and_gets_a_new_certificate(cli: Cli) -> None:
    found(cli)
    assert members(cli)["alan@example.org"] == (2, 1)
    said = pay_after(cli, "Alan Turing", "alan@example.org", "60.00", "T1")
    assert "Issued 1 share after the campaign" in said
    assert members(cli)["alan@example.org"] == (2, 2)
    (top_up,) = apps(cli)
    assert (top_up["kind"], top_up["status"], top_up["member_number"]) == ("top-up", "admitted", 2)
    shown = json.loads(cli.ok("members", "show", "alan@example.org", "--json", env=AFTER).output)
    entries = [(e["kind"], e["shares"], e["certificate_number"]) for e in shown["register_entries"]]
    assert entries == [("issue", 1, 2), ("issue", 1, 4)]
    refunds = json.loads(cli.ok("refunds", "list", "--json", env=AFTER).output)
    owed = [(r["amount"], [line["reason"] for line in r["remainders"]]) for r in refunds]
    assert (1000, ["fraction"]) in owed  # the £10 that is not a whole share goes back


def test_top_ups_below_a_share_or_over_the_cap_are_refused_and_change_nothing(
    cli: Cli, campaign_dir: Path
) -> None:
    found(cli)
    low = cli(
        "pledges", "add", "--name", "Alan Turing", "--email", "alan@example.org",
        "--address", "x", "--amount", "25.00", "--status", "paid", env=AFTER,
    )  # fmt: skip
    assert low.exit_code == 2
    assert "--amount: £25.00 is less than one share (£50.00)" in low.output
    assert "below the minimum holding" not in low.output
    full = cli(
        "pledges", "add", "--name", "Big Backer", "--email", "big@example.org",
        "--address", "x", "--amount", "50.00", "--status", "paid", env=AFTER,
    )  # fmt: skip
    assert full.exit_code == 2
    assert "already holds 200 shares, the most one member may hold" in full.output
    assert apps(cli) == []


def test_the_board_declines_and_the_payment_is_owed_back_and_the_person_told(
    cli: Cli, smtp_server: SmtpServer
) -> None:
    found(cli)
    pay_after(cli, "Eve Mallory", "eve@example.org", "50.00", "J2")
    (eve,) = apps(cli)
    blank = cli("members", "decline", str(eve["id"]), "--reason", "  ", env=AFTER)
    assert blank.exit_code == 2 and "--reason is empty" in blank.output
    reason = "Our rules admit people living in the <b>county</b> only"
    said = cli.ok("members", "decline", str(eve["id"]), "--reason", reason, env=AFTER).output
    assert "Declined application 1; £50.00 is owed back: pay it back by bank transfer" in said
    (eve,) = apps(cli)
    assert (eve["status"], eve["reason"], eve["member_number"]) == ("declined", reason, None)
    assert "eve@example.org" not in members(cli)
    refunds = json.loads(cli.ok("refunds", "list", "--json", env=AFTER).output)
    mine = [r for r in refunds if r["email"] == "eve@example.org"]
    assert [(r["amount"], r["method"], r["remainders"][0]["reason"]) for r in mine] == [
        (5000, "bank", "declined")
    ]
    # Declined stays declined: no admission, and the founding issue leaves it alone.
    assert cli("members", "admit", "1", env=AFTER).exit_code == 2
    cli.ok("shares", "issue", env=AFTER)
    assert "eve@example.org" not in members(cli)

    cli.ok("mail", "send", env={"SMTP_URL": smtp_server.url, **AFTER})
    received, mail = smtp_server.to("eve@example.org")  # her payment came; then the decision
    assert received.message["Subject"].startswith("We have your application to join")
    assert mail.message["Subject"] == "Your application to join Hearth Social Co-operative"
    text = " ".join(mail.message.get_body(("plain",)).get_content().split())  # as read
    html = mail.message.get_body(("html",)).get_content()
    assert "has not admitted you as a member" in text and reason in text
    assert "£50.00" in text and "by bank transfer" in text
    assert "&lt;b&gt;county&lt;/b&gt;" in html and "<b>county</b>" not in html


def test_automatic_admission_admits_on_payment(cli: Cli, campaign_dir: Path) -> None:
    toml = campaign_dir / "campaign.toml"
    toml.write_text(toml.read_text().replace('admission = "board"', 'admission = "automatic"'))
    found(cli)
    said = pay_after(cli, "Ada Lovelace", "ada@example.org", "50.00", "J1")
    assert "welcoming member 4" in said
    assert members(cli)["ada@example.org"] == (4, 1)
    assert [a["status"] for a in apps(cli)] == ["admitted"]


def test_without_membership_the_commands_say_what_to_add(cli: Cli, campaign_dir: Path) -> None:
    toml = campaign_dir / "campaign.toml"
    text = toml.read_text()
    toml.write_text(text[: text.index("\n# Joining after the campaign")] + "\n")
    for args in (["members", "applications"], ["members", "fees"], ["members", "admit", "1"]):
        result = cli(*args, env=AFTER)
        assert result.exit_code == 2
        assert "campaign.toml has no [membership] table" in result.output


def test_forgetting_a_declined_applicant_erases_the_boards_words(cli: Cli) -> None:
    found(cli)
    pay_after(cli, "Eve Mallory", "eve@example.org", "50.00", "J2")
    cli.ok("members", "decline", "1", "--reason", "Eve lives too far away", env=AFTER)
    cli.ok("refunds", "mark-paid", "5", "--reference", "BACK-1", env=AFTER)
    cli.ok("members", "forget", "eve@example.org", env=AFTER)
    (eve,) = apps(cli)
    assert (eve["status"], eve["reason"], eve["email"]) == ("declined", None, "(erased)")


def test_show_gives_a_person_their_applications_and_withdrawal_requests(cli: Cli) -> None:
    found(cli)
    pay_after(cli, "Alan Turing", "alan@example.org", "50.00", "T1")
    cli.ok("members", "withdraw", "2", "--shares", "1", "--note", "moving away", env=AFTER)
    shown = json.loads(cli.ok("members", "show", "alan@example.org", "--json", env=AFTER).output)
    assert [(a["kind"], a["status"]) for a in shown["applications"]] == [("top-up", "admitted")]
    assert [(w["shares"], w["note"], w["due_on"]) for w in shown["withdrawal_requests"]] == [
        (1, "moving away", "2027-06-08")
    ]
    assert shown["fees"] == []
