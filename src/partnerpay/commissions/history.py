"""What a partner already has when an event is evaluated: its paying events and its plan lines, as plain records.

The engine's context (customers this period, earned under each rule, the period's earlier events) is computed
from a `History` by `context_for`, one function, whether the history was read from the database for a live
event (commissions/plan_earn.py) or accumulated while replaying events under a draft plan (the backtest). So
live evaluation and a backtest can differ only in what they were fed, never in how they count.

"Before this event" means processed already and occurred at or before it: a late event that happened earlier
does not change what was counted for events already evaluated (recalculation re-derives those).
Periods (month, quarter, year) are calendar periods in UTC.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from partnerpay.commissions.engine_inputs import (
    CustomerContext,
    EarlierLine,
    EngineLine,
    EventFacts,
    PartnerContext,
    PlanRules,
)
from partnerpay.kit.money import Rounding, percent_of
from partnerpay.plans.rules import Period, Rule, TierMode

# Lines that count as earned under a rule for its caps and tiers (a bonus is its own, a two-tier share the recruiter's).
EARNING = ("commission", "true_up")


@dataclass(frozen=True, slots=True)
class Paying:
    """A paying event attributed to a partner."""

    partner_id: str
    customer_id: str
    event_id: str
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Made:
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

    def add_paying(self, partner_id: str | None, customer_id: str, event_id: str, occurred_at: datetime) -> None:
        self.customer_paid[customer_id].append((event_id, occurred_at))
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


def period_start(period: Period, at: datetime) -> datetime:
    at = at.astimezone(UTC)
    if period is Period.MONTH:
        return datetime(at.year, at.month, 1, tzinfo=UTC)
    if period is Period.QUARTER:
        return datetime(at.year, 3 * ((at.month - 1) // 3) + 1, 1, tzinfo=UTC)
    return datetime(at.year, 1, 1, tzinfo=UTC)


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
    earlier = [t for i, t in paid if t <= event.occurred_at and i != event.id]
    first = min([*earlier, event.occurred_at]) if (earlier or paying) else None
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
    at, customer = event.occurred_at, event.customer_id
    paying = [p for p in history.paying.get(partner.id, ()) if p.occurred_at <= at and p.event_id != event.id]
    others = [p for p in paying if p.customer_id != customer]
    period_customers = {
        period: len({p.customer_id for p in others if p.occurred_at >= period_start(period, at)}) for period in Period
    }
    mine = [
        m
        for m in history.lines.get(partner.id, ())
        if m.plan_version_id == plan.version_id and m.event_at <= at and m.event_id != event.id
    ]
    paid_to_customer: dict[int, int] = defaultdict(int)
    earned_in_cap_period: dict[int, int] = defaultdict(int)
    for number, rule in enumerate(plan.rules, start=1):
        under = [m for m in mine if m.rule_number == number]
        paid_to_customer[number] = sum(m.amount for m in under if m.kind == "commission" and m.customer_id == customer)
        since = period_start(rule.caps.period, at)
        earned_in_cap_period[number] = sum(m.amount for m in under if m.kind in EARNING and m.event_at >= since)
    return PartnerContext(
        partner_id=partner.id,
        status=partner.status,
        group_id=partner.group_id,
        period_customers=period_customers,
        paid_to_customer=dict(paid_to_customer),
        earned_in_cap_period=dict(earned_in_cap_period),
        customers_before=len({p.customer_id for p in others}),
        earlier_in_period=_earlier_in_period(plan, mine, at, rounding),
        recruiter_id=partner.recruiter_id,
    )


def _earlier_in_period(
    plan: PlanRules, mine: Sequence[Made], at: datetime, rounding: Rounding
) -> dict[int, list[EarlierLine]]:
    """Per retroactive tier rule: the period's earlier commission lines with what each has earned so far.

    A true-up lifted every earlier line of its period to its rate; replaying them in order gives each line's
    earned amount. A true-up cut by a cap is counted as if whole, so a later true-up may pay less, never twice.
    """
    out: dict[int, list[EarlierLine]] = {}
    for number, rule in enumerate(plan.rules, start=1):
        if rule.tier_mode is not TierMode.RETROACTIVE or rule.tier_period is None:
            continue
        since = period_start(rule.tier_period, at)
        under = sorted(
            (m for m in mine if m.rule_number == number and m.event_at >= since and m.kind in EARNING),
            key=lambda m: m.event_at,
        )
        bases: list[int] = []
        earned: list[int] = []
        for m in under:
            if m.kind == "commission":
                bases.append(m.base)
                earned.append(m.amount)
            else:
                # Lifts every line so far; the true-up's own event line is at that rate already, so unchanged.
                earned = [max(e, percent_of(b, m.rate_bp, rounding)) for b, e in zip(bases, earned, strict=True)]
        out[number] = [EarlierLine(b, e) for b, e in zip(bases, earned, strict=True)]
    return out
