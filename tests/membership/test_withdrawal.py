"""Withdrawals after the campaign: asked for, held for the rules' notice, then paid."""

from __future__ import annotations

import json

import pytest

from tests.conftest import Cli
from tests.smtp_fixtures import found

# Members are made before the deadline here: a keep-it-all campaign may issue shares then.
pytestmark = pytest.mark.keep_it_all


ASKED = {"FUNDRAISER_NOW": "2027-03-10T12:00:00+00:00"}
NOTICE_RUN = {"FUNDRAISER_NOW": "2027-06-10T12:00:00+00:00"}  # 90 days' notice ran on June 8th


def requests(cli: Cli, env: dict[str, str], *extra: str) -> list[dict[str, object]]:
    return json.loads(cli.ok("members", "withdrawals", "--json", *extra, env=env).output)


def test_a_withdrawal_waits_for_its_notice_then_is_paid_by_bank(cli: Cli) -> None:
    found(cli)
    said = cli.ok("members", "withdraw", "2", "--shares", "1", env=ASKED).output
    assert "Recorded request 1: member 2 withdraws 1 share (£50.00)" in said
    assert "notice of 90 days: due on 2027-06-08" in said
    (asked,) = requests(cli, ASKED)
    assert (asked["member"], asked["status"], asked["due"]) == (2, "waiting", False)
    assert requests(cli, ASKED, "--due") == []
    # Nothing has left the register yet; a second request cannot ask for more than is held.
    listed = json.loads(cli.ok("members", "list", "--json", env=ASKED).output)
    assert [m["shares"] for m in listed if m["number"] == 2] == [1]
    more = cli("members", "withdraw", "2", "--shares", "1", env=ASKED)
    assert more.exit_code == 2
    assert "more than member 2 holds (1) (1 already asked for): withdraw at most 0" in more.output
    early = cli("members", "pay-withdrawal", "1", env=ASKED)
    assert early.exit_code == 2
    assert "within its notice period: it can be paid from 2027-06-08" in early.output

    (due,) = requests(cli, NOTICE_RUN, "--due")
    assert due["id"] == 1 and due["due"] is True
    paid = cli.ok("members", "pay-withdrawal", "1", env=NOTICE_RUN).output
    assert "Withdrew 1 share from member 2, 0 left; £50.00 to repay to them." in paid
    assert "Member 2 ceases on 2027-06-10." in paid
    assert "pay it by bank transfer" in paid
    refunds = json.loads(cli.ok("refunds", "list", "--json", env=NOTICE_RUN).output)
    alan = [r for r in refunds if r["email"] == "alan@example.org"]
    assert [(r["amount"], r["method"], r["remainders"][0]["reason"]) for r in alan] == [
        (5000, "bank", "withdrawal")
    ]
    assert requests(cli, NOTICE_RUN) == []
    again = cli("members", "pay-withdrawal", "1", env=NOTICE_RUN)
    assert again.exit_code == 2 and "already paid" in again.output
    roll = cli.ok("members", "roll", env=NOTICE_RUN).output
    assert "alan@example.org" not in roll


def test_a_part_withdrawal_gets_a_balance_certificate(cli: Cli) -> None:
    found(cli)
    cli.ok("members", "withdraw", "3", "--shares", "50", env=ASKED)
    done = json.loads(cli.ok("members", "pay-withdrawal", "1", "--json", env=NOTICE_RUN).output)
    assert (done["shares"], done["holding_after"], done["ceased"]) == (50, 150, False)
    assert done["balance_certificate"] == 4  # the founding issue used 1 to 3
    assert done["request"]["status"] == "paid" and done["request"]["method"] == "bank"
    shown = json.loads(cli.ok("members", "show", "big@example.org", "--json").output)
    assert [
        (e["kind"], e["shares"], e["certificate_number"]) for e in shown["register_entries"]
    ] == [
        ("issue", 200, 3),
        ("withdraw", 50, 4),
    ]


def test_waiving_the_notice_withdraws_at_once(cli: Cli) -> None:
    found(cli)
    said = cli.ok("members", "withdraw", "2", "--waive-notice", "--shares", "1", env=ASKED).output
    assert "Withdrew 1 share from member 2, 0 left" in said
    assert requests(cli, ASKED) == []
