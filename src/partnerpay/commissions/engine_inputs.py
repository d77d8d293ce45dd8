"""What the rule evaluator reads: plain values the caller gathered, so evaluation itself asks nothing of the
database and the live path, recalculation and a backtest can all feed it the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import NamedTuple

from partnerpay.commissions.service import LineDraft
from partnerpay.fx.conversion import Converted
from partnerpay.kit.money import Rounding
from partnerpay.plans.rules import Period, Rule


class RuleCheck(NamedTuple):
    """A rule's number, the rule, and what engine.matching compares of it, read out of the rule once per version
    (an empty tuple: any)."""

    number: int
    rule: Rule
    products: tuple[str, ...]
    skus: tuple[str, ...]
    customer_countries: tuple[str, ...]
    first_payment_only: bool
    min_amount: int | None
    partner_group_ids: tuple[str, ...]
    metadata_equals: tuple[tuple[str, object], ...]
    recurring_months: int | None

    @classmethod
    def of(cls, number: int, rule: Rule) -> RuleCheck:
        c = rule.conditions
        return cls(
            number, rule, tuple(c.products), tuple(c.skus), tuple(c.customer_countries), c.first_payment_only,
            c.min_amount, tuple(c.partner_group_ids), tuple(c.metadata_equals.items()), rule.recurring_months,
        )  # fmt: skip


@dataclass(frozen=True)
class PlanRules:
    """The plan version in effect for the partner at the event (from PlanBook.choose) and its parsed rules."""

    version_id: str
    plan_name: str
    version: int
    rules: Sequence[Rule]

    # Worked out once per version, not per event: a replay evaluates every event against the same PlanRules.
    @cached_property
    def by_trigger(self) -> Mapping[str, tuple[RuleCheck, ...]]:
        """Event type -> its rules with their numbers (from 1) and conditions, in plan order."""
        found: dict[str, list[RuleCheck]] = {}
        for number, rule in enumerate(self.rules, start=1):
            found.setdefault(rule.trigger, []).append(RuleCheck.of(number, rule))
        return {trigger: tuple(rules) for trigger, rules in found.items()}

    @cached_property
    def citations(self) -> Mapping[int, str]:
        """Rule number -> how an explanation cites it: "plan Standard v4 rule 2"."""
        return {n: f"plan {self.plan_name} v{self.version} rule {n}" for n in range(1, len(self.rules) + 1)}

    @cached_property
    def paying(self) -> dict[tuple[int, ...], tuple[tuple[int, Rule], ...]]:
        """Memo of engine.evaluate: the numbers of the rules that matched one event -> those that pay."""
        return {}


@dataclass(frozen=True, slots=True)
class EventFacts:
    id: str
    type: str
    external_id: str
    occurred_at: datetime
    amount: int | None
    currency: str | None
    customer_id: str
    customer_external_id: str
    product: str | None = None
    metadata: Mapping[str, object] = field(default_factory=dict)
    customer_name: str | None = None  # shown in explanations when known, else "customer <external id>"
    customer_country: str | None = None  # ISO alpha-2 when known

    @property
    def sku(self) -> object:
        return self.metadata.get("sku")


@dataclass(frozen=True, slots=True)
class CustomerContext:
    first_paid_at: datetime | None = None
    first_payment: bool = False  # this event is the customer's first payment
    months_since_first: int = 0  # whole months since the first payment: 0 in the first month ("month 1")


class EarlierLine(NamedTuple):
    """An earlier event of the current tier period under a retroactive rule: its base and everything already
    earned on it under that rule (its line plus earlier true-ups), so lifting it twice never pays twice."""

    base: int
    earned: int


@dataclass(frozen=True, slots=True)
class PartnerContext:
    partner_id: str
    status: str
    group_id: str | None = None
    # Distinct paying customers of the partner in the current tier period, other than this event's customer.
    period_customers: Mapping[Period, int] = field(default_factory=dict)
    # Rule number (from 1) -> what the partner already earned on this customer under that rule.
    paid_to_customer: Mapping[int, int] = field(default_factory=dict)
    # Rule number -> what the partner already earned under that rule in its current cap period.
    earned_in_cap_period: Mapping[int, int] = field(default_factory=dict)
    # Distinct paying customers the partner had before this event (for one-time bonuses).
    customers_before: int = 0
    # Rule number -> the period's earlier events under a retroactive tier rule.
    earlier_in_period: Mapping[int, Sequence[EarlierLine]] = field(default_factory=dict)
    recruiter_id: str | None = None  # earns two_tier_percent_bp of this partner's commission


_ROUNDINGS = {mode.value: mode for mode in Rounding}


@dataclass(frozen=True)
class ProgramTerms:
    id: str
    currency: str
    rounding: str
    hold_days: int
    default_percent_bp: int

    @cached_property
    def rounding_mode(self) -> Rounding:
        """`rounding` as the enum, looked up once per program (read for every line)."""
        return _ROUNDINGS.get(self.rounding) or Rounding(self.rounding)


@dataclass(frozen=True, slots=True)
class EngineLine:
    """A line draft plus where it came from; plan fields are None for the program default rate."""

    draft: LineDraft
    plan_version_id: str | None = None
    plan_name: str | None = None
    plan_version: int | None = None
    rule_number: int | None = None  # from 1, as people count rules


@dataclass(frozen=True, slots=True)
class Evaluation:
    """Everything one event is evaluated with."""

    program: ProgramTerms
    event: EventFacts
    customer: CustomerContext
    partner: PartnerContext
    plan: PlanRules | None = None
    converted: Converted | None = None  # the event amount in the program currency, when they differ
    now: datetime | None = None  # created_at of the drafts; the event's time when None
