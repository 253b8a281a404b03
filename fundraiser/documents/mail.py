"""Outbox messages rendered to mail: Markdown + Jinja2 -> a text and an HTML part.

Each kind of message has a template `mail/<kind>.md`:

    Subject line, with {{ jinja }}
    ---
    The body in Markdown, with {{ jinja }}.

The text part is the rendered Markdown itself (Markdown reads well as plain
text). The HTML part renders the same template again, but every `{{ value }}`
is first put in as a placeholder: Markdown converts the template's own text,
then each placeholder is replaced by its value, HTML-escaped. So a value (a
backer's name, address or email, and equally our own figures) is always text:
`[Verify](http://...)`, `![x](...)`, `**bold**` or `<img>` in a name shows as
typed, and can never become a link, an image or markup in the co-op's mail.
(Escaping the values for Markdown instead would depend on knowing every
construct Markdown and its extensions recognise; a placeholder depends on none.)

What each template gets: `coop`, `campaign`, `bank`, `to_name`, `to_email`,
`kind`, `data` (the outbox row's JSON), `member` (when the message names a
member: number, name, shares, paid, admitted_on) and `pledge` (when it names a
pledge: id, amount, paid, refunded, status, reference, fix_until,
transfer_reference, and what kind of backer this is, from the named groups in
fundraiser/pledges.py: `by_bank` (recorded by hand, paid by transfer),
`paid_in` (money received and held), `card_saved`, `card_unfinished`, `ended`).
Templates test those, never raw status or source strings.

The words are the kit's catalogs' in the campaign's language (fundraiser.i18n):
`{% trans %}` blocks, whose values go through the placeholders above like any
other value, while the words around them are Markdown like the template's own
text. Money and dates are formatted in the campaign's locale
(fundraiser.formatting), and `status_word` and `decline_reason` say a pledge's
status and a card's decline in words.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import markdown as markdown_lib  # type: ignore[import-untyped,unused-ignore]
import sqlalchemy as sa
from jinja2 import (
    Environment,
    FileSystemLoader,
    StrictUndefined,
    TemplateError,
    TemplateNotFound,
)
from markupsafe import Markup
from sqlalchemy.engine import Connection

from fundraiser import i18n
from fundraiser.acknowledge import transfer_reference
from fundraiser.bank import instructions
from fundraiser.bankfiles import epc
from fundraiser.config import Campaign
from fundraiser.documents import DocumentError, MailSettingsError, template_dirs
from fundraiser.documents.markup import SLOTS, Slots, hold, html_gettext
from fundraiser.documents.mime import display_name, one_line, wire_message
from fundraiser.errors import NotFound
from fundraiser.formatting import local_date, money
from fundraiser.i18n import N_
from fundraiser.ledger import schema
from fundraiser.money import Money
from fundraiser.people import check_email
from fundraiser.pledges import BY_HAND, ENDED_UNPAID, HELD, Source, Status
from fundraiser.register import holdings


@dataclass(frozen=True)
class OutboxRow:
    id: int
    kind: str
    dedupe_key: str
    to_email: str
    to_name: str
    data: dict[str, Any]
    pledge_id: int | None
    member_number: int | None
    status: str
    attempts: int
    next_attempt_at: str | None
    last_error: str | None
    sent_at: str | None
    message_id: str | None
    created_at: str

    @classmethod
    def from_row(cls, row: Any) -> OutboxRow:
        try:
            data = json.loads(row.data) if row.data else {}
        except ValueError:
            data = {}
        return cls(
            id=row.id,
            kind=row.kind,
            dedupe_key=row.dedupe_key,
            to_email=row.to_email,
            to_name=row.to_name,
            data=data if isinstance(data, dict) else {},
            pledge_id=row.pledge_id,
            member_number=row.member_number,
            status=row.status,
            attempts=int(row.attempts or 0),
            next_attempt_at=row.next_attempt_at,
            last_error=row.last_error,
            sent_at=row.sent_at,
            message_id=row.message_id,
            created_at=row.created_at,
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "to_email": self.to_email,
            "to_name": self.to_name,
            "pledge_id": self.pledge_id,
            "member_number": self.member_number,
            "status": self.status,
            "attempts": self.attempts,
            "next_attempt_at": self.next_attempt_at,
            "last_error": self.last_error,
            "sent_at": self.sent_at,
            "message_id": self.message_id,
            "created_at": self.created_at,
        }


def get_row(conn: Connection, message_id: int) -> OutboxRow:
    row = conn.execute(sa.select(schema.outbox).where(schema.outbox.c.id == message_id)).first()
    if row is None:
        raise NotFound(f"message {message_id} does not exist: see `fundraiser mail list`")
    return OutboxRow.from_row(row)


def list_rows(conn: Connection, status: str | None = None, limit: int = 100) -> list[OutboxRow]:
    query = sa.select(schema.outbox).order_by(schema.outbox.c.id.desc()).limit(limit)
    if status:
        query = query.where(schema.outbox.c.status == status)
    return [OutboxRow.from_row(r) for r in conn.execute(query)]


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str
    #: Files the mail itself makes (a payment QR code), attached after any PDFs.
    files: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Sender:
    """Who the mail comes from: MAIL_FROM, or the co-op's contact address."""

    address: str
    name: str

    @classmethod
    def for_campaign(cls, campaign: Campaign, mail_from: str | None) -> Sender:
        address = (mail_from or campaign.coop.contact_email or "").strip()
        if not address:
            raise MailSettingsError(
                "no sender address: set MAIL_FROM (e.g. members@your-coop.org) "
                "or coop.contact_email in campaign.toml"
            )
        if not check_email(address):
            raise MailSettingsError(
                f"MAIL_FROM {address!r} is not an email address: write it as name@example.org"
            )
        return cls(address, campaign.coop.name)

    @property
    def domain(self) -> str:
        return self.address.rsplit("@", 1)[1]


