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
from typing import NamedTuple

from fundraiser.config import ScaleBack, ShareTerms
from fundraiser.errors import CurrencyMismatch, FundraiserError
from fundraiser.money import Money
from fundraiser.people import person_key


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


# Named tuples, not dataclasses: an issue builds 100,000 pledges, 80,000
# allotments and 150,000 remainders, and a tuple is built in a third of the
# time of a frozen dataclass, in less memory, and is just as immutable.
class PaidPledge(NamedTuple):
    pledge_id: int
    person_key: str
    name: str
    email: str
    amount: Money  # net paid amount still held (paid minus refunded)
    paid_at: str  # ISO-8601 UTC timestamp text


class Remainder(NamedTuple):
    pledge_id: int
    person_key: str
    amount: Money
    reason: RemainderReason


class Allotment(NamedTuple):
    person_key: str
    name: str  # name and email come from the earliest paid pledge (the issue
    email: str  # copies the member's details from it in the database)
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


def _moment(text: str, what: str | int) -> datetime:
    """Parsed, not compared as text: "10:00:00Z" must sort before "10:00:00.5Z".

    `what` names the owner in the error; a pledge id becomes "pledge N" only
    when needed, not 100,000 times.
    """
    try:
        return _parse_moment(text)
    except (ValueError, AttributeError) as exc:
        owner = f"pledge {what}" if isinstance(what, int) else what
        raise AllocationError(f"{owner}: {text!r} is not an ISO-8601 timestamp") from exc


@cache  # cleared after each plan: one entry per pledge, then freed
def _parse_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.strip())
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class _MoneyMemo:
    """One Money per distinct amount: remainders repeat a few amounts thousands of times.

    Money is immutable, so sharing an instance is safe; building one costs a
    Python call, a dictionary lookup does not.
    """

    def __init__(self, currency: str) -> None:
        self.currency = currency
        self.made: dict[int, Money] = {}

    def __call__(self, amount: int) -> Money:
        found = self.made.get(amount)
        if found is None:
            found = self.made[amount] = Money(amount, self.currency)
        return found


