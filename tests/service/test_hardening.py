"""The pledge service against a stranger's requests: nothing leaks, nothing breaks.

Each test sends the attacking input of issue 13 (items 6, 7, 8 and 12) to the
real service (Starlette's TestClient, or `fundraiser serve` as a process on
127.0.0.1) with the real ledger and the Stripe emulator, and checks what the
stranger gets back and what the service's log says.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from fundraiser.ledger import open_ledger, schema
from fundraiser.payments.webhooks import signature_header
from fundraiser.service.app import create_app
from fundraiser.service.settings import SettingsError
from tests import stripe_fixtures
from tests.conftest import PG_BIN, Cli, PostgresServer
from tests.service.test_pledges import PLEDGE, confirm, post, save_card
from tests.service_process import Served
from tests.stripe_fixtures import TestClient, make_settings

localstripe = stripe_fixtures.localstripe
service = stripe_fixtures.service
small_goal = stripe_fixtures.small_goal
stripe_env = stripe_fixtures.stripe_env


def rows(url: str, table: sa.Table) -> list[Any]:
    ledger = open_ledger(url)
    try:
        with ledger.read() as conn:
            return list(conn.execute(sa.select(table)))
    finally:
        ledger.dispose()


def tracebacks(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Log records that carry a traceback (what an operator would find in the log)."""
    return [r.getMessage() for r in caplog.records if r.exc_info or r.stack_info]


# -- 6: the holding cap's refusal ---------------------------------------------------------


def test_the_holding_cap_refusal_does_not_tell_what_someone_else_pledged(
    service: TestClient,
) -> None:
    victims = {"ada@example.org": 150, "grace@example.org": 60}
    for email, shares in victims.items():
        body = {**PLEDGE, "tier": None, "shares": shares, "email": email}
        assert post(service, body).status_code == 201
    answers = []
    for email, shares in (("ADA@Example.ORG", 100), ("  grace@EXAMPLE.org", 150)):
        body = {**PLEDGE, "tier": None, "shares": shares, "email": email}
        answer = post(service, body)
        assert answer.status_code == 422, answer.text
        assert answer.json()["field"] == "shares"
        answers.append(answer.json()["error"])
    # The same words whatever the victim pledged: the cap, and that shares exist.
    assert answers[0] == answers[1]
    message = answers[0]
    assert "200" in message and "already" in message
    assert re.findall(r"\d+", message) == ["200"], message  # no running total, no amount
    # A tier over the cap says the same.
    tier = post(service, {**PLEDGE, "tier": "cornerstone", "email": "ADA@example.org"})
    assert tier.status_code == 422 and re.findall(r"\d+", tier.json()["error"]) == ["200"]


# -- 7: confirming takes the pledge's own secret ------------------------------------------


def test_confirm_needs_the_pledges_own_secret_and_says_nothing_otherwise(
    service: TestClient, stripe_env: dict[str, str]
) -> None:
    mine = post(service, PLEDGE).json()
    other = post(service, {**PLEDGE, "email": "grace@example.org"}).json()
    save_card(stripe_env, mine["client_secret"])
    pid = mine["pledge_id"]
    unknown = service.post("/api/pledges/999999/confirm", json={"confirm_token": "x"})
    assert unknown.status_code == 404
    attempts = [
        service.post(f"/api/pledges/{pid}/confirm"),  # no body at all
        service.post(f"/api/pledges/{pid}/confirm", json={}),
        service.post(f"/api/pledges/{pid}/confirm", json={"confirm_token": "guess"}),
        service.post(f"/api/pledges/{pid}/confirm", json={"confirm_token": other["confirm_token"]}),
        service.post(f"/api/pledges/{pid}/confirm", json={"confirm_token": mine["client_secret"]}),
        service.post(f"/api/pledges/{pid}/confirm", json={"confirm_token": ["é"] * 3}),
        service.post(
            f"/api/pledges/{pid}/confirm",
            content=as_json({"confirm_token": "\udc80é"}),
            headers={"content-type": "application/json"},
        ),
        service.post(
            f"/api/pledges/{pid}/confirm",
            content=b"\xff\xfe not json",
            headers={"content-type": "text/plain"},
        ),
        service.post("/api/pledges/999999/confirm", json={"confirm_token": mine["confirm_token"]}),
    ]
    for answer in attempts:
        assert (answer.status_code, answer.content) == (404, unknown.content), answer.text
    assert "status" not in unknown.text and "authorized" not in unknown.text
    # Refused calls changed nothing: the card is saved at Stripe, the ledger still pending.
    assert rows_by_id(service)[pid].status == "pending"
    done = confirm(service, mine)
    assert done.status_code == 200 and done.json()["status"] == "authorized"


