"""A plan's rules as validated data: what triggers a commission, on which events, and how much it pays.

Every amount is an integer: rates in basis points (2000 = 20 %), money in minor units of the program's
currency. A float or a negative number is refused naming its field; nothing here reads the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from itertools import pairwise
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator
from pydantic import ValidationError as PydanticError

from partnerpay.events.schemas import CORE_TYPES, EventType
from partnerpay.kit.errors import ValidationError

BasisPoints = Annotated[StrictInt, Field(ge=0, le=10_000, description="basis points: 2000 = 20 %")]
Minor = Annotated[StrictInt, Field(ge=0, description="minor units of the program currency; a float is refused")]
Days = Annotated[StrictInt, Field(ge=0, le=3650)]
Label = Annotated[StrictStr, Field(min_length=1, max_length=200)]

# Events that reverse or describe a commission's fate; they claw back (issue 6 §5) and never pay one.
NOT_TRIGGERS = frozenset(
    {
        EventType.REFUND,
        EventType.CHARGEBACK,
        EventType.CHARGEBACK_REVERSED,
        EventType.SUBSCRIPTION_CANCELED,
        EventType.SUBSCRIPTION_UPDATED,
    }
)
MAX_RULES = 100


class Period(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"
    YEAR = "year"


class TierMode(StrEnum):
    # The rate of the tier reached applies to the event that reached it and later ones.
    MARGINAL = "marginal"
    # Reaching a tier re-rates the whole period's events, paying the difference as a true-up line.
    RETROACTIVE = "retroactive"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, frozen=True)


class Conditions(_Strict):
    """Which events of the trigger's type a rule pays on; an empty list or null means "any"."""

    products: list[Label] = Field(default_factory=list, description="event.product is one of these")
    skus: list[Label] = Field(default_factory=list, description="event.metadata.sku (plan or SKU) is one of these")
    customer_countries: list[Annotated[StrictStr, Field(pattern=r"^[A-Z]{2}$")]] = Field(
        default_factory=list, description="ISO 3166 alpha-2 codes of the customer's country"
    )
    first_payment_only: StrictBool = False
    min_amount: Minor | None = Field(default=None, description="event amount at least this, in program currency")
    partner_group_ids: list[Label] = Field(default_factory=list)
    metadata_equals: dict[StrictStr, StrictStr | StrictInt | StrictBool] = Field(default_factory=dict)

    @field_validator("products", "skus", "customer_countries", "partner_group_ids")
    @classmethod
    def _no_duplicates(cls, values: list[str]) -> list[str]:
        return list(dict.fromkeys(values))


class Tier(_Strict):
    from_customers: StrictInt = Field(ge=0, description="distinct paying customers of the partner in the period")
    percent_bp: BasisPoints


class Caps(_Strict):
    per_event: Minor | None = None
    per_customer: Minor | None = None
    per_partner_period: Minor | None = None
    period: Period = Period.MONTH


class Bonus(_Strict):
    """A one-time amount when the partner's n-th paying customer arrives (e.g. first 5 customers -> 500.00)."""

    first_customers: StrictInt = Field(ge=1, le=100_000)
    amount: Minor


