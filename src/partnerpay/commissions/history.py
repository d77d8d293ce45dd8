"""What a partner already has when an event is evaluated: its paying events and its plan lines, as plain records.

The engine's context (customers this period, earned under each rule, the period's earlier events) is computed
from a `History` by `context_for`, one function, whether the history was read from the database for a live
event (commissions/plan_earn.py) or accumulated while replaying events under a draft plan (the backtest). So
live evaluation and a backtest can differ only in what they were fed, never in how they count.

"Before this event" means processed already and occurred at or before it: a late event that happened earlier
does not change what was counted for events already evaluated (recalculation re-derives those).
Periods (month, quarter, year) are calendar periods in UTC.

A replay of a million events asks for a context a million times, so the counts are not recomputed from the
whole history each time: each partner's records are indexed (by customer, by period, by plan version and
rule) as they are added, and a context costs a few dictionary look-ups and bisections per rule. The records
in `paying` and `lines` stay the source of truth (append to them, never edit or remove): the index catches
up with what was appended whenever a context is asked for. tests/unit/test_history.py holds the index to
a plain recount over the records.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from partnerpay.commissions.engine_inputs import (
    CustomerContext,
    EngineLine,
    EventFacts,
    PartnerContext,
    PlanRules,
)
from partnerpay.commissions.history_index import EARNING, PartnerIndex, PlanShape, period_start, period_starts
from partnerpay.kit.money import Rounding
from partnerpay.plans.rules import Rule

__all__ = [
    "EARNING",
    "History",
    "Made",
    "PartnerFacts",
    "Paying",
    "context_for",
    "customer_context",
    "earliest_needed",
    "period_start",
    "whole_months",
]


class Paying(NamedTuple):
    """A paying event attributed to a partner."""

    partner_id: str
    customer_id: str
    event_id: str
    occurred_at: datetime


class Made(NamedTuple):
    """A line made under a plan rule, as the context reads it."""

    partner_id: str
    customer_id: str | None
    event_id: str | None
    event_at: datetime  # when the line's event happened
    kind: str
    amount: int
    base: int
    rate_bp: int
    plan_version_id: str
    rule_number: int


@dataclass(frozen=True, slots=True)
class PartnerFacts:
    id: str
    status: str
    group_id: str | None = None
    recruiter_id: str | None = None


@dataclass
class History:
    paying: dict[str, list[Paying]] = field(default_factory=lambda: defaultdict(list))  # by partner
    lines: dict[str, list[Made]] = field(default_factory=lambda: defaultdict(list))  # by partner
    # By customer: (event id, occurred at) of every paying event, whoever's partner it was.
    customer_paid: dict[str, list[tuple[str, datetime]]] = field(default_factory=lambda: defaultdict(list))
    _indexes: dict[str, PartnerIndex] = field(default_factory=dict, repr=False, compare=False)
    _shapes: dict[str, PlanShape] = field(default_factory=dict, repr=False, compare=False)
    # By customer: (how many of customer_paid's records it covers, the earliest of them); and every paying
    # event id recorded. A customer's context is then a look-up, not a scan of its payments.
    _first_paid: dict[str, tuple[int, datetime]] = field(default_factory=dict, repr=False, compare=False)
    _paid_ids: set[str] = field(default_factory=set, repr=False, compare=False)

    def add_paying(self, partner_id: str | None, customer_id: str, event_id: str, occurred_at: datetime) -> None:
        paid = self.customer_paid[customer_id]
        paid.append((event_id, occurred_at))
        self._paid_ids.add(event_id)
        known = self._first_paid.get(customer_id)
        if known is not None and known[0] == len(paid) - 1:
            first = occurred_at if occurred_at < known[1] else known[1]
        else:  # records appended around add_paying: take them all in (their ids too)
            first = min(t for _, t in paid)
            self._paid_ids.update(i for i, _ in paid)
        self._first_paid[customer_id] = (len(paid), first)
        if partner_id is not None:
            self.paying[partner_id].append(Paying(partner_id, customer_id, event_id, occurred_at))

    def add_lines(self, lines: Iterable[EngineLine], event_at: datetime) -> None:
        for line in lines:
            d = line.draft
            if d.plan_version_id is None or d.rule_number is None:
                continue
            self.lines[d.partner_id].append(
                Made(
                    d.partner_id,
                    d.customer_id,
                    d.event_id,
                    event_at,
                    d.kind,
                    d.amount,
                    d.base_amount,
                    d.rate_bp,
                    d.plan_version_id,
                    d.rule_number,
                )
            )

    def shape_of(self, plan: PlanRules) -> PlanShape:
        """What the counts read of the plan's rules, worked out once per version (again if handed other rules)."""
        shape = self._shapes.get(plan.version_id)
        if shape is None or shape.rules is not plan.rules:
            shape = self._shapes[plan.version_id] = PlanShape.of(plan.rules)
        return shape

    def index_of(self, partner_id: str) -> PartnerIndex:
        """The partner's index, caught up with every record appended since it was last asked for."""
        index = self._indexes.get(partner_id)
        if index is None:
            index = self._indexes[partner_id] = PartnerIndex()
        index.catch_up(self.paying.get(partner_id, ()), self.lines.get(partner_id, ()))
        return index


