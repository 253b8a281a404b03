"""From paid pledges to founding members: allocate, issue, the register."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from fundraiser.allocation import Allotment, Remainder, RemainderReason
from fundraiser.cli.shares import _allotment_json, _allotment_text
from fundraiser.ledger import open_ledger
from fundraiser.money import Money
from tests.conftest import Cli, PostgresServer

# Shares are issued before the deadline here: a keep-it-all campaign may.
pytestmark = pytest.mark.keep_it_all


def pay(cli: Cli, name: str, email: str, amount: str, ref: str) -> None:
    cli.ok(
        "pledges",
        "add",
        "--name",
        name,
        "--email",
        email,
        "--address",
        f"{name}'s house",
        "--amount",
        amount,
        "--status",
        "paid",
        "--reference",
        ref,
    )


def seed(cli: Cli) -> None:
    pay(cli, "Grace", "grace@example.org", "120.00", "R1")  # 2 shares + 20.00 fraction
    pay(cli, "Alan", "alan@example.org", "50.00", "R2")  # 1 share
    pay(cli, "Grace H", " GRACE@example.org", "80.00", "R3")  # same person: 200 -> 4 shares
    pay(cli, "Big", "big@example.org", "10100.00", "R4")  # capped at 200 shares
    cli.ok(
        "pledges",
        "add",
        "--name",
        "Unpaid",
        "--email",
        "u@example.org",
        "--address",
        "x",
        "--amount",
        "500.00",
    )


def test_allocate_shows_the_plan_and_writes_nothing(cli: Cli) -> None:
    seed(cli)
    plan = json.loads(cli.ok("shares", "allocate", "--json").output)
    people = {a["person"].strip().lower(): a for a in plan["allotments"]}
    assert people["grace@example.org"]["shares"] == 4
    assert people["alan@example.org"]["shares"] == 1
    big = people["big@example.org"]
    assert big["shares"] == 200
    assert [(r["amount"], r["reason"]) for r in big["remainders"]] == [(10000, "cap")]
    assert "u@example.org" not in people
    for a in plan["allotments"]:
        assert a["shares"] * plan["price"] + sum(r["amount"] for r in a["remainders"]) == a["paid"]
    assert json.loads(cli.ok("members", "list", "--json").output) == []


def test_issue_numbers_members_in_admission_order_and_is_idempotent(
    cli: Cli, tmp_path: Path
) -> None:
    seed(cli)
    first = json.loads(cli.ok("shares", "issue", "--json").output)
    assert first["members_admitted"] == 3 and first["shares"] == 205
    assert first["first_member"] == 1 and first["last_member"] == 3
    assert first["refund_total"] == 10000
    members = json.loads(cli.ok("members", "list", "--json").output)
    assert [(m["number"], m["name"], m["shares"]) for m in members] == [
        (1, "Grace", 4),
        (2, "Alan", 1),
        (3, "Big", 200),
    ]
    assert members[0]["amount_paid"] == 20000 and members[0]["admitted_on"] == "2026-12-10"
    # Running issue again changes nothing.
    ledger = open_ledger(cli.db_url)
    head = ledger.head()
    again = json.loads(cli.ok("shares", "issue", "--json").output)
    assert again["entries"] == 0 and again["members_admitted"] == 0
    assert ledger.head() == head
    with ledger.read() as conn:
        certificates = (
            conn.execute(sa.text("SELECT certificate_number FROM register_entries ORDER BY id"))
            .scalars()
            .all()
        )
        refunds = conn.execute(
            sa.text("SELECT pledge_id, amount, reason, status FROM remainders ORDER BY id")
        ).all()
        welcome = conn.execute(
            sa.text("SELECT kind, to_email, member_number, status FROM outbox ORDER BY id")
        ).all()
        mail_data = conn.execute(sa.text("SELECT data FROM outbox ORDER BY id")).scalars().all()
        links = conn.execute(
            sa.text(
                "SELECT entry_id, pledge_id, amount FROM allotments ORDER BY entry_id, pledge_id"
            )
        ).all()
    assert certificates == [1, 2, 3]
    # A welcome mail per new member, queued with the issue itself, never twice.
    assert [tuple(w) for w in welcome] == [
        ("welcome", "grace@example.org", 1, "queued"),
        ("welcome", "alan@example.org", 2, "queued"),
        ("welcome", "big@example.org", 3, "queued"),
    ]
    # The template data is canonical JSON, as outbox.message() writes it.
    assert mail_data == [
        f'{{"admitted_on": "2026-12-10", "member_number": {number}}}' for number in (1, 2, 3)
    ]
    # Which pledge paid for which entry: Grace's two pledges, kept whole, then Alan's, then Big's.
    assert [tuple(link) for link in links] == [
        (1, 1, 12000),
        (1, 3, 8000),
        (2, 2, 5000),
        (3, 4, 1000000),
    ]
    assert [tuple(r) for r in refunds] == [(4, 10000, "cap", "due")]
    ledger.dispose()
    assert ledger.verify().ok


def test_a_later_payment_adds_shares_to_an_existing_member(cli: Cli) -> None:
    seed(cli)
    cli.ok("shares", "issue")
    pay(cli, "Alan", "alan@example.org", "100.00", "R9")
    pay(cli, "Newcomer", "new@example.org", "50.00", "R10")
    result = json.loads(cli.ok("shares", "issue", "--json").output)
    assert result["members_admitted"] == 1 and result["shares"] == 3
    members = {m["number"]: m for m in json.loads(cli.ok("members", "list", "--json").output)}
    assert members[2]["shares"] == 3 and members[4]["name"] == "Newcomer"


def test_issue_dry_run_writes_nothing(cli: Cli) -> None:
    seed(cli)
    result = cli.ok("shares", "issue", "--dry-run")
    assert "Nothing was written" in result.output
    assert json.loads(cli.ok("members", "list", "--json").output) == []


def test_members_export_csv_and_json(cli: Cli, tmp_path: Path) -> None:
    seed(cli)
    cli.ok("shares", "issue")
    out = tmp_path / "register.csv"
    assert "Wrote 3 members" in cli.ok("members", "export", "--out", str(out)).output
    rows = list(csv.DictReader(out.open()))
    assert [r["number"] for r in rows] == ["1", "2", "3"]
    assert rows[0]["address"] == "Grace's house" and rows[0]["email"] == "grace@example.org"
    assert rows[2]["shares"] == "200" and rows[2]["amount_paid"] == "10000.00"
    js = tmp_path / "register.json"
    cli.ok("members", "export", "--out", str(js), "--format", "json")
    assert len(json.loads(js.read_text())["members"]) == 3
    bad = cli("members", "export", "--out", str(tmp_path / "no" / "such" / "dir.csv"))
    assert bad.exit_code == 2 and "does not exist" in bad.output


@pytest.mark.parametrize(
    "refused",
    [
        "INSERT ON remainders",  # the last rows the issue writes
        "UPDATE ON pledges",  # the stamp, on a second thread while Python allocates
        "INSERT ON outbox",  # the welcome mail, on a second thread while the journal is encoded
    ],
)
def test_an_issue_that_fails_partway_leaves_the_ledger_untouched(
    sqlite_cli: Cli, refused: str
) -> None:
    """A statement the database refuses, on either thread, rolls the whole issue back."""
    seed(sqlite_cli)
    path = Path(sqlite_cli.db_url.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        db.execute(
            f"CREATE TRIGGER refuse BEFORE {refused} BEGIN SELECT RAISE(ABORT, 'disk says no'); END"
        )
    before = path.read_bytes()
    failed = sqlite_cli("shares", "issue", "--json")
    assert failed.exit_code != 0 and "disk says no" in failed.output
    assert "Traceback" not in failed.output
    assert path.read_bytes() == before
    with sqlite3.connect(path) as db:
        db.execute("DROP TRIGGER refuse")
    done = json.loads(sqlite_cli.ok("shares", "issue", "--json").output)
    assert (done["members_admitted"], done["first_member"], done["remainders"]) == (3, 1, 1)


def _ledger_rows(url: str) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in key order: what "unchanged" means on a server."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            tables = sa.MetaData()
            tables.reflect(conn)
            return {
                name: [tuple(row) for row in conn.execute(table.select().order_by(*table.c))]
                for name, table in tables.tables.items()
            }
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("refused", ["INSERT ON remainders", "UPDATE ON pledges"])
def test_an_issue_that_fails_partway_on_postgresql_leaves_it_untouched(
    campaign_dir: Path, postgres: PostgresServer, refused: str
) -> None:
    """The same on PostgreSQL, where the second thread's statement goes through psycopg."""
    db_url = postgres.new_database()
    cli = Cli(campaign_dir / "campaign.toml", db_url)
    seed(cli)
    table = refused.split()[-1]
    engine = sa.create_engine(db_url)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'disk says no'; END $$"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER refuse BEFORE {refused.split()[0]} ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION refuse()"
        )
    before = _ledger_rows(db_url)
    failed = cli("shares", "issue", "--json")
    assert failed.exit_code != 0 and "disk says no" in failed.output
    assert "Traceback" not in failed.output
    assert _ledger_rows(db_url) == before
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP TRIGGER refuse ON {table}")
    engine.dispose()
    done = json.loads(cli.ok("shares", "issue", "--json").output)
    assert (done["members_admitted"], done["first_member"], done["remainders"]) == (3, 1, 1)


