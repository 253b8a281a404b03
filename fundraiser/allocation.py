"""Paid pledges to whole shares: one pure, deterministic allotment plan.

No I/O, no clock and no floats. The same pledges and terms give the same plan
in any input order, and every minor unit paid is either kept for shares or
refunded with a reason, attributed to a specific pledge.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

from fundraiser.config import ScaleBack, ShareTerms
from fundraiser.errors import CurrencyMismatch, FundraiserError
from fundraiser.gcpause import gc_paused
from fundraiser.money import Money


class AllocationError(FundraiserError):
    """Inputs that cannot be allocated: negative amounts, repeated ids, bad times."""


class AllocationInvariantBroken(AllocationError):
    """A plan that creates or loses money or breaks the share terms: a bug."""


class RemainderReason(enum.StrEnum):
    FRACTION = "fraction"  # money below the price of one whole share
    CAP = "cap"  # over the per-member maximum holding
    BELOW_MINIMUM = "below-minimum"  # the person's total can't buy min_shares
    SCALE_BACK = "scale-back"  # offer oversubscribed: shares scaled back


# Refunds fill pledges from the latest backwards in this order, so scale-back
# money comes off the newest money first and fractions off the oldest.
REFUND_ORDER = (
    RemainderReason.SCALE_BACK,
    RemainderReason.CAP,
    RemainderReason.BELOW_MINIMUM,
    RemainderReason.FRACTION,
)


# slots: 100,000 pledges and their remainders are held at once during an issue.
@dataclass(frozen=True, slots=True)
class PaidPledge:
    pledge_id: int
    person_key: str
    name: str
    email: str
    address: str
    amount: Money  # net paid amount still held (paid minus refunded)
    paid_at: str  # ISO-8601 UTC timestamp text


@dataclass(frozen=True, slots=True)
class Remainder:
    pledge_id: int
    person_key: str
    amount: Money
    reason: RemainderReason


@dataclass(frozen=True, slots=True)
class Allotment:
    person_key: str
    name: str  # name, email and address come from the earliest paid pledge
    email: str
    address: str
    first_paid_at: str
    shares: int  # new shares now; 0 means this person is not admitted
    paid: Money
    remainders: tuple[Remainder, ...]  # by pledge (paid_at, pledge_id), then REFUND_ORDER
    pledge_ids: tuple[int, ...]  # sorted by (paid_at, pledge_id)
    existing_shares: int

    @property
    def refunded(self) -> Money:
        return Money(sum(r.amount.amount for r in self.remainders), self.paid.currency)


@dataclass(frozen=True)
class Plan:
    currency: str
    price: Money
    allotments: tuple[Allotment, ...]  # admission order: (first_paid_at, min pledge id)
    # The limits the plan was made under, so check_plan(plan) can verify them.
    min_shares: int = 1
    max_shares: int | None = None
    available: int | None = None  # shares the offer could still issue

    @property
    def total_shares(self) -> int:
        return sum(a.shares for a in self.allotments)

    # Sums over plain ints: Money's checked addition costs seconds at 100,000 people,
    # and every amount in a plan is in its currency (check_plan says so).
    @property
    def total_paid(self) -> Money:
        return Money(sum(a.paid.amount for a in self.allotments), self.currency)

    @property
    def remainders(self) -> tuple[Remainder, ...]:
        return tuple(r for a in self.allotments for r in a.remainders)

    @property
    def total_remainders(self) -> Money:
        return Money(sum(r.amount.amount for r in self.remainders), self.currency)

    @property
    def admitted(self) -> tuple[Allotment, ...]:
        """New members, in member-number order."""
        return tuple(a for a in self.allotments if a.shares > 0 and a.existing_shares == 0)


def person_key(email: str) -> str:
    """One member per person: emails compare without case or surrounding space."""
    return email.strip().lower()


def _moment(text: str, what: str) -> datetime:
    # Parsed, not compared as text: "10:00:00Z" must sort before "10:00:00.5Z".
    try:
        return _parse_moment(text)
    except (ValueError, AttributeError) as exc:
        raise AllocationError(f"{what}: {text!r} is not an ISO-8601 timestamp") from exc


@cache  # cleared after each plan: one entry per pledge, then freed
def _parse_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def allocate(
    pledges: Iterable[PaidPledge],
    terms: ShareTerms,
    *,
    offer_max_shares: int | None = None,
    existing: Mapping[str, int] | None = None,
) -> Plan:
    """Allot whole shares to each person's paid pledges and refund the rest."""
    with gc_paused():
        return _allocate(pledges, terms, offer_max_shares, existing)


