"""The register after admission: roll, public summary, leaving, cancellation, data rights."""

from __future__ import annotations

import csv
import hashlib
import io
import json
from pathlib import Path

import pytest
import sqlalchemy as sa

from fundraiser import pledges as pledges_mod
from fundraiser.config import load_campaign
from fundraiser.ledger import open_ledger, schema
from fundraiser.membership import privacy
from fundraiser.pledges import UNSETTLED, Status
from fundraiser.sitegen.aggregates import pledge_sizes
from tests.conftest import Cli
from tests.smtp_fixtures import found, pay

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def refund_pledge(cli: Cli, pledge_id: int) -> None:
    """As the payments code does when a refund or a lost dispute arrives."""
    ledger = open_ledger(cli.db_url)
    try:
        with ledger.write() as tx:
            paid = tx.execute(
                sa.text(f"SELECT paid_amount FROM pledges WHERE id={pledge_id}")
            ).scalar()
            pledges_mod.transition(
                tx, pledge_id, Status.REFUNDED, reason="refunded", extra={"refunded_amount": paid}
            )
    finally:
        ledger.dispose()


def query(cli: Cli, sql: str) -> list[tuple[object, ...]]:
    ledger = open_ledger(cli.db_url)
    try:
        with ledger.read() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        ledger.dispose()


def holdings(cli: Cli) -> dict[int, tuple[int, str | None]]:
    members = json.loads(cli.ok("members", "list", "--json").output)
    return {m["number"]: (m["shares"], m["ceased_on"]) for m in members}


# -- roll and exports ----------------------------------------------------------


def test_voter_roll_one_member_one_vote(cli: Cli, tmp_path: Path) -> None:
    found(cli)
    cli.ok("members", "withdraw", "2", "--waive-notice", "--shares", "1")  # Alan leaves
    rows = list(csv.DictReader(io.StringIO(cli.ok("members", "roll").output)))
    assert rows == [
        {"email": "grace@example.org", "name": "Grace Hopper", "member_number": "1"},
        {"email": "big@example.org", "name": "Big Backer", "member_number": "3"},
    ]
    out = tmp_path / "roll.json"
    cli.ok("members", "roll", "--format", "json", "--out", str(out))
    data = json.loads(out.read_text())
    assert data["votes_per_member"] == 1 and data["count"] == 2
    assert [m["member_number"] for m in data["members"]] == [1, 3]


def test_register_export_and_public_summary(cli: Cli, tmp_path: Path) -> None:
    found(cli)
    full = tmp_path / "register.csv"
    cli.ok("members", "export", "--out", str(full))
    rows = list(csv.DictReader(full.open()))
    assert list(rows[0]) == [
        "number", "name", "address", "email", "shares", "amount_paid", "currency",
        "admitted_on", "ceased_on",
    ]  # fmt: skip
    assert rows[0]["address"] == "Grace Hopper's house"
    public = tmp_path / "public.json"
    result = cli.ok("members", "export", "--public", "--format", "json", "--out", str(public))
    assert "public summary of 3 members" in result.output
    text = public.read_text()
    for personal in ("Grace", "Alan", "example.org", "house"):
        assert personal not in text
    summary = json.loads(text)
    assert (summary["members"], summary["shares"], summary["capital"]) == (3, 205, 1025000)
    bands = {b["band"]: (b["members"], b["shares"]) for b in summary["bands"]}
    # The labels are the site's pledge-size labels (one list, fundraiser.bands): an en dash.
    assert bands["1"] == (1, 1) and bands["2\u20134"] == (1, 4) and bands["200"] == (1, 200)
    ledger = open_ledger(cli.db_url)
    try:
        with ledger.read() as conn:
            site = pledge_sizes(conn, load_campaign(cli.campaign))
    finally:
        ledger.dispose()
    assert [(b["band"], b["min_shares"], b["max_shares"]) for b in summary["bands"]] == [
        (b.label, b.size.low, b.size.high) for b in site
    ]
    public_csv = tmp_path / "public.csv"
    cli.ok("members", "export", "--public", "--out", str(public_csv))
    lines = public_csv.read_text().splitlines()
    assert lines[0] == "band,min_shares,max_shares,members,shares"
    assert lines[-1] == "total,,,3,205"


