"""One hierarchy of expected failures. The CLI converts them once, at the edge.

This module never imports click: the service and the site build use it too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is, what is wrong, how to fix it."""

    where: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        """'email: 'x' is not an email address. Write it as name@example.org': the fix is
        a sentence of its own, so it starts with a capital after the full stop."""
        text = f"{self.where}: {self.message}"
        if not self.fix:
            return text
        return f"{text.rstrip('.')}. {self.fix[:1].upper()}{self.fix[1:]}"

    def as_dict(self) -> dict[str, str]:
        return {"where": self.where, "message": self.message, "fix": self.fix}


class FundraiserError(Exception):
    """Base of every failure the tool expects and explains."""

    #: True when the person running the command gave bad input (exit code 2).
    user_error = False


class UserInputError(FundraiserError):
    """The input was wrong; nothing was changed."""

    user_error = True


class ProblemsError(UserInputError):
    """Many problems found at once (a config, a CSV import); each is listed."""

    def __init__(self, summary: str, problems: list[Problem]) -> None:
        self.summary = summary
        self.problems = problems
        lines = [summary, *(f"  - {p}" for p in problems)]
        super().__init__("\n".join(lines))


class ConfigError(ProblemsError):
    """campaign.toml is missing or wrong."""


class ImportRejected(ProblemsError):
    """A CSV import had bad rows; nothing was written."""


class NotConfigured(UserInputError):
    """A setting the command needs is missing from the environment (a key, an address)."""


class MoneyError(UserInputError):
    """An amount or currency that cannot be money."""


class CurrencyMismatch(FundraiserError):
    """Arithmetic across two currencies: a bug or a bad mix of inputs."""


class NotFound(UserInputError):
    """A pledge, member or other record that does not exist."""


class InvalidTransition(UserInputError):
    """A pledge cannot move from its state to the one asked for."""


class Refused(FundraiserError):
    """The law or the ledger's state forbids the change; the message says why (exit 1)."""


class LedgerError(FundraiserError):
    """The ledger cannot be opened or is in an unexpected state."""


class PaymentError(FundraiserError):
    """Stripe refused or failed; keeps Stripe's request id and message."""

    def __init__(
        self, message: str, *, request_id: str | None = None, user_message: str | None = None
    ) -> None:
        self.request_id = request_id
        self.user_message = user_message
        suffix = f" (Stripe request {request_id})" if request_id else ""
        super().__init__(message + suffix)


class WebhookRejected(FundraiserError):
    """A webhook whose signature or payload we refuse."""