def test_the_plan_as_json_is_one_document_however_many_people(cli: Cli, campaign_dir: Path) -> None:
    """Written a thousand allotments at a time, the plan is byte for byte what one
    json.dumps of it gives: a script reading it cannot tell."""
    names = ['Zoë "Z" <b>', "=HYPERLINK(1)", "\uff27\uff52\uff41\uff43\uff45", "O'Brien\\", "名前"]
    # 2,000 people, 345 of whom pledge twice; some over the cap: every kind of
    # remainder a plan writes, one pledge or several.
    rows = [
        f'"{names[n % len(names)].replace(chr(34), chr(34) * 2)} {n}",p{n % 2_000}@example.org,'
        f"{10_125 if n % 500 == 7 else 50 + n % 3 * 25}.00,crowd,paid,REF-{n},{n} Road"
        for n in range(2_345)
    ]
    source = campaign_dir / "paid.csv"
    source.write_text("name,email,amount,round,status,reference,address\n" + "\n".join(rows))
    cli.ok("pledges", "import", str(source))
    for args in (["allocate", "--json"], ["issue", "--json", "--dry-run"]):
        out = cli.ok("shares", *args).output
        plan = json.loads(out)
        assert out == json.dumps(plan, ensure_ascii=False) + "\n"
        assert len(plan["allotments"]) == 2_000
        assert max(len(a["pledges"]) for a in plan["allotments"]) == 2
        reasons = {r["reason"] for a in plan["allotments"] for r in a["remainders"]}
        assert reasons == {"fraction", "cap"}
        assert list(plan)[-2:] == ["can_issue", "why_not"]
        assert plan.get("dry_run") is ("--dry-run" in args or None)
        assert {a["name"] for a in plan["allotments"][:5]} == {
            f"{x} {n}" for n, x in enumerate(names)
        }