# -- withdrawal ----------------------------------------------------------------


def test_withdraw_part_then_all(cli: Cli) -> None:
    found(cli)
    result = cli.ok("members", "withdraw", "3", "--waive-notice", "--shares", "150")
    assert "Withdrew 150 shares from member 3, 50 left; £7,500.00 to repay" in result.output
    assert holdings(cli)[3] == (50, None)
    done = json.loads(
        cli.ok("members", "withdraw", "3", "--waive-notice", "--shares", "50", "--json").output
    )
    assert done["ceased"] and done["holding_after"] == 0 and done["amount"] == 250000
    assert holdings(cli)[3] == (0, "2026-12-10")
    assert query(
        cli, "SELECT kind, shares, amount FROM register_entries WHERE member_number=3"
    ) == [
        ("issue", 200, 1000000),
        ("withdraw", 150, 750000),
        ("withdraw", 50, 250000),
    ]


def test_withdraw_below_the_minimum_is_refused(sqlite_cli: Cli, campaign_dir: Path) -> None:
    toml = campaign_dir / "campaign.toml"
    text = toml.read_text().replace("min_shares = 1", "min_shares = 2")
    text = text.replace("min_shares_to_join = 1", "min_shares_to_join = 2")  # within the terms
    text = text.replace(
        'id = "member"\nname = "Member"\nshares = 1', 'id = "member"\nname = "Member"\nshares = 2'
    )
    toml.write_text(text)
    pay(sqlite_cli, "Grace Hopper", "grace@example.org", "250.00", "R1")
    sqlite_cli.ok("shares", "issue")
    ledger_file = campaign_dir / "var" / "ledger.sqlite"
    before = digest(ledger_file)
    result = sqlite_cli("members", "withdraw", "1", "--waive-notice", "--shares", "4")
    assert result.exit_code == 2
    assert "withdraw all 5 shares to leave, or at most 3 to stay a member" in result.output
    assert digest(ledger_file) == before
    sqlite_cli.ok("members", "withdraw", "1", "--waive-notice", "--shares", "3")


BAD = [
    (["members", "withdraw", "9", "--waive-notice", "--shares", "1"], "member 9 does not exist"),
    (
        ["members", "withdraw", "2", "--waive-notice", "--shares", "2"],
        "more than member 2 holds (1)",
    ),
    (["members", "withdraw", "2", "--waive-notice", "--shares", "0"], "at least 1"),
    (["members", "show", "nobody@example.org"], "no one with the email"),
    (["members", "forget", "nobody@example.org"], "no one with the email"),
    (["members", "forget", "grace@example.org"], "s.30"),
    (["members", "cancel-shares", "1"], "its shares stand"),
    (["members", "cancel-shares", "77"], "pledge 77 does not exist"),
    (["certificates", "make", "--member", "9"], "member 9 does not exist"),
    (["refunds", "mark-paid", "1", "--reference", "X"], "no refund due"),
    (["refunds", "mark-paid", "4", "--reference", " "], "--reference is empty"),
    (["mail", "preview", "12"], "message 12 does not exist"),
]


@pytest.mark.parametrize("args,message", BAD)
def test_bad_input_changes_nothing(
    sqlite_cli: Cli, campaign_dir: Path, args: list[str], message: str
) -> None:
    found(sqlite_cli)
    ledger_file = campaign_dir / "var" / "ledger.sqlite"
    before = digest(ledger_file)
    result = sqlite_cli(*args)
    assert result.exit_code in (1, 2), result.output
    assert message in result.output
    assert "Traceback" not in result.output
    assert digest(ledger_file) == before


