"""A real SMTP server on loopback (aiosmtpd), plain or STARTTLS + AUTH, for mail tests.

Import the fixtures you use explicitly into a test module:

    from tests.smtp_fixtures import fixture_smtp_server  # noqa: F401

(each fixture function is named fixture_X and registers the fixture X, so a
test's parameter never shadows the import).

The server keeps every message it accepted, parsed, in `server.inbox`, and can
be told to refuse recipients temporarily (451) or for good (550).
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from tests.conftest import free_port

USER, PASSWORD = "coop", "s3cret-pass"


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.raw, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class Handler:
    inbox: list[Received] = field(default_factory=list)
    refuse_temporarily: set[str] = field(default_factory=set)
    refuse_permanently: set[str] = field(default_factory=set)

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address.lower() in self.refuse_temporarily:
            return "451 4.3.0 Mailbox busy, try again later"
        if address.lower() in self.refuse_permanently:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.inbox.append(Received(envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (
        data.login.decode() == USER and data.password.decode() == PASSWORD
    )
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535


@dataclass
class SmtpServer:
    port: int
    handler: Handler
    controller: Controller
    url: str
    cafile: Path | None = None

    @property
    def inbox(self) -> list[Received]:
        return self.handler.inbox

    def to(self, address: str) -> list[Received]:
        return [m for m in self.inbox if address in m.rcpt_tos]


@pytest.fixture(name="smtp_server")
def fixture_smtp_server() -> Iterator[SmtpServer]:
    """A plain SMTP server on 127.0.0.1 (no TLS, no login), like a local relay."""
    handler = Handler()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer(port, handler, controller, f"smtp://127.0.0.1:{port}")
    finally:
        controller.stop()


@pytest.fixture(name="smtp_ca", scope="session")
def fixture_smtp_ca(tmp_path_factory: pytest.TempPathFactory) -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return ca, path


@pytest.fixture(name="smtp_tls_server")
def fixture_smtp_tls_server(smtp_ca: tuple[trustme.CA, Path]) -> Iterator[SmtpServer]:
    """An SMTP submission server: STARTTLS required, then AUTH (user coop)."""
    ca, cafile = smtp_ca
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    handler = Handler()
    port = free_port()
    controller = Controller(
        handler,
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=_authenticator,
    )
    controller.start()
    url = f"smtp://{USER}:{PASSWORD}@127.0.0.1:{port}?starttls=1&cafile={cafile}"
    try:
        yield SmtpServer(port, handler, controller, url, cafile)
    finally:
        controller.stop()


# -- a small founding membership, made through the CLI ---------------------------


def pay(cli: Any, name: str, email: str, amount: str, ref: str) -> None:
    """A paid bank-transfer pledge."""
    cli.ok(
        "pledges", "add", "--name", name, "--email", email, "--address", f"{name}'s house",
        "--amount", amount, "--status", "paid", "--reference", ref,
    )  # fmt: skip


def found(cli: Any) -> None:
    """Three members: Grace (4 shares, two pledges), Alan (1), Big (200, capped)."""
    pay(cli, "Grace Hopper", "grace@example.org", "120.00", "R1")
    pay(cli, "Alan Turing", "alan@example.org", "50.00", "R2")
    pay(cli, "Grace Hopper", "GRACE@example.org", "80.00", "R3")
    pay(cli, "Big Backer", "big@example.org", "10100.00", "R4")
    cli.ok("shares", "issue")
