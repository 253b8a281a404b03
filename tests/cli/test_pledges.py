"""Recording offline pledges from the CLI: add, import, list, cancel, mark-paid."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli

HEADER = "name,email,amount,round,status,reference,address\n"


def add(cli: Cli, *extra: str, amount: str = "250.00", email: str = "ada@example.org") -> int:
    result = cli.ok(
        "pledges",
        "add",
        "--name",
        "Ada Lovelace",
        "--email",
        email,
        "--address",
        "1 High Street, London",
        "--amount",
        amount,
        "--json",
        *extra,
    )
    return int(json.loads(result.output)["id"])


def listed(cli: Cli, *args: str) -> list[dict[str, object]]:
    return list(json.loads(cli.ok("pledges", "list", "--json", *args).output))


def test_add_then_list_and_status(cli: Cli) -> None:
    first = add(cli, "--status", "paid", "--reference", "BT-001")
    second = add(cli, amount="100", email="BOB@Example.org ")
    rows = listed(cli)
    assert [r["id"] for r in rows] == [first, second]
    assert rows[0]["status"] == "paid" and rows[0]["paid"] == 25000
    assert rows[1]["status"] == "pending" and rows[1]["amount"] == 10000
    status = json.loads(cli.ok("status", "--json").output)
    assert status["currency"] == "GBP" and status["goal"] == 25_000_000
    assert status["pledged"] == 35000 and status["paid"] == 25000 and status["backers"] == 2
    assert status["mode"] == "all-or-nothing" and status["deadline"].startswith("2027-02-28")
    assert listed(cli, "--status", "paid")[0]["id"] == first


def test_add_dry_run_writes_nothing(cli: Cli) -> None:
    result = cli.ok(
        "pledges",
        "add",
        "--name",
        "A",
        "--email",
        "a@example.org",
        "--address",
        "1 Road",
        "--amount",
        "50",
        "--dry-run",
    )
    assert "Nothing was written" in result.output
    assert listed(cli) == []


def test_import_all_rows_and_rerun_adds_nothing(cli: Cli, tmp_path: Path) -> None:
    csv = tmp_path / "seed.csv"
    csv.write_text(
        HEADER
        + 'Grace Hopper,grace@example.org,5000.00,seed,paid,BT-9,"9 Navy Yard, Arlington"\n'
        + 'Alan Turing,alan@example.org,250,seed,pledged,,"Bletchley Park"\n'
        + 'Alan Turing,alan@example.org,250,seed,pledged,,"Bletchley Park"\n'
    )
    dry = json.loads(cli.ok("pledges", "import", str(csv), "--dry-run", "--json").output)
    assert dry == {
        "imported": 0,
        "new": 3,
        "skipped": 0,
        "total": 550000,
        "currency": "GBP",
        "dry_run": True,
        "notified": 0,
    }
    assert listed(cli) == []
    done = json.loads(cli.ok("pledges", "import", str(csv), "--json").output)
    assert done["imported"] == 3
    rows = listed(cli)
    assert [(r["name"], r["status"], r["amount"]) for r in rows] == [
        ("Grace Hopper", "paid", 500000),
        ("Alan Turing", "pending", 25000),
        ("Alan Turing", "pending", 25000),
    ]
    again = json.loads(cli.ok("pledges", "import", str(csv), "--json").output)
    assert again["imported"] == 0 and again["skipped"] == 3
    assert len(listed(cli)) == 3


def test_bad_rows_are_all_listed_with_line_numbers_and_nothing_is_written(
    cli: Cli, tmp_path: Path
) -> None:
    csv = tmp_path / "bad.csv"
    csv.write_text(
        HEADER
        + "Good Row,good@example.org,100.00,seed,paid,R1,1 Road\n"
        + "No Email,not-an-email,100.00,seed,paid,R2,1 Road\n"
        + "Too Precise,tp@example.org,100.005,seed,paid,R3,1 Road\n"
        + "Bad Round,br@example.org,100.00,autumn,paid,R4,1 Road\n"
        + "Bad Status,bs@example.org,100.00,seed,maybe,R5,1 Road\n"
        + "No Address,na@example.org,100.00,seed,paid,R6,\n"
        + "Other Currency,oc@example.org,100.00 EUR,seed,paid,R7,1 Road\n"
        + "Negative,neg@example.org,-5,seed,paid,R8,1 Road\n"
    )
    result = cli("pledges", "import", str(csv))
    assert result.exit_code == 2
    out = result.output
    assert "Traceback" not in out and "nothing was imported" in out
    for line, field in [
        (3, "email"),
        (4, "amount"),
        (5, "round"),
        (6, "status"),
        (7, "address"),
        (8, "amount"),
        (9, "amount"),
    ]:
        assert f"line {line} {field}" in out, (line, field, out)
    assert "line 2 " not in out
    assert listed(cli) == []


@pytest.mark.parametrize(
    "content,message",
    [
        (
            "name;email;amount;round;status;reference;address\nA;a@example.org;5;seed;paid;;x\n",
            "not separated by commas",
        ),
        (
            "name,email,amount,round,status,address\nA,a@example.org,50,seed,paid,x\n",
            "missing column(s): reference",
        ),
        ("", "empty"),
        (HEADER, "no rows"),
        (HEADER + "A,a@example.org,50,seed,paid,R1,x,extra\n", "more fields than the header"),
        (
            HEADER + "A,a@example.org,50,seed,paid,R1,x\nB,b@example.org,50,seed,paid,R1,y\n",
            "also on line 2",
        ),
    ],
)
def test_malformed_csv_is_refused(cli: Cli, tmp_path: Path, content: str, message: str) -> None:
    csv = tmp_path / "in.csv"
    csv.write_text(content)
    result = cli("pledges", "import", str(csv))
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert listed(cli) == []


def test_missing_csv_file(cli: Cli, tmp_path: Path) -> None:
    result = cli("pledges", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_cancel_and_mark_paid_follow_the_state_machine(cli: Cli) -> None:
    first = add(cli)
    second = add(cli, email="b@example.org")
    cli.ok("pledges", "mark-paid", str(first), "--reference", "BT-77")
    rows = {r["id"]: r for r in listed(cli)}
    assert rows[first]["status"] == "paid" and rows[first]["reference"] == "BT-77"
    cli.ok("pledges", "cancel", str(second))
    refused = cli("pledges", "mark-paid", str(second))
    assert refused.exit_code == 2
    assert "is cancelled and cannot become paid" in refused.output
    late = cli("pledges", "cancel", str(first))
    assert late.exit_code == 2 and "is paid and cannot become cancelled" in late.output
    missing = cli("pledges", "cancel", "999")
    assert missing.exit_code == 2 and "pledge 999 does not exist" in missing.output
    assert {r["id"]: r["status"] for r in listed(cli)} == {first: "paid", second: "cancelled"}


def test_duplicate_reference_is_refused(cli: Cli) -> None:
    add(cli, "--reference", "BT-1")
    result = cli(
        "pledges",
        "add",
        "--name",
        "B",
        "--email",
        "b@example.org",
        "--address",
        "x",
        "--amount",
        "60",
        "--reference",
        "BT-1",
    )
    assert result.exit_code == 2 and "already recorded" in result.output
    assert len(listed(cli)) == 1


def test_an_abandoned_card_form_is_not_a_backer(cli: Cli) -> None:
    from fundraiser.ledger import open_ledger
    from fundraiser.money import Money
    from fundraiser.pledges import NewPledge, Source, Status, create, transition

    add(cli, amount="100.00")  # an offline promise counts while pending
    ledger = open_ledger(cli.db_url)
    with ledger.write() as tx:
        online = create(
            tx,
            NewPledge(
                name="Web Backer",
                email="web@example.org",
                address="x",
                amount=Money(20000, "GBP"),
                round="crowd",
                source=Source.ONLINE,
                tier="neighbour",
                shares=4,
            ),
        )
    status = json.loads(cli.ok("status", "--json").output)
    assert (status["pledged"], status["backers"]) == (10000, 1)
    assert {t["id"]: t["taken"] for t in status["tiers"]}["neighbour"] == 0
    with ledger.write() as tx:
        transition(tx, online, Status.AUTHORIZED)  # the card was saved
    ledger.dispose()
    status = json.loads(cli.ok("status", "--json").output)
    assert (status["pledged"], status["backers"]) == (30000, 2)
    assert {t["id"]: t["taken"] for t in status["tiers"]}["neighbour"] == 1