# -- cancellation --------------------------------------------------------------


def test_cancel_shares_of_a_refunded_pledge(cli: Cli) -> None:
    found(cli)  # Grace: R1 120.00 + R3 80.00 = 4 shares
    refund_pledge(cli, 3)
    ledger = open_ledger(cli.db_url)
    with ledger.write() as tx:  # as the payments code flags it when the refund arrives
        tx.insert(
            schema.register_flags,
            ("entry_id", "pledge_id", "reason", "created_at"),
            [(1, 3, "refunded", "2026-12-10T12:00:00+00:00")],
        )
        tx.record("register.flag", "pledge:3", {"pledge": 3, "reason": "refunded"})
    ledger.dispose()
    flags = json.loads(cli.ok("members", "flagged", "--json").output)
    assert [(f["member"], f["pledge_id"], f["pledge_status"]) for f in flags] == [
        (1, 3, "refunded")
    ]
    assert "fundraiser members cancel-shares 3" in cli.ok("members", "flagged").output
    dry = json.loads(cli.ok("members", "cancel-shares", "3", "--dry-run", "--json").output)
    assert dry["shares"] == 2 and holdings(cli)[1] == (4, None)
    result = cli.ok("members", "cancel-shares", "3")
    assert "Cancelled 2 shares paid by pledge 3" in result.output
    # 120.00 of R1 is left: two shares, and 20.00 that is owed back.
    assert "£20.00 of pledge 1 no longer makes a whole share" in result.output
    assert holdings(cli)[1] == (2, None)
    # Grace's certificate 1 is taken back; the cancel entry carries her balance certificate.
    assert query(
        cli, "SELECT kind, shares, certificate_number FROM register_entries WHERE member_number=1"
    ) == [("issue", 4, 1), ("cancel", 2, 4)]
    assert "No flagged shares" in cli.ok("members", "flagged").output
    refunds = json.loads(cli.ok("refunds", "list", "--json").output)
    assert [(r["pledge_id"], r["amount"], r["remainders"][0]["reason"]) for r in refunds] == [
        (1, 2000, "cancel"),
        (4, 10000, "cap"),
    ]
    again = cli.ok("members", "cancel-shares", "3")
    assert "Nothing to cancel" in again.output and holdings(cli)[1] == (2, None)
    # A full refund of Alan's only pledge: no shares left, no longer a member.
    refund_pledge(cli, 2)
    cli.ok("members", "cancel-shares", "2", "--reason", "dispute lost")
    assert holdings(cli)[2] == (0, "2026-12-10")
    assert query(cli, "SELECT count(*) FROM outbox WHERE member_number=2") == [(0,)]
    # Big's pledge refunded in full: the cap remainder was part of it, not owed twice.
    refund_pledge(cli, 4)
    big = json.loads(cli.ok("members", "cancel-shares", "4", "--json").output)
    assert big["shares"] == 200 and big["settled_remainders"] == [1]
    due = json.loads(cli.ok("refunds", "list", "--json").output)
    assert [r["pledge_id"] for r in due] == [1]
    assert open_ledger(cli.db_url).verify().ok


# -- data rights ---------------------------------------------------------------


def test_show_everything_about_a_person(cli: Cli) -> None:
    found(cli)
    data = json.loads(cli.ok("members", "show", " Grace@Example.org ", "--json").output)
    assert data["member"]["number"] == 1 and data["member"]["shares"] == 4
    assert data["member"]["address"] == "Grace Hopper's house"
    assert [p["id"] for p in data["pledges"]] == [1, 3]
    assert [e["kind"] for e in data["register_entries"]] == ["issue"]
    assert [m["kind"] for m in data["mail"]] == ["welcome"]
    human = cli.ok("members", "show", "grace@example.org").output
    assert "Member 1: Grace Hopper" in human and "Pledges (2)" in human


