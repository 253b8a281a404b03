"""Collect an all-or-nothing campaign after its deadline: charge or release.

Crash safety: before Stripe is called, one transaction moves the pledge to
PROCESSING and counts the attempt. The charge's idempotency key and metadata
carry the pledge id and attempt. A rerun finds PROCESSING pledges and asks
Stripe whether that attempt charged (by our stored intent, then by the
customer's charges) before it charges again, so a kill at any point charges a
pledge at most once, even where idempotency keys are ignored (the emulator) or
have expired (after 24 hours).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import stripe
from sqlalchemy.engine import Connection

from fundraiser import closing
from fundraiser.errors import PaymentError, UserInputError
from fundraiser.ledger import Ledger, Tx
from fundraiser.payments import cardforms
from fundraiser.payments.client import (
    CardError,
    StripeUnavailable,
    as_dict,
    opts,
    stripe_errors,
)
from fundraiser.payments.events import (
    Context,
    apply_intent,
    move,
    pledge_row,
    record_failure,
)
from fundraiser.payments.plan import Plan
from fundraiser.payments.ratelimit import DEFAULT_RATE, RateLimiter
from fundraiser.pledges import Status


def release_all(tx: Tx, report: Report, ids: list[int]) -> None:
    """Record a missed goal: the decision, bank payments owed back, the rest released.

    Needs no Stripe: `close_without_stripe` and the collector share it.
    """
    closing.decide(tx, closing.RELEASE)
    report.owed_back += closing.owe_back(tx)
    report.released += closing.release(tx, ids)


def close_without_stripe(ledger: Ledger, the_plan: Plan, *, now: str | None = None) -> Report:
    """The close when nothing is at Stripe (a campaign paid by bank transfer only)."""
    if the_plan.at_stripe:
        raise UserInputError("card pledges are at Stripe: closing them needs STRIPE_SECRET_KEY")
    report = Report()
    started = time.perf_counter()
    with ledger.write(now) as tx:
        if the_plan.decision == closing.RELEASE:
            release_all(tx, report, the_plan.release)
        else:
            closing.decide(tx, closing.CHARGE)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class Claim:
    """A pledge marked PROCESSING for one attempt, and what Stripe said."""

    row: Any
    attempt: int
    recovering: bool
    intent: dict[str, Any] | None = None
    error: PaymentError | None = None


@dataclass
class Report:
    paid: int = 0
    collected: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    failed_ids: list[int] = field(default_factory=list)
    unresolved: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    released: int = 0
    owed_back: int = 0  # bank payments owed back in full (the goal was missed)
    lapsed: int = 0
    closed: int = 0  # card forms left open at the deadline, closed at Stripe
    cards_removed: int = 0  # saved cards of pledges that ended unpaid, detached
    customers_removed: int = 0  # and their customer records (name, email), deleted
    seconds: float = 0.0
    stripe_calls: int = 0

    def as_json(self) -> dict[str, Any]:
        return {
            "paid": self.paid,
            "collected": self.collected,
            "failed": sum(self.failed.values()),
            "failures": dict(sorted(self.failed.items())),
            "failed_pledges": sorted(self.failed_ids),
            "unresolved": sorted(self.unresolved),
            "errors": self.errors,
            "released": self.released,
            "owed_back": self.owed_back,
            "lapsed": self.lapsed,
            "forms_closed": self.closed,
            "cards_removed": self.cards_removed,
            "customers_removed": self.customers_removed,
            "seconds": round(self.seconds, 3),
            "stripe_calls": self.stripe_calls,
        }


class Collector:
    """Charges pledges one by one, from a few threads, at a bounded rate."""

    def __init__(
        self,
        ledger: Ledger,
        client: stripe.StripeClient,
        ctx: Context,
        *,
        rate: float = DEFAULT_RATE,
        workers: int | None = None,
        now: Callable[[], str] | None = None,
    ) -> None:
        self.ledger = ledger
        self.client = client
        self.ctx = ctx
        self.limiter = RateLimiter(rate)
        # Enough calls in flight to keep the pace when each takes up to half a
        # second (an off-session confirmation at Stripe often does).
        self.workers = max(1, workers if workers is not None else min(32, int(rate // 2) + 2))
        self.now = now
        self.report = Report()
        self._lock = threading.Lock()  # one ledger writer at a time in this process

    def _write(self) -> Any:
        return self.ledger.write(self.now() if self.now else None)

    # -- charging, a batch at a time ----------------------------------------
    #
    # Claiming a batch (PROCESSING, attempt counted) is one commit before any
    # of its charges; recording the outcomes is one commit after. A crash in
    # between leaves the batch PROCESSING, which the next run resolves by
    # asking Stripe, so batching costs nothing in safety and saves two commits
    # per pledge (the ledger, not Stripe, would otherwise bound the rate).

    def claim(self, ids: list[int], *, retry: bool) -> list[Claim]:
        claimed: list[Claim] = []
        with self._lock, self._write() as tx:
            for pledge_id in ids:
                row = pledge_row(tx.conn, id=pledge_id)
                assert row is not None
                current = Status(row.status)
                if current is Status.PROCESSING:
                    claimed.append(Claim(row, int(row.attempts), recovering=True))
                elif current is Status.AUTHORIZED or (retry and current is Status.PAYMENT_FAILED):
                    attempt = int(row.attempts) + 1
                    move(
                        tx,
                        row,
                        Status.PROCESSING,
                        reason=f"charging, attempt {attempt}",
                        extra={"attempts": attempt},
                    )
                    claimed.append(Claim(row, attempt, recovering=False))
                # anything else was settled meanwhile (a webhook, another run)
        return claimed

    def call(self, claim: Claim) -> Claim:
        """Charge (or find the earlier charge of) one claimed pledge; no ledger writes."""
        try:
            if claim.recovering:
                claim.intent = self.find_attempt(claim.row, claim.attempt)
            if claim.intent is None:
                claim.intent = self.create(claim.row, claim.attempt)
        except PaymentError as exc:
            claim.error = exc
        return claim

    def record(self, claims: list[Claim]) -> None:
        with self._lock, self._write() as tx:
            for claim in claims:
                pledge_id, exc = claim.row.id, claim.error
                if exc is None:
                    assert claim.intent is not None
                    apply_intent(tx, self.ctx, claim.intent)
                    continue
                fresh = pledge_row(tx.conn, id=pledge_id)
                assert fresh is not None
                if isinstance(exc, CardError):
                    if Status(fresh.status) is Status.PROCESSING and int(fresh.attempts) == (
                        claim.attempt
                    ):
                        record_failure(
                            tx,
                            self.ctx,
                            fresh,
                            code=exc.code,
                            attempt=claim.attempt,
                            intent=exc.payment_intent,
                        )
                elif isinstance(exc, StripeUnavailable):
                    self.report.errors.append(
                        f"pledge {pledge_id}: {exc} (left processing: rerun collect)"
                    )
                else:
                    # Refused before any charge (a bad request): back to authorized.
                    move(tx, fresh, Status.AUTHORIZED, reason="charge refused by Stripe")
                    self.report.errors.append(f"pledge {pledge_id}: {exc}")
            for claim in claims:
                self._tally(tx.conn, claim.row.id)

    def charge(self, pledge_id: int, *, retry: bool) -> None:
        """Charge one pledge (claim, call, record)."""
        claims = self.claim([pledge_id], retry=retry)
        self.record([self.call(c) for c in claims])

    def create(self, row: Any, attempt: int) -> dict[str, Any]:
        keys = self.ctx.keys
        self.limiter.wait()
        with stripe_errors(f"charging pledge {row.id}"):
            params: Any = {
                "amount": int(row.amount),
                "currency": row.currency.lower(),
                "customer": row.stripe_customer,
                "payment_method": row.stripe_payment_method,
                "off_session": True,
                "confirm": True,
                "payment_method_types": ["card"],
                "metadata": keys.metadata(row.id, attempt=attempt),
            }
            intent = self.client.v1.payment_intents.create(
                params=params, options=opts(keys.key(row.id, f"charge-{attempt}"))
            )
        return as_dict(intent)

    def find_attempt(self, row: Any, attempt: int) -> dict[str, Any] | None:
        """The PaymentIntent an earlier, interrupted run made for this attempt, if any."""
        keys = self.ctx.keys

        def ours(intent: dict[str, Any]) -> bool:
            metadata = intent.get("metadata") or {}
            return keys.owns(metadata) == row.id and str(metadata.get("attempt")) == str(attempt)

        v1 = self.client.v1
        with stripe_errors(f"looking up pledge {row.id}'s last charge"):
            if row.stripe_intent and row.stripe_intent.startswith("pi_"):
                self.limiter.wait()
                found = as_dict(v1.payment_intents.retrieve(row.stripe_intent))
                if ours(found):
                    return found
            if not row.stripe_customer:
                return None
            self.limiter.wait()
            seen: set[str] = set()
            charges = v1.charges.list(params={"customer": row.stripe_customer, "limit": 100})
            for charge in charges.auto_paging_iter():
                intent_id = charge.payment_intent
                if isinstance(intent_id, str) and intent_id not in seen:
                    seen.add(intent_id)
                    self.limiter.wait()
                    found = as_dict(v1.payment_intents.retrieve(intent_id))
                    if ours(found):
                        return found
        return None

    def _tally(self, conn: Connection, pledge_id: int) -> None:
        row = pledge_row(conn, id=pledge_id)
        assert row is not None
        current = Status(row.status)
        if current is Status.PAID:
            self.report.paid += 1
            self.report.collected += int(row.paid_amount)
        elif current is Status.PAYMENT_FAILED:
            self.report.failed[row.failure_code or "unknown"] += 1
            self.report.failed_ids.append(pledge_id)
        elif current is Status.PROCESSING:
            self.report.unresolved.append(pledge_id)

    # -- the whole run --------------------------------------------------------
    def run(
        self,
        the_plan: Plan,
        *,
        retry: bool = False,
        progress: Callable[[int], None] | None = None,
    ) -> Report:
        started = time.perf_counter()
        self.close_forms(the_plan.close)
        if the_plan.decision == "release":
            self.release(the_plan.release)
        else:
            self._decide("charge")
            self.lapse(the_plan.lapse)
            ids = the_plan.resume + the_plan.charge
            # About a second of work per batch: one claim and one record commit each.
            # The ledger work runs in its own thread, overlapping the charges. A
            # batch's calls are queued before the previous batch's have all
            # answered, so the rate limiter's slots are never left unused while
            # the slowest call of a batch finishes (Stripe's answers take longer
            # and longer as an emulator's store grows).
            size = max(1, min(200, int(self.limiter.rate)))
            chunks = [ids[i : i + size] for i in range(0, len(ids), size)]
            with (
                ThreadPoolExecutor(self.workers) as pool,
                ThreadPoolExecutor(1) as ledger_thread,
            ):
                claimed = (
                    ledger_thread.submit(self.claim, chunks[0], retry=retry) if chunks else None
                )
                recorded: Future[None] | None = None
                answering: tuple[list[Future[Claim]], int] | None = None  # the last batch

                def record_answered() -> None:
                    """Record the last batch once Stripe has answered all of its calls."""
                    nonlocal recorded
                    assert answering is not None
                    done = [f.result() for f in answering[0]]
                    if recorded is not None:
                        recorded.result()
                    recorded = ledger_thread.submit(self.record, done)
                    if progress:
                        progress(answering[1])

                for n, chunk in enumerate(chunks):
                    assert claimed is not None
                    calls = [pool.submit(self.call, c) for c in claimed.result()]
                    if n + 1 < len(chunks):
                        claimed = ledger_thread.submit(self.claim, chunks[n + 1], retry=retry)
                    if answering is not None:
                        record_answered()
                    answering = (calls, len(chunk))
                if answering is not None:
                    record_answered()
                if recorded is not None:
                    recorded.result()
        self.forget_unpaid()
        self.report.seconds = time.perf_counter() - started
        self.report.stripe_calls = self.limiter.calls
        return self.report

    def close_forms(self, ids: list[int]) -> None:
        """Close the card forms still open at the deadline (the backer never finished)."""
        for pledge_id in ids:
            self.limiter.wait()  # a read and a cancel at Stripe: two slots
            self.limiter.wait()
            try:
                pledge = cardforms.withdraw(
                    self.ledger,
                    self.client,
                    self.ctx,
                    pledge_id,
                    reason="the campaign closed before the card form was completed",
                    only_if_unfinished=True,
                    now=self.now() if self.now else None,
                )
            except PaymentError as exc:
                self.report.errors.append(f"pledge {pledge_id}: {exc} (its card form is open)")
                continue
            if pledge.status is Status.CANCELLED:
                self.report.closed += 1

    def forget_unpaid(self) -> None:
        """Remove at Stripe the saved cards and customers of pledges that ended unpaid."""
        try:
            forgotten = cardforms.forget_unpaid(
                self.ledger,
                self.client,
                self.ctx,
                now=self.now() if self.now else None,
                pace=self.limiter.wait,
            )
        except PaymentError as exc:
            self.report.errors.append(f"{exc} (rerun collect or stripe sync to finish)")
            return
        self.report.cards_removed += len(forgotten.cards)
        self.report.customers_removed += len(forgotten.customers)

    def _decide(self, decision: str) -> None:
        with self._lock, self._write() as tx:
            closing.decide(tx, decision)

    def lapse(self, ids: list[int]) -> None:
        with self._lock, self._write() as tx:
            for pledge_id in ids:
                row = pledge_row(tx.conn, id=pledge_id)
                if row is not None and move(
                    tx, row, Status.FAILED, reason="the window to fix the payment ended"
                ):
                    self.report.lapsed += 1

    def release(self, ids: list[int]) -> None:
        """The goal was missed: nothing is charged, bank payments are owed back."""
        with self._lock, self._write() as tx:
            release_all(tx, self.report, ids)