def allocate(
    pledges: Iterable[PaidPledge],
    terms: ShareTerms,
    *,
    offer_max_shares: int | None = None,
    existing: Mapping[str, int] | None = None,
) -> Plan:
    """Allot whole shares to each person's paid pledges and refund the rest.

    A big campaign's plan is hundreds of thousands of small objects and no
    reference cycles: the caller pauses the cyclic collector around it (the
    register plans and issues inside the ledger's bulk work).
    """
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

    # Each person's pledges as (moment, pledge id, pledge): tuples sort in C,
    # and pledge ids are unique, so two pledges are never compared.
    moments: dict[str, datetime] = {}  # most pledges share a few payment times
    seen: set[int] = set()
    groups: dict[str, list[tuple[datetime, int, PaidPledge]]] = {}
    for p in pledges:
        pid, person, _name, _email, amount, paid_at = p
        if amount.currency != currency:
            raise CurrencyMismatch(
                f"pledge {pid} is in {amount.currency} but shares cost {currency}"
            )
        if amount.amount < 0 or pid in seen:
            raise AllocationError(f"pledge {pid} is negative or given twice")
        seen.add(pid)
        moment = moments.get(paid_at)
        if moment is None:
            moment = moments[paid_at] = _moment(paid_at, pid)
        key = person.strip().lower()  # person_key(), inlined: 100,000 calls
        if key == person:  # stored normalised (always, today): keep one string, not two
            key = person
        group = groups.get(key)
        if group is None:
            groups[key] = [(moment, pid, p)]
        else:
            group.append((moment, pid, p))
    # Admission order: first payment, then lowest pledge id (unique, so the
    # sort never reaches the key). From here on a person is a position in it.
    people: list[tuple[datetime, int, str, list[tuple[datetime, int, PaidPledge]]]] = []
    for key, group in groups.items():
        if len(group) > 1:
            group.sort()
            people.append((group[0][0], min([e[1] for e in group]), key, group))
        else:
            people.append((group[0][0], group[0][1], key, group))
    people.sort()

    min_shares, max_shares = terms.min_shares, terms.max_shares
    paid: list[int] = []
    whole: list[int] = []
    wanted: list[int] = []
    have: list[int] = []
    fresh: list[bool] = []  # holds no shares yet
    below: list[bool] = []  # new, and cannot buy the minimum
    for _first, _low, key, group in people:
        money_in = (
            group[0][2].amount.amount if len(group) == 1 else sum(e[2].amount.amount for e in group)
        )
        paid.append(money_in)
        can = money_in // price
        whole.append(can)
        held_now = held.get(key, 0)
        have.append(held_now)
        # max(0, ...): someone already above the cap (terms changed) just gets none.
        want = max(0, min(can, max_shares - held_now))
        short = not held_now and want < min_shares
        fresh.append(not held_now)
        below.append(short)
        wanted.append(0 if short else want)

    available = None
    shares = wanted
    if offer_max_shares is not None:
        available = max(0, offer_max_shares - sum(held.values()))
        if sum(wanted) > available:
            shares = _scale_back(terms, wanted, fresh, available)

    allotments: list[Allotment] = []
    append, price_money = allotments.append, terms.price
    money = _MoneyMemo(currency)
    made = money.made
    scale_back, cap, below_minimum, fraction = REFUND_ORDER
    # The named tuples made in C, not through their Python __new__: 230,000 of
    # them at 100,000 pledges (the same tuples; the fields in their order).
    new = tuple.__new__
    for (_first, _low, k, group), give, want, can, holding, paid_in, short in zip(
        people, shares, wanted, whole, have, paid, below, strict=True
    ):
        # Refund amounts in REFUND_ORDER: scale-back, cap, below-minimum, fraction.
        # A tuple, not a dict keyed by enum: enum hashing is slow at 100,000 people.
        if short:
            reasons = (0, 0, paid_in, 0)
        else:
            reasons = ((want - give) * price, (can - want) * price, 0, paid_in - can * price)
        if len(group) > 1:
            pledged = [e[2] for e in group]
            append(_allot(k, pledged, give, holding, reasons, price_money, money))
            continue
        # Most people pledge once: each reason with money is one remainder.
        p = group[0][2]
        pid = p.pledge_id
        cut, over, short_of, odd = reasons
        if min(reasons) < 0 or give * price + cut + over + short_of + odd != p.amount.amount:
            raise AllocationInvariantBroken(f"{k}: refunds {reasons} do not match the pledge")
        remainders = []
        if cut:
            remainders.append(new(Remainder, (pid, k, made.get(cut) or money(cut), scale_back)))
        if over:
            remainders.append(new(Remainder, (pid, k, made.get(over) or money(over), cap)))
        if short_of:
            refund = made.get(short_of) or money(short_of)
            remainders.append(new(Remainder, (pid, k, refund, below_minimum)))
        if odd:
            remainders.append(new(Remainder, (pid, k, made.get(odd) or money(odd), fraction)))
        _pid, _key, name, email, amount, paid_at = p
        append(
            new(
                Allotment,
                (k, name, email, paid_at, give, amount, tuple(remainders), (pid,), holding),
            )
        )
    plan = Plan(
        currency, terms.price, tuple(allotments), terms.min_shares, terms.max_shares, available
    )
    try:
        # Each pledge's share of the money was checked as it was split above;
        # check_plan(plan, pledges) re-derives it too, for the tests.
        check_plan(plan)
    finally:
        _parse_moment.cache_clear()
    return plan


def _scale_back(
    terms: ShareTerms, wanted: list[int], fresh: list[bool], available: int
) -> list[int]:
    """Shares per person (in admission order) when the offer cannot meet every want."""
    if terms.scale_back == ScaleBack.PRO_RATA:
        return _pro_rata(wanted, fresh, terms.min_shares, available)
    order: Iterable[int] = range(len(wanted))
    if terms.scale_back == ScaleBack.SMALL_FIRST:
        # A stable sort keeps admission order among equal wants.
        order = sorted(order, key=wanted.__getitem__)
    elif terms.scale_back != ScaleBack.FIRST_COME:
        raise AllocationError(f"unknown scale-back policy {terms.scale_back!r}")
    shares, left = [0] * len(wanted), available
    for i in order:
        give = min(wanted[i], left)
        if fresh[i] and give < terms.min_shares:
            give = 0  # a part holding below the minimum can't admit anyone
        shares[i] = give
        left -= give
    return shares