@dataclass
class Attachment:
    filename: str
    path: Path

    def read(self) -> bytes:
        return self.path.read_bytes()


@dataclass
class Outgoing:
    """A message ready for SMTP (CRLF line ends), plus what it was made from."""

    row: OutboxRow
    data: bytes
    rendered: Rendered
    attachments: list[Attachment] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)  # as shown, before encoding

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.data, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def message_id_for(row: OutboxRow, domain: str) -> str:
    """Deterministic Message-ID: a resend after a crash is recognisably the same mail."""
    digest = hashlib.sha256(row.dedupe_key.encode("utf-8")).hexdigest()[:16]
    return f"<outbox.{row.id}.{digest}@{domain}>"


def _split(source: str, template: str) -> tuple[str, str]:
    head, sep, body = source.partition("\n---\n")
    if not sep:
        raise DocumentError(
            f"the template {template} has no subject line: start it with the subject, "
            "then a line with --- , then the body"
        )
    subject = " ".join(head.split())
    if not subject:
        raise DocumentError(f"the template {template} renders an empty subject")
    return subject, body.strip() + "\n"


#: The EPC payment QR code's file in a pledge mail to someone paying by bank.
PAYCODE_FILE = "pay-by-bank-qr.png"


#: A pledge's status as a backer reads it ("This pledge is no longer open (lapsed)").
STATUS_WORDS: dict[str, str] = {
    Status.PENDING: N_("not complete"),
    Status.AUTHORIZED: N_("card saved"),
    Status.PROCESSING: N_("payment in progress"),
    Status.PAID: N_("paid"),
    Status.PAYMENT_FAILED: N_("payment failed"),
    Status.FAILED: N_("lapsed"),
    Status.CANCELLED: N_("cancelled"),
    Status.RELEASED: N_("released"),
    Status.REFUNDED: N_("refunded"),
    Status.DISPUTED: N_("disputed"),
}

#: Stripe's commonest reasons for a declined card (its decline codes), in words.
DECLINE_WORDS: dict[str, str] = {
    "card_declined": N_("card declined"),
    "generic_decline": N_("card declined"),
    "insufficient_funds": N_("insufficient funds"),
    "expired_card": N_("expired card"),
    "incorrect_cvc": N_("incorrect security code"),
    "incorrect_number": N_("incorrect card number"),
    "lost_card": N_("card reported lost"),
    "stolen_card": N_("card reported stolen"),
    "do_not_honor": N_("declined by your bank"),
    "processing_error": N_("processing error"),
    "authentication_required": N_("your bank asked you to confirm the payment"),
}


