"""Documents for members: share certificates (PDF) and mail.

- certificates: one PDF per issue entry, or a share-account statement per
  member when the co-op's rules issue no certificates.
- mail: outbox messages rendered from Markdown + Jinja2 templates.
- smtp: the connection to the mail server (SMTP_URL read, checked, opened).
- postman: delivers the outbox over that connection, each message once.

Templates live in fundraiser/documents/templates/; a co-op restyles them by
putting files of the same name under templates/documents/ beside campaign.toml.
"""

from __future__ import annotations

from pathlib import Path

from fundraiser.errors import FundraiserError, UserInputError

PACKAGE_TEMPLATES = Path(__file__).resolve().parent / "templates"


class DocumentError(FundraiserError):
    """A template or a document could not be made (exit 1)."""


class MailError(FundraiserError):
    """The mail server could not be reached or refused us (exit 1)."""


class MailSettingsError(UserInputError):
    """SMTP_URL or MAIL_FROM is wrong (exit 2)."""


def template_dirs(campaign_dir: Path) -> list[Path]:
    """Where templates are looked up: the co-op's own first, then ours."""
    own = campaign_dir / "templates" / "documents"
    return [own, PACKAGE_TEMPLATES] if own.is_dir() else [PACKAGE_TEMPLATES]
