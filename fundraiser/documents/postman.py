"""The postman: deliver the outbox over SMTP, each message once.

The steps for every message, each state change in its own transaction:

1. claim: `queued` -> `sending`, attempts + 1, and a lease (next_attempt_at =
   now + LEASE). Claims are taken in small batches under the ledger's write
   lock, so two senders never take the same message.
2. send over one SMTP connection reused for the whole run.
3. record: `sent` with its Message-ID; or back to `queued` with a backoff after
   a temporary failure (4xx, a dropped connection); or `failed` after a
   permanent one (5xx for that recipient) or MAX_ATTEMPTS tries.

The one window for a duplicate: a crash (or a dropped connection) after the
server accepted a message and before step 3 commits. That message stays
`sending` until its lease ends, then goes again, with the same deterministic
Message-ID, so the copy is recognisable. So each message is delivered at least
once and at most twice, and never marked sent when it was not.

If the server cannot be reached or refuses us (login, sender address) before
or between messages, the run stops with MailError: no message is marked sent
that was not, and messages not yet tried go back to the queue untouched.
"""

from __future__ import annotations

import contextlib
import enum
import smtplib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from fundraiser.config import Campaign
from fundraiser.documents import DocumentError, MailError
from fundraiser.documents.mail import (
    Attachment,
    MailRenderer,
    OutboxRow,
    Outgoing,
    Sender,
    message_id_for,
)
from fundraiser.documents.printing import Documents
from fundraiser.documents.smtp import SmtpSettings, close, reason_for
from fundraiser.ledger import Ledger, schema
from fundraiser.outbox import Kind, MailStatus
from fundraiser.people import check_email

LEASE = timedelta(minutes=15)  # a `sending` message older than this is tried again
MAX_ATTEMPTS = 8
CLAIM_BATCH = 50
PREMAKE_THRESHOLD = 50  # due welcomes above which certificates are made up front


def backoff(attempts: int) -> timedelta:
    """5 min, 10, 20, ... capped at 6 hours."""
    return min(timedelta(minutes=5) * (1 << max(attempts - 1, 0)), timedelta(hours=6))


# -- outcomes of one message ---------------------------------------------------


class Outcome(enum.Enum):
    SENT = "sent"
    RETRY = "retry"  # temporary failure: back to the queue, later
    FAILED = "failed"  # permanent failure: given up
    RELEASE = "release"  # never tried: back to the queue as it was


@dataclass
class Result:
    outcome: Outcome
    error: str | None = None
    message_id: str | None = None


@dataclass
class SendReport:
    sent: int = 0
    retry: int = 0
    failed: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)
    aborted: str | None = None  # why the run stopped early
    planned: list[dict[str, Any]] = field(default_factory=list)  # dry run only

    @property
    def ok(self) -> bool:
        return not (self.retry or self.failed or self.aborted)

    def as_json(self) -> dict[str, Any]:
        return {
            "sent": self.sent,
            "retry": self.retry,
            "failed": self.failed,
            "errors": [{"id": i, "error": e} for i, e in self.errors],
            "aborted": self.aborted,
        }


class _Abort(Exception):
    """Stop the run: the server refuses us, not one message."""


def _due(now: str) -> sa.ColumnElement[bool]:
    # A `sending` message whose lease ran out was claimed by a run that died.
    return sa.and_(
        schema.outbox.c.status.in_([MailStatus.QUEUED.value, MailStatus.SENDING.value]),
        schema.outbox.c.next_attempt_at <= now,
    )


def count_due(ledger: Ledger, now: str) -> int:
    with ledger.read() as conn:
        return int(conn.execute(sa.select(sa.func.count()).where(_due(now))).scalar() or 0)