def _allocate(
    pledges: Iterable[PaidPledge],
    terms: ShareTerms,
    offer_max_shares: int | None,
    existing: Mapping[str, int] | None,
) -> Plan:
    price, currency = terms.price.amount, terms.price.currency
    if price <= 0 or not 0 <= terms.min_shares <= terms.max_shares:
        raise AllocationError(f"unusable share terms: {terms}")
    if offer_max_shares is not None and offer_max_shares < 0:
        raise AllocationError(f"offer maximum of {offer_max_shares} shares is negative")
    held: dict[str, int] = {}
    for key, count in (existing or {}).items():
        if count < 0 or person_key(key) in held:
            raise AllocationError(f"existing holding for {key!r} is negative or repeated")
        held[person_key(key)] = count

    when: dict[int, datetime] = {}
    groups: dict[str, list[PaidPledge]] = {}
    for p in pledges:
        pid, amount = p.pledge_id, p.amount
        if amount.currency != currency:
            raise CurrencyMismatch(
                f"pledge {pid} is in {amount.currency} but shares cost {currency}"
            )
        if amount.amount < 0 or pid in when:
            raise AllocationError(f"pledge {pid} is negative or given twice")
        when[pid] = _moment(p.paid_at, f"pledge {pid}")
        key = p.person_key.strip().lower()  # person_key(), inlined: 100,000 calls
        group = groups.get(key)
        if group is None:
            groups[key] = [p]
        else:
            group.append(p)
    # Admission order: first payment, then lowest pledge id.
    first: dict[str, tuple[datetime, int]] = {}
    for key, group in groups.items():
        if len(group) > 1:
            group.sort(key=lambda p: (when[p.pledge_id], p.pledge_id))
            first[key] = (when[group[0].pledge_id], min(p.pledge_id for p in group))
        else:
            first[key] = (when[group[0].pledge_id], group[0].pledge_id)
    order = sorted(groups, key=first.__getitem__)

    paid = {k: sum(p.amount.amount for p in groups[k]) for k in order}
    whole = {k: paid[k] // price for k in order}
    # max(0, ...): someone already above the cap (terms changed) just gets none.
    wanted = {k: max(0, min(whole[k], terms.max_shares - held.get(k, 0))) for k in order}
    new = {k for k in order if not held.get(k)}
    below = {k for k in new if wanted[k] < terms.min_shares}
    for k in below:
        wanted[k] = 0

    available = None
    shares = dict(wanted)
    if offer_max_shares is not None:
        available = max(0, offer_max_shares - sum(held.values()))
        if sum(wanted.values()) > available:
            shares = _scale_back(terms, order, wanted, new, available)

    allotments: list[Allotment] = []
    append, price_money = allotments.append, terms.price
    for k in order:
        give = shares[k]
        # Refund amounts in REFUND_ORDER: scale-back, cap, below-minimum, fraction.
        # A tuple, not a dict keyed by enum: enum hashing is slow at 100,000 people.
        if k in below:
            reasons = (0, 0, paid[k], 0)
        else:
            want, can = wanted[k], whole[k]
            reasons = ((want - give) * price, (can - want) * price, 0, paid[k] - can * price)
        append(_allot(k, groups[k], give, held.get(k, 0), reasons, price_money))
    plan = Plan(
        currency, terms.price, tuple(allotments), terms.min_shares, terms.max_shares, available
    )
    try:
        check_plan(plan, [p for k in order for p in groups[k]])
    finally:
        _parse_moment.cache_clear()
    return plan


def _scale_back(
    terms: ShareTerms, order: list[str], wanted: dict[str, int], new: set[str], available: int
) -> dict[str, int]:
    """Shares per person when the offer cannot meet every wanted number."""
    if terms.scale_back == ScaleBack.PRO_RATA:
        return _pro_rata(order, wanted, new, terms.min_shares, available)
    if terms.scale_back == ScaleBack.SMALL_FIRST:
        # A stable sort keeps admission order among equal wants.
        order = sorted(order, key=lambda k: wanted[k])
    elif terms.scale_back != ScaleBack.FIRST_COME:
        raise AllocationError(f"unknown scale-back policy {terms.scale_back!r}")
    shares, left = {}, available
    for k in order:
        give = min(wanted[k], left)
        if k in new and give < terms.min_shares:
            give = 0  # a part holding below the minimum can't admit anyone
        shares[k] = give
        left -= give
    return shares


def _pro_rata(
    order: list[str], wanted: dict[str, int], new: set[str], minimum: int, available: int
) -> dict[str, int]:
    """Largest-remainder shares; newcomers cut below the minimum drop out, then redo."""
    rank = {k: i for i, k in enumerate(order)}
    pool = [k for k in order if wanted[k] > 0]
    while True:
        demand = sum(wanted[k] for k in pool)
        if demand <= available:
            shares = {k: wanted[k] for k in pool}
        else:
            # Exact integer quotas: floor first, then one each by largest remainder.
            # demand > available makes each quota < wanted, so +1 never exceeds it.
            shares = {k: wanted[k] * available // demand for k in pool}
            left = available - sum(shares.values())
            ranked = sorted(pool, key=lambda k: (-(wanted[k] * available % demand), rank[k]))
            for k in ranked[:left]:
                shares[k] += 1
        dropped = {k for k in pool if k in new and shares[k] < minimum}
        if not dropped:
            return {k: shares.get(k, 0) for k in order}
        pool = [k for k in pool if k not in dropped]


def _allot(
    key: str,
    group: list[PaidPledge],
    shares: int,
    existing: int,
    reasons: tuple[int, int, int, int],
    price: Money,
) -> Allotment:
    """One person's allotment, with refunds attributed to their pledges."""
    if len(group) == 1:  # most people pledge once: each reason is one remainder
        p = group[0]
        if min(reasons) < 0 or shares * price.amount + sum(reasons) != p.amount.amount:
            raise AllocationInvariantBroken(f"{key}: refunds {reasons} do not match the pledge")
        pid, code = p.pledge_id, price.currency
        return Allotment(
            key,
            p.name,
            p.email,
            p.address,
            p.paid_at,
            shares,
            p.amount,
            tuple(
                [
                    Remainder(pid, key, Money(amount, code), reason)
                    for reason, amount in zip(REFUND_ORDER, reasons, strict=True)
                    if amount
                ]
            ),
            (pid,),
            existing,
        )
    # Kept money comes from the earliest pledges; the rest of each is refunded.
    kept = shares * price.amount
    refunds = []
    for p in group:
        keep = min(p.amount.amount, kept)
        kept -= keep
        refunds.append(p.amount.amount - keep)
    if kept or min(reasons) < 0 or sum(refunds) != sum(reasons):
        raise AllocationInvariantBroken(f"{key}: refunds {reasons} do not match the pledges")
    # Lay reasons (in REFUND_ORDER) and pledges (latest first) end to end on one
    # line of refund money; each overlap of a reason with a pledge is a Remainder.
    reason_spans, start = [], 0
    for reason, amount in zip(REFUND_ORDER, reasons, strict=True):
        if amount:
            reason_spans.append((reason, start, start + amount))
        start += amount
    remainders = []
    end = sum(refunds)  # pledges laid from the latest, so the earliest ends last
    for p, refund in zip(group, refunds, strict=True):
        if not refund:  # most pledges are kept whole: skip the span walk
            continue
        for reason, low, high in reason_spans:
            overlap = min(high, end) - max(low, end - refund)
            if overlap > 0:
                remainders.append(
                    Remainder(p.pledge_id, key, Money(overlap, price.currency), reason)
                )
        end -= refund
    first = group[0]
    return Allotment(
        key,
        first.name,
        first.email,
        first.address,
        first.paid_at,
        shares,
        Money(sum(p.amount.amount for p in group), price.currency),
        tuple(remainders),
        tuple(p.pledge_id for p in group),
        existing,
    )


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AllocationInvariantBroken(message)


def check_plan(plan: Plan, pledges: Iterable[PaidPledge] | None = None) -> None:
    """Raise AllocationInvariantBroken unless the plan keeps every rule.

    With the pledges it was made from, also check each pledge: what it keeps
    (earliest pledges first) plus its remainders is exactly its amount.
    """
    price, currency = plan.price.amount, plan.currency
    _require(plan.price.currency == currency and price > 0, f"bad price {plan.price}")
    people: set[str] = set()
    ids: set[int] = set()
    previous: tuple[datetime, int] | None = None
    # Messages are built only on failure: this runs over every allotment.
    for a in plan.allotments:
        key, pids = a.person_key, a.pledge_ids
        if key in people or not pids or len(set(pids)) != len(pids) or not ids.isdisjoint(pids):
            _require(False, f"allotment for {key}: repeated person or pledge ids")
        people.add(key)
        ids.update(pids)
        admission = (_moment(a.first_paid_at, key), min(pids))
        if previous is not None and not previous < admission:
            _require(False, f"allotment for {key} is out of admission order")
        previous = admission
        if a.shares < 0 or a.existing_shares < 0 or a.paid.currency != currency:
            _require(False, f"allotment for {key}: negative shares or paid in another currency")
        refunded = 0
        reasons: set[tuple[int, RemainderReason]] = set()
        for r in a.remainders:
            if not (r.person_key == key and r.pledge_id in pids):
                _require(False, f"allotment for {key}: {r} belongs elsewhere")
            if not (r.amount.currency == currency and r.amount.amount > 0):
                _require(False, f"allotment for {key}: {r} is not a positive {currency} amount")
            reasons.add((r.pledge_id, r.reason))
            refunded += r.amount.amount
        if len(reasons) != len(a.remainders):
            _require(False, f"allotment for {key}: a reason repeats on one pledge")
        if a.shares * price + refunded != a.paid.amount:
            _require(
                False,
                f"allotment for {key}: {a.shares} shares + {refunded} refunded "
                f"!= {a.paid.amount} paid",
            )
        # Only new shares count against the cap: an old holding may exceed it.
        if plan.max_shares is not None and a.shares:
            _require(a.existing_shares + a.shares <= plan.max_shares, f"{key}: over the cap")
        if a.existing_shares == 0 and a.shares and a.shares < plan.min_shares:
            _require(False, f"allotment for {key}: below the minimum")
    if plan.available is not None:
        _require(plan.total_shares <= plan.available, "more shares than the offer allows")
    if pledges is not None:
        _check_pledges(plan, list(pledges))


def _check_pledges(plan: Plan, pledges: list[PaidPledge]) -> None:
    by_id = {p.pledge_id: p for p in pledges}
    planned = sorted(i for a in plan.allotments for i in a.pledge_ids)
    _require(planned == sorted(p.pledge_id for p in pledges), "plan and pledges differ")
    price = plan.price.amount
    for a in plan.allotments:
        if len(a.pledge_ids) == 1:  # check_plan has matched its remainders to its money
            p = by_id[a.pledge_ids[0]]
            if (
                p.person_key.strip().lower() != a.person_key
                or p.amount != a.paid
                or a.shares * price > p.amount.amount
            ):
                _require(False, f"pledge {p.pledge_id} does not match {a.person_key}'s allotment")
            continue
        group = [by_id[i] for i in a.pledge_ids]
        for p in group:
            if person_key(p.person_key) != a.person_key or p.amount.currency != plan.currency:
                _require(
                    False, f"pledge {p.pledge_id} is not {a.person_key}'s or not in {plan.currency}"
                )
        if len(group) > 1:
            ordered = sorted(group, key=lambda p: (_moment(p.paid_at, "pledge"), p.pledge_id))
            _require(group == ordered, f"{a.person_key}: pledges out of (paid_at, id) order")
        if a.paid.amount != sum(p.amount.amount for p in group):
            _require(False, f"{a.person_key}: paid")
        kept = a.shares * plan.price.amount
        refunds: dict[int, int] = defaultdict(int)
        for r in a.remainders:
            refunds[r.pledge_id] += r.amount.amount
        for p in group:
            keep = min(p.amount.amount, kept)
            kept -= keep
            if keep + refunds[p.pledge_id] != p.amount.amount:
                _require(False, f"pledge {p.pledge_id}: kept + refunds != amount")