def whole_months(start: datetime, at: datetime) -> int:
    """Whole months from `start` to `at`: 15 Jan → 14 Feb is 0, → 15 Feb is 1."""
    months = (at.year - start.year) * 12 + (at.month - start.month)
    if (at.day, at.time()) < (start.day, start.time()):
        months -= 1
    return max(0, months)


def earliest_needed(rules: Sequence[Rule], at: datetime) -> datetime | None:
    """The earliest time a context over these rules reads back to; None: all of history (one-time bonuses)."""
    if any(rule.bonus is not None for rule in rules):
        return None
    periods = [rule.tier_period for rule in rules if rule.tier_period is not None]
    periods += [rule.caps.period for rule in rules if rule.caps.per_partner_period is not None]
    return min((period_start(p, at) for p in periods), default=at)


def customer_context(history: History, event: EventFacts, paying: bool) -> CustomerContext:
    paid = history.customer_paid.get(event.customer_id, ())
    at = event.occurred_at
    known = history._first_paid.get(event.customer_id)
    if paid and known is not None and known[0] == len(paid) and event.id not in history._paid_ids:
        # The event is not among the payments: "earlier" is every payment at or before it, so there is one
        # exactly when the earliest payment is, and then it is the first.
        first_paid: datetime | None = known[1] if known[1] <= at else None
        earlier: list[datetime] = [] if first_paid is None else [first_paid]
    else:
        earlier = [t for i, t in paid if t <= at and i != event.id]
    first = min([*earlier, at]) if (earlier or paying) else None
    if first is None:
        return CustomerContext()
    return CustomerContext(
        first_paid_at=first,
        first_payment=paying and not earlier,
        months_since_first=whole_months(first, event.occurred_at),
    )


def context_for(
    history: History, *, partner: PartnerFacts, event: EventFacts, plan: PlanRules, rounding: Rounding
) -> PartnerContext:
    """The partner's counts at the event: its paying events and its lines under this plan version that
    occurred at or before it, the event itself left out."""
    at, customer, exclude, version = event.occurred_at, event.customer_id, event.id, plan.version_id
    index = history.index_of(partner.id)
    starts = period_starts(at)
    paying, lines = index.paying, index.lines
    shape = history.shape_of(plan)
    lines.want(version, shape)
    period_customers, customers_before = paying.others(starts, at, customer, exclude)
    paid_to_customer, earned_in_cap_period, earlier_in_period = lines.counts(
        version, shape, customer, starts, at, exclude, rounding
    )
    return PartnerContext(
        partner_id=partner.id,
        status=partner.status,
        group_id=partner.group_id,
        period_customers=period_customers,
        paid_to_customer=paid_to_customer,
        earned_in_cap_period=earned_in_cap_period,
        customers_before=customers_before,
        earlier_in_period=earlier_in_period,
        recruiter_id=partner.recruiter_id,
    )