class Postman:
    """Sends due outbox messages for one campaign over one SMTP connection."""

    def __init__(
        self,
        ledger: Ledger,
        campaign: Campaign,
        sender: Sender,
        *,
        clock: Callable[[], datetime],
        documents: Documents | None = None,
        kinds: frozenset[str] | None = None,
    ) -> None:
        self.ledger = ledger
        #: Only these kinds of message (the service sends its sign-in mail at once).
        self.kinds = kinds
        self.campaign = campaign
        self.sender = sender
        self.clock = clock
        self.renderer = MailRenderer(campaign)
        self.documents = documents or Documents(campaign)

    def _now(self) -> str:
        return self._utc().isoformat(timespec="microseconds")

    def _utc(self) -> datetime:
        # The ledger stores UTC text and compares it as text: never a local offset.
        return self.clock().astimezone(UTC)

    def attachments(self, conn: Any, row: OutboxRow, *, make: bool) -> list[Attachment]:
        """The welcome mail carries the member's certificates (or statement)."""
        if row.kind != Kind.WELCOME.value or row.member_number is None:
            return []
        if make:
            paths = self.documents.ensure(conn, row.member_number)
        else:
            folder = self.documents.folder
            paths = [folder / n for n in self.documents.filenames(conn, row.member_number)]
        return [Attachment(p.name, p) for p in paths]

    def preview(self, row: OutboxRow) -> Outgoing:
        with self.ledger.read() as conn:
            # Preview never writes files: missing certificates are listed, not made.
            atts = [a for a in self.attachments(conn, row, make=False) if a.path.exists()]
            return self.renderer.build(conn, row, self.sender, attachments=atts, when=self._utc())

    def plan(self, limit: int | None = None) -> SendReport:
        """Dry run: what would be sent now, rendered to catch template errors."""
        report = SendReport()
        now = self._now()
        with self.ledger.read() as conn:
            query = sa.select(schema.outbox).where(_due(now)).order_by(schema.outbox.c.id)
            if limit:
                query = query.limit(limit)
            for raw in conn.execute(query).all():
                row = OutboxRow.from_row(raw)
                try:
                    subject = self.renderer.render(conn, row).subject
                except DocumentError as exc:
                    report.errors.append((row.id, str(exc)))
                    subject = ""
                report.planned.append(
                    {"id": row.id, "kind": row.kind, "to": row.to_email, "subject": subject}
                )
        return report

    def send(
        self,
        settings: SmtpSettings,
        *,
        limit: int | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> SendReport:
        report = SendReport()
        if self._count_due() == 0:
            return report  # nothing to do: do not even connect
        smtp = settings.connect()  # unreachable: MailError, nothing changed
        if self._premake_needed():
            # Making thousands of PDFs takes minutes: do not hold an idle connection.
            close(smtp)
            with self.ledger.read() as conn:
                self.documents.make(conn)
            smtp = settings.connect()
        try:
            while limit is None or report.sent + report.retry + report.failed < limit:
                room = CLAIM_BATCH if limit is None else min(CLAIM_BATCH, limit - _done(report))
                batch = self._claim(room)
                if not batch:
                    break
                smtp = self._send_batch(smtp, settings, batch, report, progress)
        except _Abort as stop:
            report.aborted = str(stop)
        finally:
            close(smtp)
        return report

    def _due(self, now: str) -> sa.ColumnElement[bool]:
        if self.kinds is None:
            return _due(now)
        return sa.and_(_due(now), schema.outbox.c.kind.in_(sorted(self.kinds)))

    def _count_due(self) -> int:
        with self.ledger.read() as conn:
            found = conn.execute(sa.select(sa.func.count()).where(self._due(self._now())))
            return int(found.scalar() or 0)

    def _premake_needed(self) -> bool:
        """Many welcomes due: make the certificates first, in parallel, not one by one."""
        with self.ledger.read() as conn:
            welcomes = conn.execute(
                sa.select(sa.func.count()).where(
                    self._due(self._now()), schema.outbox.c.kind == Kind.WELCOME.value
                )
            ).scalar()
        return int(welcomes or 0) >= PREMAKE_THRESHOLD

    def _claim(self, size: int) -> list[OutboxRow]:
        now = self._utc()
        with self.ledger.write(now.isoformat(timespec="microseconds")) as tx:
            stamp = tx.now
            rows = tx.execute(
                sa.select(schema.outbox)
                .where(self._due(stamp))
                .order_by(schema.outbox.c.id)
                .limit(size)
            ).all()
            if not rows:
                return []
            ids = [r.id for r in rows]
            tx.bookkeep(
                schema.outbox,
                schema.outbox.c.id.in_(ids),
                status=MailStatus.SENDING.value,
                attempts=schema.outbox.c.attempts + 1,
                next_attempt_at=(now + LEASE).isoformat(timespec="microseconds"),
            )
        # The rows as claimed: this attempt counted.
        return [replace(OutboxRow.from_row(r), attempts=int(r.attempts) + 1) for r in rows]

    def _prepare(self, batch: list[OutboxRow]) -> list[tuple[OutboxRow, bytes | Result]]:
        """Render a claimed batch in one short read (never held while we write)."""
        prepared: list[tuple[OutboxRow, bytes | Result]] = []
        with self.ledger.read() as conn:
            self.renderer.prefetch(conn, batch)
            for row in batch:
                if not check_email(row.to_email) or not row.to_email.isascii():
                    bad = Result(Outcome.FAILED, f"{row.to_email!r} is not a deliverable address")
                    prepared.append((row, bad))
                    continue
                try:
                    atts = self.attachments(conn, row, make=True)
                    outgoing = self.renderer.build(
                        conn, row, self.sender, attachments=atts, when=self._utc()
                    )
                    prepared.append((row, outgoing.data))
                except DocumentError as exc:
                    prepared.append((row, Result(Outcome.FAILED, str(exc))))
                except OSError as exc:  # the certificate folder: not this message's fault
                    raise _Abort(f"cannot write or read a certificate: {exc}") from None
        return prepared

    def _send_batch(
        self,
        smtp: smtplib.SMTP,
        settings: SmtpSettings,
        batch: list[OutboxRow],
        report: SendReport,
        progress: Callable[[int], None] | None,
    ) -> smtplib.SMTP:
        try:
            prepared = self._prepare(batch)
        except _Abort:
            self._release(batch)
            raise
        for index, (row, item) in enumerate(prepared):
            rest = [r for r, _ in prepared[index + 1 :]]
            try:
                result = item if isinstance(item, Result) else self._send_one(smtp, row, item)
            except _Abort:
                self._release([row, *rest])
                raise
            except smtplib.SMTPServerDisconnected as exc:
                # The server may have taken the message before dropping us: the
                # one at-most-twice case; it retries with the same Message-ID.
                self._record(row, Result(Outcome.RETRY, f"connection lost: {exc}"), report)
                try:
                    smtp = settings.connect()
                except MailError as again:
                    self._release(rest)
                    raise _Abort(f"lost the connection and cannot reconnect: {again}") from None
                continue
            except OSError as exc:
                self._record(
                    row, Result(Outcome.RETRY, f"network error: {reason_for(exc)}"), report
                )
                self._release(rest)
                raise _Abort(
                    f"network error talking to {settings.describe()}: {reason_for(exc)}"
                ) from None
            self._record(row, result, report)
            if progress:
                progress(1)
        return smtp

    def _send_one(self, smtp: smtplib.SMTP, row: OutboxRow, data: bytes) -> Result:
        try:
            smtp.sendmail(self.sender.address, [row.to_email], data)
        except smtplib.SMTPRecipientsRefused as exc:
            code, text = next(iter(exc.recipients.values()))
            reason = f"recipient refused: {code} {text.decode('utf-8', 'replace')}"
            _reset(smtp)
            return Result(Outcome.RETRY if 400 <= code < 500 else Outcome.FAILED, reason)
        except smtplib.SMTPSenderRefused as exc:
            _reset(smtp)
            if 400 <= exc.smtp_code < 500:
                return Result(Outcome.RETRY, f"sender deferred: {reason_for(exc)}")
            raise _Abort(
                f"the mail server refused the sender {self.sender.address} ({reason_for(exc)}): "
                "check MAIL_FROM and that the account may send as it"
            ) from None
        except smtplib.SMTPDataError as exc:
            _reset(smtp)
            outcome = Outcome.RETRY if 400 <= exc.smtp_code < 500 else Outcome.FAILED
            return Result(outcome, f"message refused: {reason_for(exc)}")
        except smtplib.SMTPResponseException as exc:
            _reset(smtp)
            outcome = Outcome.RETRY if 400 <= exc.smtp_code < 500 else Outcome.FAILED
            return Result(outcome, reason_for(exc))
        return Result(Outcome.SENT, message_id=message_id_for(row, self.sender.domain))

    def _record(self, row: OutboxRow, result: Result, report: SendReport) -> None:
        now = self._utc()
        stamp = now.isoformat(timespec="microseconds")
        values: dict[str, Any]
        if result.outcome is Outcome.RETRY and row.attempts >= MAX_ATTEMPTS:
            result = Result(Outcome.FAILED, f"gave up after {row.attempts} tries: {result.error}")
        if result.outcome is Outcome.SENT:
            values = {
                "status": MailStatus.SENT.value,
                "sent_at": stamp,
                "message_id": result.message_id,
                "last_error": None,
                "next_attempt_at": None,
            }
            report.sent += 1
        elif result.outcome is Outcome.RETRY:
            values = {
                "status": MailStatus.QUEUED.value,
                "last_error": result.error,
                "next_attempt_at": (now + backoff(row.attempts)).isoformat(timespec="microseconds"),
            }
            report.retry += 1
        else:
            values = {
                "status": MailStatus.FAILED.value,
                "last_error": result.error,
                "next_attempt_at": None,
            }
            report.failed += 1
        if result.error:
            report.errors.append((row.id, result.error))
        status = values["status"]
        sent: dict[str, Any] = {}
        if status == MailStatus.SENT.value:  # that it went, and when, is the journal's
            sent = {"status": values.pop("status"), "sent_at": values.pop("sent_at")}
        with self.ledger.write(stamp) as tx:
            # Guard on `sending`: only the run that claimed it may record it.
            claimed = tx.bookkeep(
                schema.outbox,
                sa.and_(
                    schema.outbox.c.id == row.id, schema.outbox.c.status == MailStatus.SENDING.value
                ),
                **values,
            ).rowcount
            if claimed and sent:
                tx.update(schema.outbox, {"id": row.id}, **sent)
            tx.record(
                f"mail.{status}",
                f"outbox:{row.id}",
                {"id": row.id, "kind": row.kind, "attempt": row.attempts},
            )

    def _release(self, rows: list[OutboxRow]) -> None:
        """Messages claimed but never tried go back exactly as they were."""
        if not rows:
            return
        now = self._now()
        with self.ledger.write(now) as tx:
            for row in rows:
                tx.bookkeep(
                    schema.outbox,
                    sa.and_(
                        schema.outbox.c.id == row.id,
                        schema.outbox.c.status == MailStatus.SENDING.value,
                    ),
                    status=MailStatus.QUEUED.value,
                    attempts=row.attempts - 1,
                    next_attempt_at=now,
                )


def _done(report: SendReport) -> int:
    return report.sent + report.retry + report.failed


def _reset(smtp: smtplib.SMTP) -> None:
    """After a refused transaction, RSET so the connection can carry the next one."""
    with contextlib.suppress(OSError, smtplib.SMTPException):
        smtp.rset()


def requeue(ledger: Ledger, ids: list[int] | None, *, now: str) -> int:
    """Put failed messages back in the queue (all failed ones when ids is None)."""
    with ledger.write(now) as tx:
        failed = schema.outbox.c.status == MailStatus.FAILED.value
        if ids is not None:
            failed = sa.and_(failed, schema.outbox.c.id.in_(ids))
        done = tx.bookkeep(
            schema.outbox,
            failed,
            status=MailStatus.QUEUED.value,
            attempts=0,
            next_attempt_at=now,
        ).rowcount
        if done:
            tx.record("mail.requeue", "outbox", {"count": done, "ids": ids})
        return int(done)