def _pro_rata(want: list[int], fresh: list[bool], minimum: int, available: int) -> list[int]:
    """Largest-remainder shares; newcomers cut below the minimum drop out, then redo."""
    n = len(want)
    pool = [i for i in range(n) if want[i] > 0]
    while True:
        demand = sum([want[i] for i in pool])
        give = [0] * n
        if demand <= available:
            for i in pool:
                give[i] = want[i]
        else:
            # Exact integer quotas: floor first, then one each by largest remainder.
            # demand > available makes each quota < wanted, so +1 never exceeds it.
            for i in pool:
                give[i] = want[i] * available // demand
            left = available - sum(give)
            # One int per person: larger remainder first, then admission order;
            # key % n gives the person back.
            ranked = sorted([(demand - want[i] * available % demand) * n + i for i in pool])
            for ranked_key in ranked[:left]:
                give[ranked_key % n] += 1
        dropped = {i for i in pool if fresh[i] and give[i] < minimum}
        if not dropped:
            return give
        pool = [i for i in pool if i not in dropped]


def _allot(
    key: str,
    group: list[PaidPledge],
    shares: int,
    existing: int,
    reasons: tuple[int, int, int, int],
    price: Money,
    money: _MoneyMemo,
) -> Allotment:
    """One person's allotment from several pledges, refunds attributed to each pledge."""
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
                remainders.append(Remainder(p.pledge_id, key, money(overlap), reason))
        end -= refund
    first = group[0]
    return Allotment(
        key,
        first.name,
        first.email,
        first.paid_at,
        shares,
        money(sum(p.amount.amount for p in group)),
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
    max_shares, min_shares = plan.max_shares, plan.min_shares
    # Messages are built only on failure, and one-pledge people take the short
    # branches: this runs over every allotment of every plan.
    moments: dict[str, datetime] = {}  # a few distinct payment times
    for a in plan.allotments:
        key, _name, _email, paid_at, shares, paid, rems, pids, existing = a
        if key in people:
            _require(False, f"allotment for {key}: repeated person")
        people.add(key)
        if len(pids) == 1:
            first_id = pids[0]
            if first_id in ids:
                _require(False, f"allotment for {key}: pledge {first_id} given twice")
            ids.add(first_id)
        else:
            if not pids or len(set(pids)) != len(pids) or not ids.isdisjoint(pids):
                _require(False, f"allotment for {key}: no pledges or repeated pledge ids")
            ids.update(pids)
            first_id = min(pids)
        moment = moments.get(paid_at)
        if moment is None:
            moment = moments[paid_at] = _moment(paid_at, key)
        admission = (moment, first_id)
        if previous is not None and not previous < admission:
            _require(False, f"allotment for {key} is out of admission order")
        previous = admission
        if shares < 0 or existing < 0 or paid.currency != currency:
            _require(False, f"allotment for {key}: negative shares or paid in another currency")
        refunded = 0
        for r in rems:
            pledge_id, owner, amount, _reason = r
            if owner != key or pledge_id not in pids:
                _require(False, f"allotment for {key}: {r} belongs elsewhere")
            if amount.currency != currency or amount.amount <= 0:
                _require(False, f"allotment for {key}: {r} is not a positive {currency} amount")
            refunded += amount.amount
        if len(rems) > 1 and len({(r[0], r[3]) for r in rems}) != len(rems):
            _require(False, f"allotment for {key}: a reason repeats on one pledge")
        if shares * price + refunded != paid.amount:
            _require(
                False,
                f"allotment for {key}: {shares} shares + {refunded} refunded != {paid.amount} paid",
            )
        if shares:
            # Only new shares count against the cap: an old holding may exceed it.
            if max_shares is not None and existing + shares > max_shares:
                _require(False, f"{key}: over the cap")
            if existing == 0 and shares < min_shares:
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