@given(
    name=st.text(),
    email=st.text(),
    numbers=st.lists(st.integers(min_value=0, max_value=10**15), min_size=4, max_size=4),
    pledge_ids=st.lists(st.integers(min_value=1, max_value=10**12), min_size=1, max_size=4),
    reasons=st.lists(st.sampled_from(list(RemainderReason)), max_size=6),
)
def test_an_allotment_is_written_as_json_dumps_writes_it(
    name: str, email: str, numbers: list[int], pledge_ids: list[int], reasons: list[RemainderReason]
) -> None:
    """The plan's JSON is formatted without dictionaries; any text a backer typed
    (quotes, backslashes, controls, lone surrogates) and every reason come out as
    json.dumps would write them."""
    shares, existing, paid, amount = numbers
    remainders = tuple(
        Remainder(pledge_ids[i % len(pledge_ids)], "key", Money(amount + i, "GBP"), reason)
        for i, reason in enumerate(reasons)
    )
    allotment = Allotment(
        "key", name, email, "2027-01-01T00:00:00Z", shares, Money(paid, "GBP"),
        remainders, tuple(pledge_ids), existing,
    )  # fmt: skip
    expected = json.dumps(_allotment_json(allotment), ensure_ascii=False)
    assert _allotment_text(allotment) == expected
    assert json.loads(expected)["name"] == name
