"""Irreversible steps wait for their time (issue 13, item 1).

An all-or-nothing campaign promises that no shares are issued unless it closes
with its goal met. `shares issue` refuses before then (and for ever once the
goal is missed), naming the goal, the money secured and the deadline, and
changes nothing. The close is recorded by `fundraiser collect` even when no card
pledge exists, without Stripe; a missed goal leaves every bank payment owed back
in full, in `refunds list`, and the payers' mail says so in bank words.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from fundraiser.ledger import open_ledger
from tests.conftest import Cli
from tests.smtp_fixtures import SmtpServer, fixture_smtp_server  # noqa: F401 - fixture
from tests.stripe_fixtures import AFTER_DEADLINE, copy_campaign

AFTER = {"FUNDRAISER_NOW": AFTER_DEADLINE}
#: No Stripe at all: a close with nothing at Stripe must not need it.
NO_STRIPE = {"STRIPE_SECRET_KEY": "", "STRIPE_API_BASE": ""}


def pay(cli: Cli, name: str, email: str, amount: str, ref: str, **env: str) -> None:
    cli.ok(
        "pledges", "add", "--name", name, "--email", email, "--address", f"{name}'s house",
        "--amount", amount, "--status", "paid", "--reference", ref, env=env,
    )  # fmt: skip


def promise(cli: Cli, name: str, email: str, amount: str) -> None:
    cli.ok(
        "pledges", "add", "--name", name, "--email", email, "--address", f"{name}'s house",
        "--amount", amount,
    )  # fmt: skip


def import_paid(cli: Cli, tmp_path: Path, name: str, email: str, amount: str) -> None:
    path = tmp_path / "import.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["name", "email", "amount", "round", "status", "reference", "address"])
        writer.writerow([name, email, amount, "seed", "paid", "IMP-1", f"{name}'s house"])
    cli.ok("pledges", "import", str(path))


def everything(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table: what "nothing changed" means."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            meta = sa.MetaData()
            meta.reflect(conn)
            return {
                name: [tuple(r) for r in conn.execute(table.select().order_by(*table.c))]
                for name, table in meta.tables.items()
            }
    finally:
        engine.dispose()


def members(cli: Cli) -> list[dict[str, Any]]:
    return list(json.loads(cli.ok("members", "list", "--json").output))


def goal_of(campaign_dir: Path, goal: str) -> None:
    copy_campaign(campaign_dir, 'goal = "250000.00"', f'goal = "{goal}"')


# -- before the close ---------------------------------------------------------------


def test_issue_before_the_deadline_refuses_and_changes_nothing(cli: Cli) -> None:
    """The defect as found: one paid pledge, 0 % of the goal, and a member admitted."""
    pay(cli, "Ada", "ada@example.org", "50.00", "R1")
    before = everything(cli.db_url)
    for args in (("shares", "issue"), ("shares", "issue", "--json")):
        refused = cli(*args)
        assert refused.exit_code != 0, refused.output
        said = " ".join(refused.output.split())
        assert "admitted" not in said
        assert "£250,000.00" in said  # the goal
        assert "£50.00" in said  # the money secured so far
        assert "2027-02-28" in said  # the deadline
        assert "Traceback" not in said
    assert everything(cli.db_url) == before
    assert members(cli) == []


def test_the_dry_run_says_the_same_and_allocate_shows_the_plan_with_a_note(cli: Cli) -> None:
    pay(cli, "Ada", "ada@example.org", "120.00", "R1")
    dry = cli("shares", "issue", "--dry-run")
    assert dry.exit_code != 0 and "£250,000.00" in " ".join(dry.output.split())
    shown = cli.ok("shares", "allocate")
    said = " ".join(shown.output.split())
    assert "Ada" in said and "2 shares" in said
    assert "cannot be issued yet" in said and "£250,000.00" in said
    plan = json.loads(cli.ok("shares", "allocate", "--json").output)
    assert plan["total_shares"] == 2
    assert plan["can_issue"] is False and "2027-02-28" in plan["why_not"]
    assert members(cli) == []


def test_after_the_deadline_the_close_must_be_recorded_first(cli: Cli, campaign_dir: Path) -> None:
    goal_of(campaign_dir, "100.00")
    pay(cli, "Ada", "ada@example.org", "120.00", "R1")
    refused = cli("shares", "issue", env=AFTER)
    assert refused.exit_code != 0
    said = " ".join(refused.output.split())
    assert "fundraiser collect" in said and "£100.00" in said and "£120.00" in said
    assert members(cli) == []


def test_keep_it_all_issues_paid_pledges_at_any_time(cli: Cli, campaign_dir: Path) -> None:
    copy_campaign(campaign_dir, 'mode = "all-or-nothing"', 'mode = "keep-it-all"')
    pay(cli, "Ada", "ada@example.org", "50.00", "R1")
    done = json.loads(cli.ok("shares", "issue", "--json").output)
    assert done["members_admitted"] == 1
    assert json.loads(cli.ok("shares", "allocate", "--json").output)["can_issue"] is True


# -- the close without Stripe ---------------------------------------------------------


def test_a_bank_only_campaign_closes_without_stripe_and_then_issues(
    cli: Cli, campaign_dir: Path, tmp_path: Path
) -> None:
    goal_of(campaign_dir, "100.00")
    pay(cli, "Ada", "ada@example.org", "120.00", "R1")
    import_paid(cli, tmp_path, "Imogen", "imogen@example.org", "50.00")
    dry = json.loads(cli.ok("collect", "--dry-run", "--json", env={**AFTER, **NO_STRIPE}).output)
    assert dry["decision"] == "charge" and dry["goal_met"] is True
    closed = cli("collect", env={**AFTER, **NO_STRIPE})
    assert closed.exit_code == 0, closed.output
    assert "STRIPE_SECRET_KEY" not in closed.output
    assert "goal was met" in " ".join(closed.output.split())
    done = json.loads(cli.ok("shares", "issue", "--json", env=AFTER).output)
    assert done["members_admitted"] == 2
    assert [m["name"] for m in members(cli)] == ["Ada", "Imogen"]
    # Closing again changes nothing.
    head = open_ledger(cli.db_url)
    first = head.head()
    cli.ok("collect", env={**AFTER, **NO_STRIPE})
    assert head.head() == first
    head.dispose()


def test_a_missed_goal_is_recorded_without_stripe_and_bank_payments_are_owed_back(
    cli: Cli, tmp_path: Path, smtp_server: SmtpServer
) -> None:
    pay(cli, "Ada", "ada@example.org", "120.00", "R1")  # typed by an organizer
    import_paid(cli, tmp_path, "Imogen", "imogen@example.org", "50.00")  # imported
    promise(cli, "Pat", "pat@example.org", "75.00")  # promised, never paid
    dry = json.loads(cli.ok("collect", "--dry-run", "--json", env={**AFTER, **NO_STRIPE}).output)
    assert dry["decision"] == "release"
    assert dry["paid_offline"] == 2  # the imported pledge is a bank pledge too
    closed = cli("collect", env={**AFTER, **NO_STRIPE})
    assert closed.exit_code == 0, closed.output
    said = " ".join(closed.output.split())
    assert "goal was not met" in said and "refunds list" in said

    owed = {r["email"]: r for r in json.loads(cli.ok("refunds", "list", "--json").output)}
    assert set(owed) == {"ada@example.org", "imogen@example.org"}
    assert owed["ada@example.org"]["amount"] == 12000
    assert owed["imogen@example.org"]["amount"] == 5000
    for row in owed.values():
        assert row["method"] == "bank"
        assert [line["reason"] for line in row["remainders"]] == ["goal missed"]
    table = " ".join(cli.ok("refunds", "list", env={"COLUMNS": "200"}).output.split())
    assert "goal missed" in table
    listed = {
        p["email"]: p["status"] for p in json.loads(cli.ok("pledges", "list", "--json").output)
    }
    assert listed["pat@example.org"] == "released"

    # No shares, ever, for a campaign that missed its goal.
    refused = cli("shares", "issue", env=AFTER)
    assert refused.exit_code != 0
    assert "£250,000.00" in refused.output and "refunds list" in " ".join(refused.output.split())
    assert members(cli) == []

    # Closing again owes nothing twice.
    cli.ok("collect", env={**AFTER, **NO_STRIPE})
    again = json.loads(cli.ok("refunds", "list", "--json").output)
    assert sorted(r["amount"] for r in again) == [5000, 12000]

    # The payers read that their money comes back by bank transfer; no card words.
    cli.ok("mail", "send", env={**AFTER, "SMTP_URL": smtp_server.url})
    for email, amount in (("ada@example.org", "£120.00"), ("imogen@example.org", "£50.00")):
        [received] = smtp_server.to(email)
        msg = received.message
        text = " ".join(msg.get_body(("plain",)).get_content().split())
        subject = str(msg["Subject"])
        assert "did not reach its goal" in subject
        assert f"The {amount} you paid" in text and "by bank transfer" in text, text
        for card_word in ("card", "charged"):
            assert card_word not in text.lower() and card_word not in subject.lower(), text
    [received] = smtp_server.to("pat@example.org")
    text = " ".join(received.message.get_body(("plain",)).get_content().split())
    subject = str(received.message["Subject"])
    assert "owe nothing" in text, text
    for card_word in ("card", "charged"):
        assert card_word not in text.lower() and card_word not in subject.lower(), text


def test_the_dry_run_counts_part_paid_bank_pledges_owed_back_too(cli: Cli, tmp_path: Path) -> None:
    from tests.bankfixtures import Tx, camt053

    pay(cli, "Ada", "ada@example.org", "120.00", "R1")
    promise(cli, "Bea", "bea@example.org", "100.00")  # 40.00 of it arrives by transfer
    promise(cli, "Pat", "pat@example.org", "75.00")  # nothing arrives
    bea = next(
        p["id"]
        for p in json.loads(cli.ok("pledges", "list", "--json").output)
        if p["email"] == "bea@example.org"
    )
    statement = camt053(
        tmp_path / "statement.xml", [Tx("B-1", "40.00", f"PLEDGE-{bea}")], currency="GBP"
    )
    cli.ok("bank", "import", str(statement))
    dry = json.loads(cli.ok("collect", "--dry-run", "--json", env={**AFTER, **NO_STRIPE}).output)
    assert dry["decision"] == "release"
    assert dry["paid_offline"] == 2  # Ada in full, Bea in part: both owed back
    cli.ok("collect", env={**AFTER, **NO_STRIPE})
    owed = {r["email"]: r["amount"] for r in json.loads(cli.ok("refunds", "list", "--json").output)}
    assert owed == {"ada@example.org": 12000, "bea@example.org": 4000}