def test_forget_a_backer_who_never_became_a_member(cli: Cli) -> None:
    found(cli)
    cli.ok(
        "pledges", "add", "--name", "Eve Example", "--email", "eve@example.org",
        "--address", "7 Quiet Lane", "--amount", "500.00", "--display-name", "Eve",
    )  # fmt: skip
    pending = cli("members", "forget", "eve@example.org")
    assert pending.exit_code == 1 and "cancel it first" in pending.output
    cli.ok("pledges", "cancel", "5")
    result = cli.ok("members", "forget", "eve@example.org")
    assert "Erased the personal data on 1 pledge" in result.output
    row = query(
        cli, "SELECT name, email, address, display_name, person_key, amount FROM pledges WHERE id=5"
    )
    assert row == [("(erased)", "(erased)", "(erased)", None, "erased:5", 50000)]
    gone = cli("members", "show", "eve@example.org")
    assert gone.exit_code == 2
    journal = " ".join(str(r) for r in query(cli, "SELECT action, subject, data FROM journal"))
    assert "eve@example.org" not in journal and "Eve Example" not in journal
    assert "person.forget" in journal
    assert open_ledger(cli.db_url).verify().ok


def test_forget_erases_the_backers_stripe_events_too(cli: Cli) -> None:
    found(cli)
    cli.ok(
        "pledges", "add", "--name", "Eve Example", "--email", "eve@example.org",
        "--address", "7 Quiet Lane", "--amount", "500.00",
    )  # fmt: skip
    ledger = open_ledger(cli.db_url)
    payload = json.dumps(
        {
            "id": "evt_1",
            "data": {
                "object": {
                    "id": "pi_eve",
                    "customer": "cus_eve",
                    "billing_details": {"email": "eve@example.org"},
                }
            },
        }
    )
    with ledger.write() as tx:
        tx.update(schema.pledges, {"id": 5}, stripe_intent="pi_eve", stripe_customer="cus_eve")
        tx.record("pledge.stripe", "pledge:5", {"id": 5})
        tx.execute(
            sa.text(
                "INSERT INTO stripe_events (id, type, livemode, created, payload, "
                "received_at) VALUES ('evt_1', 'payment_intent.canceled', false, 1, "
                ":p, 'now'), ('evt_2', 'payment_intent.succeeded', false, 2, "
                '\'{"data": {"object": {"id": "pi_other"}}}\', \'now\')'
            ),
            {"p": payload},
        )
    ledger.dispose()
    cli.ok("pledges", "cancel", "5")
    cli.ok("members", "forget", "eve@example.org")
    events = dict(query(cli, "SELECT id, payload FROM stripe_events ORDER BY id"))
    assert "eve@example.org" not in events["evt_1"] and "pi_eve" not in events["evt_1"]
    assert "pi_other" in events["evt_2"]  # other backers' events are left alone


def test_every_pledge_still_open_blocks_erasure_and_says_what_to_do() -> None:
    # Money may still move on an unsettled pledge; a dispute needs the record for the bank.
    assert set(privacy.STILL_OPEN) == {s.value for s in UNSETTLED | {Status.DISPUTED}}


def test_forget_refuses_members_and_says_until_when_for_former_members(cli: Cli) -> None:
    found(cli)
    member = cli("members", "forget", "alan@example.org")
    assert member.exit_code == 1
    assert "member 2" in member.output and "s.30" in member.output
    cli.ok("members", "withdraw", "2", "--waive-notice", "--shares", "1")
    former = cli("members", "forget", "alan@example.org")
    assert former.exit_code == 1 and "can be erased from 2036-12-10" in former.output
    erased = cli.ok(
        "members", "forget", "alan@example.org", env={"FUNDRAISER_NOW": "2036-12-11T09:00:00+00:00"}
    )
    assert "Erased" in erased.output
    assert query(cli, "SELECT name, email, address FROM members WHERE number=2") == [
        ("(erased)", None, "(erased)")
    ]
