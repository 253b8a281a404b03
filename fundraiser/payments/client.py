"""The Stripe SDK, configured from the environment, and its errors wrapped once.

Every write passes an idempotency key derived from our own ids: the SDK would
otherwise invent a random one per call, which a restart loses. Network retries
are off; our commands are rerun-safe instead, and decide themselves when to retry.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import stripe

from fundraiser.errors import NotConfigured, PaymentError, UserInputError

#: The settings a payments command reads from the environment.
SECRET_KEY = "STRIPE_SECRET_KEY"
API_BASE = "STRIPE_API_BASE"


class CardError(PaymentError):
    """The card was refused (declined, expired, or the bank wants the backer present)."""

    def __init__(
        self,
        message: str,
        *,
        code: str,
        charge: str | None = None,
        payment_intent: str | None = None,
        request_id: str | None = None,
        user_message: str | None = None,
    ) -> None:
        super().__init__(message, request_id=request_id, user_message=user_message)
        self.code = code
        self.charge = charge
        self.payment_intent = payment_intent


class StripeUnavailable(PaymentError):
    """Stripe could not be reached or answered 5xx/429: the outcome of a write is unknown."""


@contextmanager
def stripe_errors(what: str) -> Iterator[None]:
    """Convert stripe-python's errors into ours, keeping Stripe's request id."""
    try:
        yield
    except stripe.CardError as exc:
        error = exc.error
        raise CardError(
            f"{what}: {exc.user_message or 'the card was refused'}",
            code=str(exc.code or "card_declined"),
            charge=getattr(error, "charge", None) if error else None,
            payment_intent=_id_of(getattr(error, "payment_intent", None)) if error else None,
            request_id=exc.request_id,
            user_message=exc.user_message,
        ) from None
    except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
        raise StripeUnavailable(
            f"{what}: Stripe could not be reached ({exc.user_message or type(exc).__name__})",
            request_id=exc.request_id,
        ) from None
    except stripe.AuthenticationError as exc:
        raise PaymentError(
            f"{what}: Stripe refused the API key: check STRIPE_SECRET_KEY",
            request_id=exc.request_id,
        ) from None
    except stripe.StripeError as exc:
        status = exc.http_status or 0
        kind = StripeUnavailable if status >= 500 else PaymentError
        raise kind(
            f"{what}: {exc.user_message or str(exc) or type(exc).__name__}",
            request_id=exc.request_id,
            user_message=exc.user_message,
        ) from None


def _id_of(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return str(getattr(value, "id", None) or "") or None


def make_client(secret_key: str, api_base: str | None = None) -> stripe.StripeClient:
    if not secret_key.startswith(("sk_", "rk_")):
        raise UserInputError(
            f"{SECRET_KEY} does not look like a Stripe secret key: it starts with sk_ or rk_"
        )
    bases: Any = {"api": api_base.rstrip("/")} if api_base else {}
    return stripe.StripeClient(secret_key, base_addresses=bases, max_network_retries=0)


class AsyncStripe:
    """Clients for the SDK's `*_async` calls, over aiohttp: a request waiting on
    Stripe holds no thread, so a burst of backers is bound by Stripe's latency
    and our CPU, not by a thread pool. An aiohttp session belongs to one event
    loop: one client per loop (a service has one; a test may drive two)."""

    def __init__(self, secret_key: str, api_base: str | None = None) -> None:
        make_client(secret_key, api_base)  # the same check of the key
        self.secret_key = secret_key
        self.bases: Any = {"api": api_base.rstrip("/")} if api_base else {}
        self.made: dict[asyncio.AbstractEventLoop, tuple[Any, stripe.StripeClient]] = {}

    def client(self) -> stripe.StripeClient:
        """The client for the running event loop."""
        loop = asyncio.get_running_loop()
        found = self.made.get(loop)
        if found is None:
            http = stripe.AIOHTTPClient()
            client = stripe.StripeClient(
                self.secret_key,
                base_addresses=self.bases,
                max_network_retries=0,
                http_client=http,
            )
            found = self.made[loop] = (http, client)
        return found[1]

    async def close(self) -> None:
        """Close the running loop's client (the others' loops have closed theirs)."""
        found = self.made.pop(asyncio.get_running_loop(), None)
        if found is not None:
            await found[0].close_async()


def client_from_env(environ: Mapping[str, str]) -> stripe.StripeClient:
    key = environ.get(SECRET_KEY, "")
    if not key:
        raise NotConfigured(f"{SECRET_KEY} is not set: export your Stripe secret key")
    return make_client(key, environ.get(API_BASE) or None)


def as_dict(obj: Any) -> dict[str, Any]:
    """A Stripe object (or an already-plain dict) as plain data."""
    if isinstance(obj, dict):
        return obj
    return dict(obj.to_dict())


def opts(key: str) -> Any:
    """Request options carrying our idempotency key."""
    return {"idempotency_key": key}