def status_word(words: i18n.Language, status: str) -> str:
    """A status in words; one we do not know is shown as it is, spaced."""
    known = STATUS_WORDS.get(status)
    return words.gettext(known) if known else status.replace("_", " ")


def decline_reason(words: i18n.Language, code: str) -> str:
    """Stripe's decline code in words ('insufficient_funds'); others as they are, spaced."""
    known = DECLINE_WORDS.get(code)
    return words.gettext(known) if known else code.replace("_", " ")


class MailRenderer:
    """Renders outbox rows for one campaign; templates are loaded once."""

    def __init__(self, campaign: Campaign) -> None:
        self.campaign = campaign
        loader = FileSystemLoader([str(d) for d in template_dirs(campaign.directory)])
        common: dict[str, Any] = {
            "loader": loader,
            "undefined": StrictUndefined,
            "keep_trailing_newline": True,
        }
        self.text_env = Environment(autoescape=False, **common)
        # The body's HTML: values held back from Markdown (see Slots).
        self.html_env = Environment(autoescape=True, finalize=hold, **common)
        # The layout is HTML already: plain autoescaping is all it needs.
        self.page_env = Environment(autoescape=True, **common)
        #: The campaign's language: the mails' words, money and dates.
        self.language = words = i18n.for_campaign(campaign)
        self.locale = locale = words.locale
        zone = campaign.campaign.timezone
        i18n.install(self.text_env, words.translations)
        i18n.install(self.page_env, words.translations)
        i18n.install_callables(self.html_env, *html_gettext(words))
        for env in (self.text_env, self.html_env, self.page_env):
            env.filters["money"] = partial(money, locale=locale)
            env.filters["long_date"] = partial(local_date, zone=zone, locale=locale)
            env.globals["status_word"] = partial(status_word, words)
            env.globals["decline_reason"] = partial(decline_reason, words)
            env.globals["language"] = words.tag
        self._members: dict[int, dict[str, Any]] = {}
        self.md = markdown_lib.Markdown(extensions=["sane_lists"], output_format="html")
        coop = campaign.coop
        self.base: dict[str, Any] = {
            "coop": {
                "name": coop.name,
                "legal_form": coop.legal_form,
                "jurisdiction": coop.jurisdiction,
                "registration_number": coop.registration_number,
                "website": coop.website,
                "contact_email": coop.contact_email,
                "certificates": coop.certificates,
            },
            "campaign": {
                "currency": campaign.currency,
                "goal": money(campaign.campaign.goal, locale=locale),
                # The day it closes where the co-op is (templates: `| long_date`).
                "deadline": campaign.campaign.deadline.astimezone(ZoneInfo(zone))
                .date()
                .isoformat(),
                "share_price": money(campaign.shares.price, locale=locale),
                "mode": campaign.campaign.mode.value,
            },
            "bank": None
            if campaign.bank is None
            else {"account_name": campaign.bank.account_name, "details": campaign.bank.details},
        }

    def prefetch(self, conn: Connection, rows: list[OutboxRow]) -> None:
        """Load the members a batch of messages names in one query, not two each."""
        numbers = sorted({r.member_number for r in rows if r.member_number is not None})
        self._members = (
            _members(conn, numbers, self.campaign.currency, self.locale) if numbers else {}
        )

    def context(self, conn: Connection, row: OutboxRow) -> dict[str, Any]:
        number = row.member_number
        if number is None:
            member = None
        elif number in self._members:
            member = self._members[number]
        else:
            member = _members(conn, [number], self.campaign.currency, self.locale).get(number)
        ctx = dict(self.base)
        pledge = _pledge(conn, row.pledge_id, self.locale)
        transfer = None
        if pledge and pledge["by_bank"] and not (pledge["paid_in"] or pledge["ended"]):
            transfer = instructions.for_pledge(self.campaign.bank, pledge["id"], pledge["due"])
        ctx.update(
            kind=row.kind,
            to_name=row.to_name,
            to_email=row.to_email,
            data=row.data,
            member=member,
            pledge=pledge,
            transfer=transfer,
            # The payment QR code is attached to the mail that gives the bank details.
            paycode=epc.for_transfer(transfer) if transfer else None,
        )
        return ctx

    def render(self, conn: Connection, row: OutboxRow) -> Rendered:
        name = f"mail/{row.kind}.md"
        ctx = self.context(conn, row)
        try:
            text = self.text_env.get_template(name).render(ctx)
            slots = Slots()
            held = self.html_env.get_template(name).render(ctx, **{SLOTS: slots})
            subject, body = _split(text, name)
            _, html_body = _split(held, name)
            self.md.reset()
            inner = Markup(slots.fill(self.md.convert(html_body)))
            html = self.page_env.get_template("mail/layout.html").render(
                ctx, subject=subject, body=inner
            )
        except TemplateNotFound as exc:
            raise DocumentError(
                f"no mail template for {row.kind!r} messages: add templates/documents/{exc.name}"
            ) from None
        except TemplateError as exc:
            raise DocumentError(f"the mail template {name} failed: {exc}") from None
        code = ctx["paycode"]
        files = ((PAYCODE_FILE, epc.png(code)),) if code else ()
        return Rendered(subject, body, html, files)

    def build(
        self,
        conn: Connection,
        row: OutboxRow,
        sender: Sender,
        *,
        attachments: list[Attachment] | None = None,
        when: datetime | None = None,
    ) -> Outgoing:
        """The message as SMTP carries it: text and HTML alternatives, then any PDFs."""
        rendered = self.render(conn, row)
        headers = {
            "From": formataddr((display_name(sender.name), sender.address)),
            "To": formataddr((display_name(row.to_name), row.to_email)),
            "Subject": one_line(rendered.subject),
            "Message-ID": message_id_for(row, sender.domain),
        }
        if when is not None:
            headers["Date"] = format_datetime(when)
        contact = self.campaign.coop.contact_email
        if contact and contact != sender.address:
            headers["Reply-To"] = contact
        headers["Auto-Submitted"] = "auto-generated"
        files = [(item.filename, item.read()) for item in attachments or []]
        files += rendered.files
        data = wire_message(headers, rendered.text, rendered.html, files, boundary=f"=_fr{row.id}")
        return Outgoing(row, data, rendered, list(attachments or []), headers)