class Rule(_Strict):
    name: Label | None = None
    trigger: StrictStr = Field(min_length=1, max_length=64, description="a core event type or a custom one")
    conditions: Conditions = Field(default_factory=Conditions)
    percent_bp: BasisPoints | None = None
    flat: Minor | None = Field(default=None, description="per event, minor units of the program currency")
    recurring_months: StrictInt | None = Field(
        default=None, ge=1, le=1200, description="invoice_paid only: months from the first payment; null = forever"
    )
    tiers: list[Tier] | None = None
    tier_period: Period | None = None
    tier_mode: TierMode = TierMode.MARGINAL
    caps: Caps = Field(default_factory=Caps)
    bonus: Bonus | None = None
    two_tier_percent_bp: BasisPoints | None = Field(default=None, description="the recruiter's share of this line")
    hold_days: Days | None = Field(default=None, description="null: the program's hold days")
    clawback_days: Days | None = Field(default=None, description="null: refunds claw back whenever they come")
    waive_clawback_after_days: Days | None = None
    priority: StrictInt = Field(default=0, ge=-1000, le=1000, description="among overlapping rules the highest wins")

    @field_validator("tiers")
    @classmethod
    def _tier_table(cls, tiers: list[Tier] | None) -> list[Tier] | None:
        if tiers is None:
            return None
        if not tiers:
            raise ValueError("a tier table needs at least one tier; leave tiers out (null) for a flat rate")
        if tiers[0].from_customers != 0:
            raise ValueError(
                f"the first tier must start at from_customers 0, not {tiers[0].from_customers}: "
                "partners below it would have no rate (a gap)"
            )
        for before, after in pairwise(tiers):
            if after.from_customers <= before.from_customers:
                raise ValueError(
                    f"tiers must have strictly increasing from_customers; {after.from_customers} follows "
                    f"{before.from_customers} (a duplicate or a tier out of order)"
                )
        return tiers

    @model_validator(mode="after")
    def _consistent(self) -> Rule:
        if self.percent_bp is None and self.flat is None and self.tiers is None and self.bonus is None:
            raise ValueError("a rule must pay something: give percent_bp, flat, tiers or a bonus")
        if self.tiers is not None:
            if self.tier_period is None:
                raise ValueError("tier_period (month, quarter or year) is required with tiers")
            if self.percent_bp is not None and self.percent_bp != self.tiers[0].percent_bp:
                raise ValueError(
                    f"percent_bp {self.percent_bp} differs from the first tier's {self.tiers[0].percent_bp}; "
                    "with tiers the tier's rate applies, so leave percent_bp out or make them equal"
                )
        elif self.tier_period is not None:
            raise ValueError("tier_period is only meaningful with tiers")
        if self.recurring_months is not None and self.trigger != EventType.INVOICE_PAID:
            raise ValueError("recurring_months applies only to invoice_paid rules (months from the first payment)")
        return self

    @property
    def pays_per_event(self) -> bool:
        """Whether the rule pays on each matching event (not only a one-time bonus)."""
        return self.percent_bp is not None or self.flat is not None or self.tiers is not None


def _field_of(loc: Sequence[Any], prefix: str) -> str:
    parts = [prefix, *(str(p) for p in loc)]
    return ".".join(p for p in parts if p)


def parse_rule(raw: Any, *, index: int, custom_types: Sequence[str] = ()) -> Rule:
    """One rule from its JSON form; errors name the field as rules.<index>.<field> (index from 0)."""
    prefix = f"rules.{index}"
    try:
        rule = Rule.model_validate(raw)
    except PydanticError as exc:
        err = exc.errors()[0]
        field = _field_of(err.get("loc", ()), prefix)
        value = err.get("input")
        if err.get("type") == "int_type" and isinstance(value, float):
            message = f"{field} must be a whole number, not {value!r} (floats are refused)"
        elif err.get("type") == "extra_forbidden":
            message = f"{field} is not a known rule field"
        else:
            message = f"{field}: {err.get('msg', 'invalid value').removeprefix('Value error, ')}"
        raise ValidationError(f"rule {index + 1}: {message}", field=field) from None
    trigger = rule.trigger
    if trigger in NOT_TRIGGERS:
        raise ValidationError(
            f"rule {index + 1}: {trigger} reverses or describes commissions (clawbacks); it cannot trigger one",
            field=f"{prefix}.trigger",
        )
    if trigger not in CORE_TYPES and trigger not in custom_types:
        known = sorted((CORE_TYPES - NOT_TRIGGERS) | set(custom_types))
        raise ValidationError(
            f"rule {index + 1}: unknown event type {trigger!r}; use one of {', '.join(known)} "
            "or add it to the program's custom_event_types",
            field=f"{prefix}.trigger",
        )
    return rule


def parse_rules(raw: Any, *, custom_types: Sequence[str] = ()) -> list[Rule]:
    """A whole rule list; the first bad rule is refused with its field, nothing partial is kept."""
    if not isinstance(raw, list):
        raise ValidationError("rules must be a list of rules", field="rules")
    if len(raw) > MAX_RULES:
        raise ValidationError(f"a plan has at most {MAX_RULES} rules, got {len(raw)}", field="rules")
    return [parse_rule(item, index=i, custom_types=custom_types) for i, item in enumerate(raw)]


def rules_json(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """The stored form: every field spelled out, so a later default never changes what a version meant."""
    return [rule.model_dump(mode="json") for rule in rules]