def rows_by_id(client: TestClient) -> dict[int, Any]:
    settings = client.app.state.service.settings  # type: ignore[attr-defined]
    return {r.id: r for r in rows(settings.database_url, schema.pledges)}


# -- 8: links come from configuration, and other hosts are refused -------------------------


def test_the_service_refuses_to_start_without_its_public_address(
    campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> None:
    env = {k: v for k, v in stripe_env.items() if k != "PLEDGE_API"}
    with pytest.raises(SettingsError) as refused:
        make_settings(campaign_dir, sqlite_url, env)
    assert "PLEDGE_API" in str(refused.value) or any(
        p.where == "PLEDGE_API" for p in refused.value.problems
    )


def test_a_request_for_another_host_is_refused_and_writes_nothing(
    service: TestClient, stripe_env: dict[str, str], sqlite_url: str
) -> None:
    evil = {"Host": "evil.example"}
    created = post(service, PLEDGE, **evil)
    assert created.status_code == 400, created.text
    assert created.json()["field"] == "Host"
    assert rows(sqlite_url, schema.pledges) == []
    # A pledge made the right way, then confirmed through a forged host: refused too.
    mine = post(service, PLEDGE).json()
    save_card(stripe_env, mine["client_secret"])
    forged = service.post(
        f"/api/pledges/{mine['pledge_id']}/confirm",
        json={"confirm_token": mine["confirm_token"]},
        headers=evil,
    )
    assert forged.status_code == 400 and forged.json()["field"] == "Host"
    assert rows(sqlite_url, schema.outbox) == []
    assert service.get("/api/campaign", headers={"Host": "evil.example:80"}).status_code == 400
    # Through the right host, the mail's link points at PLEDGE_API only.
    assert confirm(service, mine).json()["status"] == "authorized"
    mails = rows(sqlite_url, schema.outbox)
    assert len(mails) == 1
    link = json.loads(mails[0].data)["manage_url"]
    assert link.startswith(stripe_env["PLEDGE_API"] + "/manage/")
    assert mine["manage_url"].startswith(stripe_env["PLEDGE_API"] + "/manage/")


def test_a_host_header_never_reaches_a_link(
    campaign_dir: Path, small_goal: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> None:
    """PLEDGE_API names the public address; the host the request names is ignored."""
    env = {**stripe_env, "PLEDGE_API": "https://pledge.hearth.example"}
    settings = make_settings(campaign_dir, sqlite_url, env)
    with TestClient(create_app(settings), base_url="https://pledge.hearth.example") as client:
        body = post(client, PLEDGE).json()
        assert body["manage_url"].startswith("https://pledge.hearth.example/manage/")
        assert post(client, PLEDGE, Host="testserver").status_code == 400


def test_serve_on_loopback_is_its_own_address_and_elsewhere_needs_pledge_api(
    small_goal: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    sqlite_cli: Cli,
    tmp_path: Path,
) -> None:
    env = {k: v for k, v in stripe_env.items() if k != "PLEDGE_API"}
    server = Served(
        campaign_dir / "campaign.toml", sqlite_url, env, tmp_path / "s.log", pledge_api=False
    )
    try:
        made = httpx.post(server.url + "/api/pledges", json=PLEDGE, timeout=20)
        assert made.status_code == 201, made.text
        assert made.json()["manage_url"].startswith(f"{server.url}/manage/")
        evil = httpx.post(
            server.url + "/api/pledges", json=PLEDGE, headers={"Host": "evil.example"}, timeout=20
        )
        assert evil.status_code == 400 and evil.json()["field"] == "Host"
    finally:
        server.stop()
    # On every interface, the public address cannot be guessed: it must be given.
    refused = sqlite_cli("serve", "--host", "0.0.0.0", env={**env, "PLEDGE_API": ""})
    assert refused.exit_code != 0 and "PLEDGE_API" in refused.output
    assert "Traceback" not in refused.output


# -- 12: bad requests get a 4xx, never a traceback ----------------------------------------


@pytest.fixture
def lenient(
    small_goal: Path, campaign_dir: Path, sqlite_url: str, stripe_env: dict[str, str]
) -> Iterator[TestClient]:
    """The service, answering what it would answer a stranger (no exception re-raised)."""
    settings = replace(make_settings(campaign_dir, sqlite_url, stripe_env), pledges_per_minute=6000)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


def as_json(body: Any) -> bytes:
    return json.dumps(body).encode()  # ensure_ascii: a lone surrogate goes as \udXXX


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 16000,
        b'{"name": ' + b"[" * 8000 + b"]" * 8000 + b"}",
        b'{"tier": "neighbour", "address": ' + b'{"a":' * 2500 + b"1" + b"}" * 2500 + b"}",
    ],
    ids=["16000-open", "8000-deep-name", "2500-deep-objects"],
)
def test_deeply_nested_json_is_a_400(
    lenient: TestClient, caplog: pytest.LogCaptureFixture, raw: bytes, sqlite_url: str
) -> None:
    answer = lenient.post("/api/pledges", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 400, answer.text
    assert answer.json()["field"] == "body"
    assert tracebacks(caplog) == []
    assert rows(sqlite_url, schema.pledges) == []


@pytest.mark.parametrize(
    "field", ["name", "address", "display_name", "email", "tier", "round", "\ud800"]
)
def test_a_lone_surrogate_in_any_text_field_is_a_400(
    lenient: TestClient, caplog: pytest.LogCaptureFixture, field: str, sqlite_url: str
) -> None:
    body: dict[str, Any] = {**PLEDGE}
    if field == "\ud800":
        body[field] = "x"  # as a key
    elif field == "email":
        body[field] = "ada\ud800@example.org"
    else:
        body[field] = "Ada \ud800 Lovelace" if field != "tier" else "neighbour\udfff"
    answer = lenient.post(
        "/api/pledges", content=as_json(body), headers={"content-type": "application/json"}
    )
    assert answer.status_code == 400, answer.text
    data = answer.json()
    assert data["field"] in (field, "body") if field != "\ud800" else data["field"] == "body"
    assert tracebacks(caplog) == []
    assert rows(sqlite_url, schema.pledges) == []


@pytest.mark.parametrize(
    "path",
    [
        "/api/manage/é.é",
        "/api/manage/%C3%A9abc.%F0%9F%98%80",
        "/manage/caf%C3%A9.x",
        "/api/manage/%E2%80%8Babc.def/cancel",
        "/manage/%C3%A9/cancel",
        "/api/manage/%C3%A9/fix",
    ],
)
def test_a_non_ascii_private_link_token_is_not_valid(
    lenient: TestClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    method = "POST" if path.endswith(("/cancel", "/fix")) else "GET"
    answer = lenient.request(method, path)
    assert answer.status_code == 403, answer.text
    if path.startswith("/api/"):
        assert answer.json()["field"] == "token"
    else:
        assert "This link does not work" in answer.text
    assert tracebacks(caplog) == []


def test_the_same_idempotency_key_with_another_body_is_a_422(
    service: TestClient, sqlite_url: str
) -> None:
    key = {"Idempotency-Key": "form-1"}
    first = post(service, PLEDGE, **key)
    assert first.status_code == 201
    for changed in (
        {"name": "Eve Mallory"},
        {"address": "2 Low Street"},
        {"display_name": "Eve"},
        {"tier": "founder"},
        {"round": "crowd", "tier": None, "shares": 4},
    ):
        answer = post(service, {**PLEDGE, **changed}, **key)
        assert answer.status_code == 422, (changed, answer.text)
        assert answer.json()["field"] == "Idempotency-Key"
        assert "pledge_id" not in answer.json() and "client_secret" not in answer.json()
    # The same body again is still the same pledge, and nothing else was written.
    again = post(service, PLEDGE, **key)
    assert again.status_code == 200 and again.json()["pledge_id"] == first.json()["pledge_id"]
    (row,) = rows(sqlite_url, schema.pledges)
    assert (row.name, row.address, row.tier) == (
        "Ada Lovelace",
        "1 High Street, London",
        "neighbour",
    )


# -- 12, against `fundraiser serve` as a process: its log, its HTTP limits ----------------


@pytest.fixture
def served(
    small_goal: Path,
    campaign_dir: Path,
    sqlite_url: str,
    stripe_env: dict[str, str],
    tmp_path: Path,
) -> Iterator[Served]:
    server = Served(campaign_dir / "campaign.toml", sqlite_url, stripe_env, tmp_path / "serve.log")
    yield server
    server.stop()


def raw_exchange(port: int, request: bytes, *, read: bool = True) -> bytes:
    """Send raw bytes over one connection; what came back (empty if the server hung up)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(request)
        if not read:
            return b""
        answer = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
        return answer


def test_headers_over_a_sane_size_are_refused_by_serve(served: Served) -> None:
    big = b"a" * (2 * 1024 * 1024)
    request = (
        f"GET /api/campaign HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n".encode()
        + b"X-Padding: "
        + big
        + b"\r\nConnection: close\r\n\r\n"
    )
    answer = raw_exchange(served.port, request)
    status = answer.split(b"\r\n", 1)[0]
    assert status.startswith(b"HTTP/1.1 4"), status  # 400 or 431, not served
    # Many headers, each small, add up the same way.
    many = b"".join(b"X-H%d: %s\r\n" % (n, b"b" * 1000) for n in range(200))
    request = (
        f"GET /api/campaign HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n".encode()
        + many
        + b"Connection: close\r\n\r\n"
    )
    assert raw_exchange(served.port, request).split(b"\r\n", 1)[0].startswith(b"HTTP/1.1 4")
    # A normal request still works, and nothing in the log is a traceback.
    ok = httpx.get(served.url + "/api/campaign", timeout=10)
    assert ok.status_code == 200
    assert "Traceback" not in served.text()


def test_a_head_trickled_past_the_limit_is_refused_by_serve(served: Served) -> None:
    # Each piece its own read: the head is counted as it arrives, not when it ends.
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(f"GET /api/campaign HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n".encode())
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            for n in range(200):  # 200 KB, well past the 32 KB limit, never ending
                sock.sendall(b"X-Pad-%d: %s\r\n" % (n, b"p" * 1000))
                time.sleep(0.002)
        answer = b""
        with contextlib.suppress(ConnectionResetError, TimeoutError):
            while chunk := sock.recv(65536):
                answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    assert answer.endswith(b"Request head too large."), answer[-100:]
    text = served.wait_for_log("too large")
    assert text.count("Request head too large") == 1 and "Traceback" not in text, text


def test_a_body_longer_than_the_head_limit_reaches_the_service(served: Served) -> None:
    # A big webhook body sent at once, then a second request on the same connection:
    # the service answers both itself (its JSON), none is taken for a long head.
    body = json.dumps({"id": "evt_big", "padding": "x" * 200_000}).encode()
    head = (
        f"POST /api/stripe/webhook HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Stripe-Signature: t=1,v1=00\r\n\r\n"
    ).encode()
    second = f"GET /api/campaign HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
    second += "Connection: close\r\n\r\n"
    answer = raw_exchange(served.port, head + body + second.encode())
    first, _, rest = answer.partition(b"\r\n")
    assert first == b"HTTP/1.1 400 Bad Request", answer[:200]
    assert b'"field":"Stripe-Signature"' in rest.replace(b" ", b"")
    assert b"HTTP/1.1 200 OK" in rest and b'"goal":' in rest, rest[-300:]
    assert "too large" not in served.text()


def test_many_requests_on_one_connection_are_not_taken_for_one_long_head(
    served: Served,
) -> None:
    # 60 requests of over 1 KB each on one kept-alive connection: 70 KB, twice the head
    # limit, every one of them answered by the service itself.
    body = json.dumps({"id": "evt_one", "padding": "x" * 1000}).encode()
    with httpx.Client(base_url=served.url, timeout=10) as client:
        for _ in range(60):
            answer = client.post(
                "/api/stripe/webhook",
                content=body,
                headers={"content-type": "application/json", "stripe-signature": "t=1,v1=00"},
            )
            assert answer.status_code == 400 and answer.json()["field"] == "Stripe-Signature"
    assert "too large" not in served.text()


def test_a_client_that_leaves_mid_upload_costs_one_log_line(served: Served) -> None:
    head = (
        f"POST /api/pledges HTTP/1.1\r\nHost: 127.0.0.1:{served.port}\r\n"
        "Content-Type: application/json\r\nContent-Length: 9000\r\n\r\n"
    ).encode()
    for _ in range(3):
        raw_exchange(served.port, head + b'{"name": "Ada', read=False)
    # All three logged (waited for: on a loaded machine the last may come late).
    text = served.wait_for_count("went away", 3)
    assert "Traceback" not in text, text
    assert text.count("went away") == 3, text
    assert httpx.get(served.url + "/api/campaign", timeout=10).status_code == 200


class StoppablePostgres(PostgresServer):
    """A PostgreSQL server of this test's own, to stop and start again."""

    def pg_ctl(self, *args: str) -> None:
        data = str(self.dir / "data")
        self._run(str(PG_BIN / "pg_ctl"), "-D", data, "-l", str(self.dir / "log"), *args)

    def halt(self) -> None:
        # Fast, not immediate: the session's servers run with synchronous_commit and
        # fsync off for speed, so an immediate stop may lose the last commits (the
        # tables themselves, seen as "relation pledges does not exist" after the restart).
        self.pg_ctl("-m", "fast", "stop")

    def resume(self) -> None:
        self.pg_ctl(
            "-w", "-o", f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1", "start"
        )


@pytest.fixture
def own_postgres() -> Iterator[StoppablePostgres]:
    if not (PG_BIN / "initdb").exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL binaries not found under {PG_BIN}")
        pytest.skip("PostgreSQL 15 binaries not installed")
    server = StoppablePostgres()
    server.start()
    yield server
    try:
        server.stop()
    except subprocess.CalledProcessError:  # halted by the test and left so
        shutil.rmtree(server.dir, ignore_errors=True)


@pytest.mark.postgres
def test_the_database_down_is_a_503_with_retry_after_and_one_log_line(
    small_goal: Path,
    campaign_dir: Path,
    stripe_env: dict[str, str],
    own_postgres: StoppablePostgres,
    tmp_path: Path,
) -> None:
    url = own_postgres.new_database()
    server = Served(campaign_dir / "campaign.toml", url, stripe_env, tmp_path / "serve.log")
    try:
        api = httpx.Client(base_url=server.url, timeout=20)
        first = api.post("/api/pledges", json=PLEDGE)
        assert first.status_code == 201, first.text
        body = first.json()
        token = body["manage_url"].rsplit("/", 1)[1]
        webhook = json.dumps(
            {
                "id": "evt_db_down",
                "object": "event",
                "type": "payment_intent.succeeded",
                "created": int(time.time()),
                "livemode": False,
                "data": {"object": {"id": "pi_x", "object": "payment_intent", "metadata": {}}},
            }
        ).encode()
        own_postgres.halt()
        calls = [
            ("GET", "/api/campaign", {}),
            ("POST", "/api/pledges", {"json": {**PLEDGE, "email": "grace@example.org"}}),
            ("POST", f"/api/pledges/{body['pledge_id']}/confirm", {"json": confirm_body(body)}),
            ("GET", f"/api/manage/{token}", {}),
            ("POST", f"/api/manage/{token}/cancel", {}),
            (
                "POST",
                "/api/stripe/webhook",
                {
                    "content": webhook,
                    "headers": {
                        "content-type": "application/json",
                        "stripe-signature": signature_header(
                            webhook, stripe_fixtures.WEBHOOK_SECRET
                        ),
                    },
                },
            ),
        ]
        for method, path, options in calls * 3:
            answer = api.request(method, path, **options)
            assert answer.status_code == 503, (path, answer.text)
            assert int(answer.headers["retry-after"]) > 0
            assert "error" in answer.json()
        page = api.get(f"/manage/{token}")
        assert page.status_code == 503 and int(page.headers["retry-after"]) > 0
        assert "Your pledge is safe" in page.text and "try again" in page.text
        cancel = api.post(f"/manage/{token}/cancel")
        assert cancel.status_code == 503 and "Nothing was changed" in cancel.text
        text = server.text()
        assert "Traceback" not in text, text
        lines = [line for line in text.splitlines() if "database" in line.lower()]
        assert len(lines) == len(calls) * 3 + 2, text
        # Back up: the same service answers again without a restart.
        own_postgres.resume()
        again = api.post("/api/pledges", json={**PLEDGE, "email": "grace@example.org"})
        assert again.status_code == 201, again.text
        assert "Traceback" not in server.text()
    finally:
        server.stop()


def confirm_body(body: dict[str, Any]) -> dict[str, Any]:
    return {"confirm_token": body.get("confirm_token", "")}
