"""What an organizer reads at the terminal: whole lines, plurals, words for states, one way
to write money, sentences that start with a capital, and errors told the same way."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import Cli

#: Shares are issued before the deadline: a keep-it-all campaign may.
KEEP_IT_ALL = pytest.mark.keep_it_all

AFTER_DEADLINE = {"FUNDRAISER_NOW": "2027-03-01T09:00:00+00:00"}
#: "pledge(s)", "entr(ies)": a count that did not bother to agree with its noun.
LAZY_PLURAL = re.compile(r"\w\((s|es|ies)\)")


def pay(cli: Cli, name: str, email: str, amount: str, ref: str, round_id: str = "seed") -> None:
    cli.ok(
        "pledges", "add", "--name", name, "--email", email, "--address", f"{name}'s house",
        "--amount", amount, "--round", round_id, "--status", "paid", "--reference", ref,
    )  # fmt: skip


def test_status_ends_its_bar_line_and_names_rounds_and_dates_in_words(sqlite_cli: Cli) -> None:
    pay(sqlite_cli, "Grace Hopper", "grace@example.org", "250.00", "BT-1")
    out = sqlite_cli.ok("status").output
    lines = out.splitlines()
    # The bar (blank at 0%), its figure, then an empty line: the next title starts afresh.
    title = lines.index(next(line for line in lines if line.strip() == "By round"))
    assert lines[title - 1].strip() == "" and lines[title - 2].rstrip().endswith(" 0%"), out
    assert lines[title - 2].startswith(" ") or "━" in lines[title - 2]
    assert lines[0] == (
        "Hearth Social Co-operative: all-or-nothing, open, 81 days left "
        "(closes 28 February 2027, 18:00 GMT)"
    ), lines[0]
    assert "Pledged £250.00 of the £250,000.00 goal (0%); paid £250.00; 1 backer" in out
    assert "Seed round" in out and "Crowd round" in out
    assert "no limit" in out and "unlimited" not in out
    assert not LAZY_PLURAL.search(out)
    closed = sqlite_cli.ok("status", env=AFTER_DEADLINE).output.splitlines()[0]
    assert closed.endswith("closed on 28 February 2027, 18:00 GMT")


def test_status_json_keeps_its_keys(sqlite_cli: Cli) -> None:
    data = json.loads(sqlite_cli.ok("status", "--json").output)
    assert set(data) >= {
        "currency", "goal", "pledged", "paid", "backers", "state", "days_left", "by_round",
        "attention",
    }  # fmt: skip
    assert data["by_round"] == {"seed": 0, "crowd": 0}  # ids for scripts, names for people


@KEEP_IT_ALL
def test_one_member_one_entry_reads_in_the_singular(sqlite_cli: Cli) -> None:
    pay(sqlite_cli, "Grace Hopper", "grace@example.org", "50.00", "BT-1")
    plan = sqlite_cli.ok("shares", "allocate", env=AFTER_DEADLINE).output
    assert "1 share at £50.00 for 1 new member; £0.00 to refund." in plan
    issued = sqlite_cli.ok("shares", "issue", env=AFTER_DEADLINE).output
    assert issued.strip() == (
        "Issued 1 share in 1 register entry; admitted 1 member (number 1); nothing to refund."
    )
    listed = sqlite_cli.ok("members", "list", env=AFTER_DEADLINE).output
    assert listed.rstrip().endswith("1 member")


@KEEP_IT_ALL
def test_many_members_read_in_the_plural_with_their_numbers(sqlite_cli: Cli) -> None:
    pay(sqlite_cli, "Grace Hopper", "grace@example.org", "275.00", "BT-1")
    pay(sqlite_cli, "Ada Lovelace", "ada@example.org", "100.00", "BT-2")
    issued = sqlite_cli.ok("shares", "issue", env=AFTER_DEADLINE).output
    assert issued.strip() == (
        "Issued 7 shares in 2 register entries; admitted 2 members (numbers 1 to 2); "
        "£25.00 to refund in 1 remainder."
    )


def test_the_allotment_plan_says_why_money_is_refunded_in_words(sqlite_cli: Cli) -> None:
    pay(sqlite_cli, "Grace Hopper", "grace@example.org", "275.00", "BT-1")
    plan = sqlite_cli.ok("shares", "allocate", env=AFTER_DEADLINE).output
    assert "less than a share" in plan and "fraction" not in plan


def test_a_pledged_csv_row_is_listed_as_pledged_not_pending(
    sqlite_cli: Cli, campaign_dir: Path
) -> None:
    csv = campaign_dir / "seed.csv"
    csv.write_text(
        "name,email,amount,round,status,reference,address\n"
        'Mary Seacole,mary@example.org,50.00,seed,pledged,BT-9,"3 Kingston Road"\n'
        'Grace Hopper,grace@example.org,250.00,seed,paid,BT-8,"9 Navy Yard"\n',
        encoding="utf-8",
    )
    assert "Imported 2 pledges, £300.00." in sqlite_cli.ok("pledges", "import", str(csv)).output
    table = sqlite_cli.ok("pledges", "list").output
    mary = next(line for line in table.splitlines() if "Mary Seacole" in line)
    assert "pledged" in mary and "pending" not in mary
    assert table.rstrip().endswith("2 pledges")
    # Scripts still get the state's name, and --status pending still finds it.
    [row] = json.loads(sqlite_cli.ok("pledges", "list", "--status", "pending", "--json").output)
    assert row["status"] == "pending" and row["name"] == "Mary Seacole"
    added = sqlite_cli.ok(
        "pledges", "add", "--name", "Rosalind Franklin", "--email", "ros@example.org",
        "--address", "5 Lab Lane", "--amount", "75.00", "--round", "seed",
    ).output  # fmt: skip
    assert (
        added.strip() == "Recorded pledge 3: £75.00 from Rosalind Franklin (pledged, not paid yet)."
    )


def test_cli_problems_name_the_option_and_read_as_sentences(sqlite_cli: Cli) -> None:
    refused = sqlite_cli(
        "pledges", "add", "--name", "X", "--email", "x@example", "--address", "",
        "--amount", "10", "--round", "nope",
    )  # fmt: skip
    assert refused.exit_code == 2
    text = refused.output
    assert "  - --email: 'x@example' is not an email address" in text
    assert "-- email" not in text
    assert ". Write it as name@example.org" in text  # a capital after the full stop
    assert "  - --address: is empty. Give a postal address" in text
    # Money in one way: "£10.00" beside "£50.00", never "50.00 GBP".
    assert "--amount: £10.00 is below the minimum holding of £50.00." in text
    assert "GBP" not in text
    assert "  - --round: 'nope' is not a round of this campaign. Use one of: seed, crowd" in text
    assert "Usage:" not in text and "Traceback" not in text


def test_every_full_stop_in_a_problem_is_followed_by_a_capital(
    sqlite_cli: Cli, campaign_dir: Path
) -> None:
    csv = campaign_dir / "bad.csv"
    csv.write_text(
        "name,email,amount,round,status,reference,address\nA,bad,1.234,seed,maybe,R1,x\n",
        encoding="utf-8",
    )
    refused = sqlite_cli("pledges", "import", str(csv))
    assert refused.exit_code == 2
    assert "bad.csv: 3 problems; nothing was imported" in refused.output
    for line in refused.output.splitlines():
        for after in re.findall(r"\. (\S)", line):
            assert not after.islower(), line


def test_mail_send_without_a_server_is_told_like_any_other_mistake(sqlite_cli: Cli) -> None:
    result = sqlite_cli("mail", "send", env={"SMTP_URL": ""})
    assert result.exit_code == 2
    assert result.output.startswith("Error: no mail server: set SMTP_URL")
    assert "Usage:" not in result.output and "Try 'fundraiser" not in result.output


def test_an_empty_outbox_says_so_instead_of_an_empty_table(sqlite_cli: Cli) -> None:
    assert sqlite_cli.ok("mail", "list").output.strip() == "The outbox is empty."
    failed = sqlite_cli.ok("mail", "list", "--status", "failed").output
    assert failed.strip() == "No failed messages."


@pytest.mark.parametrize("count", [1, 2])
@KEEP_IT_ALL
def test_counts_agree_with_their_nouns_across_commands(
    sqlite_cli: Cli, campaign_dir: Path, count: int
) -> None:
    for n in range(count):
        pay(sqlite_cli, f"Backer {n}", f"b{n}@example.org", "50.00", f"BT-{n}")
    outputs = [
        sqlite_cli.ok(*args, env=AFTER_DEADLINE).output
        for args in (
            ("status",),
            ("pledges", "list"),
            ("shares", "allocate"),
            ("shares", "issue", "--dry-run"),
            ("shares", "issue"),
            ("members", "list"),
            ("members", "export", "--out", str(campaign_dir / "register.csv")),
            ("certificates", "make"),
            ("mail", "send", "--dry-run"),
            ("refunds", "send", "--dry-run"),
            ("ledger", "verify"),
            ("check",),
        )
    ]
    for text in outputs:
        assert not LAZY_PLURAL.search(text), text
    joined = "\n".join(outputs)
    noun = "member" if count == 1 else "members"
    assert f"Wrote {count} {noun} to" in joined
    assert f"Wrote {count} {'certificate' if count == 1 else 'certificates'}, 0 unchanged" in (
        joined
    )