def _members(
    conn: Connection, numbers: list[int], currency: str, locale: str
) -> dict[int, dict[str, Any]]:
    return {
        h.number: {
            "number": h.number,
            "name": h.name,
            "shares": h.shares,
            "paid": money(h.paid.amount, currency, locale=locale),
            "admitted_on": local_date(h.admitted_on, locale=locale),
            "ceased_on": local_date(h.ceased_on, locale=locale) if h.ceased_on else None,
        }
        for h in holdings(conn, currency, numbers)
    }


def _pledge(conn: Connection, pledge_id: int | None, locale: str) -> dict[str, Any] | None:
    if pledge_id is None:
        return None
    row = conn.execute(sa.select(schema.pledges).where(schema.pledges.c.id == pledge_id)).first()
    if row is None:
        return None
    cur = row.currency
    status, by_bank = Status(row.status), Source(row.source) in BY_HAND
    return {
        "id": row.id,
        "amount": money(int(row.amount), cur, locale=locale),
        # What is still to pay (a transfer that fell short waits for the rest).
        "due": Money(max(int(row.amount) - int(row.paid_amount), 0), cur),
        "paid": money(int(row.paid_amount), cur, locale=locale),
        "refunded": money(int(row.refunded_amount), cur, locale=locale),
        "status": row.status,
        "source": row.source,
        "reference": row.reference,
        "round": row.round,
        "fix_until": row.fix_until,
        "transfer_reference": transfer_reference(row.id),
        # What kind of backer this is, for the wording: the named groups, not raw strings.
        "by_bank": by_bank,
        "paid_in": status in HELD,
        "card_saved": not by_bank and status in (Status.AUTHORIZED, Status.PROCESSING),
        "card_unfinished": not by_bank and status is Status.PENDING,
        "ended": status in ENDED_UNPAID or status is Status.REFUNDED,
    }
