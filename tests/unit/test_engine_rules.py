"""Worked examples, one or more per rule type: the exact cents and the exact explanation of every line.

Unless an example says otherwise: program in EUR, 30 hold days, default 10 %, rounding half-even; invoice
INV-7 of €1,200.00 for Acme (product pro, SKU pro-annual, DE) on 2 Mar 2026, in the customer's 3rd month;
partner prt_1, active, no group, first customer of every period; plan Standard v4.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any

import pytest

from partnerpay.commissions.engine_inputs import CustomerContext, EarlierLine, PartnerContext
from partnerpay.fx.conversion import convert
from partnerpay.kit.errors import ValidationError
from tests.unit.engine_helpers import HOLD, JPY_EUR, PROGRAM, T, invoice, run, summary

PCT20 = {"trigger": "invoice_paid", "percent_bp": 2000}
TIERS = [{"from_customers": 0, "percent_bp": 2000}, {"from_customers": 10, "percent_bp": 3000}]
CITE = "plan Standard v4 rule"


@dataclass(frozen=True)
class Example:
    name: str
    rules: list[dict[str, Any]] | None
    expected: list[tuple[str, str, int, str]]
    event: dict[str, Any] = field(default_factory=dict)
    customer: dict[str, Any] = field(default_factory=lambda: {"months_since_first": 2})
    partner: dict[str, Any] = field(default_factory=dict)
    program: dict[str, Any] = field(default_factory=dict)


EXAMPLES = [
    Example(
        "no plan: the program default rate, exactly as commission_for words it",
        None,
        [("commission", "prt_1", 12_000, "10 % of €1,200.00 invoice INV-7 for customer acme (program default rate, "
          f"rounded half-even) = €120.00; {HOLD}")],
    ),
    Example(
        "percent of the amount",
        [PCT20],
        [("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €240.00; {HOLD}")],
    ),
    Example(
        "flat per event on an event without an amount",
        [{"trigger": "deal_won", "flat": 5_000}],
        [("commission", "prt_1", 5_000, f"€50.00 flat per deal won D-1 for Acme, {CITE} 1 = €50.00; {HOLD}")],
        event={"type": "deal_won", "external_id": "D-1", "amount": None, "currency": None},
    ),
    Example(
        "percent and flat together",
        [{**PCT20, "flat": 500}],
        [("commission", "prt_1", 24_500,
          f"20 % of €1,200.00 invoice INV-7 + €5.00 flat for Acme, {CITE} 1 = €245.00; {HOLD}")],
    ),
    Example(
        "rounded once with the program's rounding: 12.5 % of €9.99 is €1.24875",
        [{"trigger": "invoice_paid", "percent_bp": 1250}],
        [("commission", "prt_1", 124, f"12.5 % of €9.99 invoice INV-7 for Acme, {CITE} 1 = €1.24; {HOLD}")],
        event={"amount": 999},
        program={"rounding": "down"},
    ),
    Example(
        "recurring: month 3 of 12 (the issue's own example)",
        [{"trigger": "signup", "flat": 500}, {**PCT20, "recurring_months": 12}],
        [("commission", "prt_1", 24_000, "20 % of €1,200.00 invoice INV-7 for Acme (first 12 months, month 3 of 12), "
          f"{CITE} 2 = €240.00; {HOLD}")],
    ),
    Example(
        "recurring: month 12 of 12 still pays",
        [{**PCT20, "recurring_months": 12}],
        [("commission", "prt_1", 24_000, "20 % of €1,200.00 invoice INV-7 for Acme (first 12 months, month 12 of 12), "
          f"{CITE} 1 = €240.00; {HOLD}")],
        customer={"months_since_first": 11},
    ),
    Example("recurring: nothing in month 13", [{**PCT20, "recurring_months": 12}], [],
            customer={"months_since_first": 12}),
    Example(
        "recurring forever (null): month 41 pays",
        [PCT20],
        [("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €240.00; {HOLD}")],
        customer={"months_since_first": 40},
    ),
    Example(
        "an expired recurring rule lets the lower-priority rule pay",
        [{**PCT20, "recurring_months": 12, "priority": 1}, {"trigger": "invoice_paid", "percent_bp": 500}],
        [("commission", "prt_1", 6_000, f"5 % of €1,200.00 invoice INV-7 for Acme, {CITE} 2 = €60.00; {HOLD}")],
        customer={"months_since_first": 12},
    ),
    Example(
        "tiers, marginal: the 10th customer of the quarter is still in the 20 % band",
        [{"trigger": "invoice_paid", "tiers": TIERS, "tier_period": "quarter"}],
        [("commission", "prt_1", 24_000, "20 % of €1,200.00 invoice INV-7 (tier from 0 customers: customer 10 this "
          f"quarter) for Acme, {CITE} 1 = €240.00; {HOLD}")],
        partner={"period_customers": {"quarter": 9}},
    ),
    Example(
        "tiers, marginal: the 11th customer gets 30 %, earlier events untouched",
        [{"trigger": "invoice_paid", "tiers": TIERS, "tier_period": "quarter"}],
        [("commission", "prt_1", 36_000, "30 % of €1,200.00 invoice INV-7 (tier from 10 customers: customer 11 this "
          f"quarter) for Acme, {CITE} 1 = €360.00; {HOLD}")],
        partner={"period_customers": {"quarter": 10}, "earlier_in_period": {1: [EarlierLine(100_000, 20_000)]}},
    ),
    Example(
        "tiers, retroactive: 30 % now plus a true-up lifting the period's earlier events to 30 %",
        [{"trigger": "invoice_paid", "tiers": TIERS, "tier_period": "quarter", "tier_mode": "retroactive"}],
        [
            ("commission", "prt_1", 36_000, "30 % of €1,200.00 invoice INV-7 (tier from 10 customers: customer 11 "
             f"this quarter) for Acme, {CITE} 1 = €360.00; {HOLD}"),
            ("true_up", "prt_1", 15_000, "true-up to 30 % on 2 earlier event(s) this quarter (base €1,500.00, earned "
             f"€300.00) on reaching the tier with customer 11, {CITE} 1 = €150.00; {HOLD}"),
        ],
        partner={"period_customers": {"quarter": 10},
                 "earlier_in_period": {1: [EarlierLine(100_000, 20_000), EarlierLine(50_000, 10_000)]}},
    ),
    Example(
        "tiers, retroactive: earlier events already lifted are not paid twice",
        [{"trigger": "invoice_paid", "tiers": TIERS, "tier_period": "quarter", "tier_mode": "retroactive"}],
        [("commission", "prt_1", 36_000, "30 % of €1,200.00 invoice INV-7 (tier from 10 customers: customer 12 "
          f"this quarter) for Acme, {CITE} 1 = €360.00; {HOLD}")],
        partner={"period_customers": {"quarter": 11}, "earlier_in_period": {1: [EarlierLine(100_000, 30_000)]}},
    ),
    Example(
        "cap per event",
        [{**PCT20, "caps": {"per_event": 10_000}}],
        [("commission", "prt_1", 10_000, "20 % of €1,200.00 invoice INV-7 for Acme, "
          f"{CITE} 1 = €240.00, capped at €100.00 (per-event cap); {HOLD}")],
    ),
    Example(
        "cap per customer: €100.00 less €40.00 already paid on Acme",
        [{**PCT20, "caps": {"per_customer": 10_000}}],
        [("commission", "prt_1", 6_000, "20 % of €1,200.00 invoice INV-7 for Acme, "
          f"{CITE} 1 = €240.00, capped at €60.00 (per-customer cap); {HOLD}")],
        partner={"paid_to_customer": {1: 4_000}},
    ),
    Example("cap per customer used up: no line, never a negative one", [{**PCT20, "caps": {"per_customer": 10_000}}],
            [], partner={"paid_to_customer": {1: 12_000}}),
    Example(
        "cap per partner per month: €500.00 less €450.00 earned this month",
        [{**PCT20, "caps": {"per_partner_period": 50_000, "period": "month"}}],
        [("commission", "prt_1", 5_000, "20 % of €1,200.00 invoice INV-7 for Acme, "
          f"{CITE} 1 = €240.00, capped at €50.00 (per-partner cap for the month); {HOLD}")],
        partner={"earned_in_cap_period": {1: 45_000}},
    ),
    Example(
        "the tighter of two caps names itself",
        [{**PCT20, "caps": {"per_event": 20_000, "per_customer": 30_000}}],
        [("commission", "prt_1", 15_000, "20 % of €1,200.00 invoice INV-7 for Acme, "
          f"{CITE} 1 = €240.00, capped at €150.00 (per-customer cap); {HOLD}")],
        partner={"paid_to_customer": {1: 15_000}},
    ),
    Example(
        "bonus: the 5th customer's first payment brings the first-5-customers bonus, once",
        [PCT20, {"trigger": "invoice_paid", "bonus": {"first_customers": 5, "amount": 50_000}}],
        [
            ("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €240.00; {HOLD}"),
            ("bonus", "prt_1", 50_000, f"bonus for the first 5 customers (Acme is customer 5), {CITE} 2 = €500.00; "
             f"{HOLD}"),
        ],
        customer={"first_payment": True},
        partner={"customers_before": 4},
    ),
    Example(
        "bonus: not again for the 6th customer",
        [PCT20, {"trigger": "invoice_paid", "bonus": {"first_customers": 5, "amount": 50_000}}],
        [("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €240.00; {HOLD}")],
        customer={"first_payment": True},
        partner={"customers_before": 5},
    ),
    Example(
        "bonus: not on the 5th customer's second invoice",
        [{"trigger": "invoice_paid", "bonus": {"first_customers": 5, "amount": 50_000}}],
        [],
        customer={"first_payment": False},
        partner={"customers_before": 4},
    ),
    Example(
        "two-tier: the recruiter earns 10 % of the recruit's commission, on a line of its own",
        [{**PCT20, "two_tier_percent_bp": 1000}],
        [
            ("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €240.00; {HOLD}"),
            ("two_tier", "prt_r", 2_400, "10 % of €240.00 earned by recruited partner prt_1 on invoice INV-7 for Acme, "
             f"{CITE} 1 = €24.00; {HOLD}"),
        ],
        partner={"recruiter_id": "prt_r"},
    ),
    Example("two-tier without a recruiter: only the commission", [{**PCT20, "two_tier_percent_bp": 1000}],
            [("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €240.00; {HOLD}")]),
    Example(
        "a rule's own hold days",
        [{**PCT20, "hold_days": 14}],
        [("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €240.00; "
          "on hold until 16 Mar 2026 (refund window 14 days)")],
    ),
    Example(
        "priority: the higher-priority rule for product pro pays, the general one does not",
        [{**PCT20, "percent_bp": 3000, "priority": 1, "conditions": {"products": ["pro"]}}, PCT20],
        [("commission", "prt_1", 36_000, f"30 % of €1,200.00 invoice INV-7 for Acme, {CITE} 1 = €360.00; {HOLD}")],
    ),
    Example(
        "priority: for another product the general rule pays",
        [{**PCT20, "percent_bp": 3000, "priority": 1, "conditions": {"products": ["pro"]}}, PCT20],
        [("commission", "prt_1", 24_000, f"20 % of €1,200.00 invoice INV-7 for Acme, {CITE} 2 = €240.00; {HOLD}")],
        event={"product": "basic"},
    ),
    Example(
        "no customer name: the external id",
        [PCT20],
        [("commission", "prt_1", 24_000,
          f"20 % of €1,200.00 invoice INV-7 for customer acme, {CITE} 1 = €240.00; {HOLD}")],
        event={"customer_name": None},
    ),
    Example("an inactive partner earns nothing", [PCT20], [], partner={"status": "suspended"}),
    Example("an inactive partner earns nothing without a plan either", None, [], partner={"status": "suspended"}),
]  # fmt: skip


def _run(example: Example) -> list[tuple[str, str, int, str]]:
    partner = {"partner_id": "prt_1", "status": "active", **example.partner}
    program = replace(PROGRAM, **example.program)
    return summary(
        run(
            example.rules,
            event=invoice(**example.event),
            customer=CustomerContext(**example.customer),
            partner=PartnerContext(**partner),
            program=program,
        )
    )


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_worked_example(example: Example) -> None:
    assert _run(example) == example.expected


MATCHING = {
    "products": {"products": ["basic", "pro"]},
    "skus": {"skus": ["pro-annual"]},
    "customer_countries": {"customer_countries": ["AT", "DE"]},
    "first_payment_only": {"first_payment_only": True},
    "min_amount": {"min_amount": 120_000},
    "partner_group_ids": {"partner_group_ids": ["grp_gold"]},
    "metadata_equals": {"metadata_equals": {"channel": "web"}},
}
NOT_MATCHING = {
    "products": {"products": ["basic"]},
    "skus": {"skus": ["pro-monthly"]},
    "customer_countries": {"customer_countries": ["FR"]},
    "first_payment_only": {"first_payment_only": True},
    "min_amount": {"min_amount": 120_001},
    "partner_group_ids": {"partner_group_ids": ["grp_silver"]},
    "metadata_equals": {"metadata_equals": {"channel": "partner"}},
}


@pytest.mark.parametrize("name", sorted(MATCHING))
def test_each_condition_pays_when_met_and_not_otherwise(name: str) -> None:
    partner = PartnerContext("prt_1", "active", group_id="grp_gold")
    met = run([{**PCT20, "conditions": MATCHING[name]}], partner=partner, customer=CustomerContext(first_payment=True))
    assert [x.draft.amount for x in met] == [24_000]
    unmet = run([{**PCT20, "conditions": NOT_MATCHING[name]}], partner=partner, customer=CustomerContext())
    assert unmet == []


def test_an_unknown_country_never_meets_a_country_condition() -> None:
    assert run([{**PCT20, "conditions": {"customer_countries": ["DE"]}}], event=invoice(customer_country=None)) == []


def test_metadata_must_equal_in_type_too() -> None:
    rules = [{**PCT20, "conditions": {"metadata_equals": {"seats": 1}}}]
    assert run(rules, event=invoice(metadata={"seats": "1"})) == []
    assert run(rules, event=invoice(metadata={"seats": True})) == []
    assert len(run(rules, event=invoice(metadata={"seats": 1}))) == 1


def test_another_trigger_pays_nothing() -> None:
    assert run([{"trigger": "deal_won", "percent_bp": 2000}]) == []


def test_a_converted_amount_is_the_base_and_the_rate_is_quoted() -> None:
    converted = convert(150_000, "JPY", "EUR", JPY_EUR)
    lines = run([PCT20], event=invoice(external_id="INV-8", amount=150_000, currency="JPY"), converted=converted)
    assert summary(lines) == [
        (
            "commission",
            "prt_1",
            18_300,
            "20 % of €915.00 invoice INV-8 for Acme (converted: ¥150,000 at 1 JPY = 0.0061 EUR (ECB reference rate, "
            f"2 Mar 2026)), {CITE} 1 = €183.00; {HOLD}",
        )
    ]
    assert (lines[0].draft.base_amount, lines[0].draft.currency) == (91_500, "EUR")


def test_an_amount_in_another_currency_without_a_conversion_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        run([PCT20], event=invoice(currency="USD"))
    assert caught.value.field == "converted"


def test_a_conversion_of_another_amount_is_refused() -> None:
    with pytest.raises(ValidationError) as caught:
        run([PCT20], event=invoice(amount=150_001, currency="JPY"), converted=convert(150_000, "JPY", "EUR", JPY_EUR))
    assert caught.value.field == "converted"


def test_lines_cite_the_plan_version_and_rule_and_carry_rate_base_and_hold() -> None:
    (line,) = run([{"trigger": "signup", "flat": 100}, {**PCT20, "hold_days": 14}])
    assert (line.plan_version_id, line.plan_name, line.plan_version, line.rule_number) == ("plv_1", "Standard", 4, 2)
    draft = line.draft
    assert (draft.rate_bp, draft.base_amount, draft.rounding, draft.status) == (2000, 120_000, "half_even", "pending")
    assert (draft.partner_id, draft.customer_id, draft.event_id) == ("prt_1", "cus_1", "evt_1")
    assert draft.program_id == "prg_1"
    assert draft.hold_until == T + timedelta(days=14)
    assert draft.id.startswith("com_")


def test_a_true_up_is_capped_by_what_is_left_of_the_period_cap() -> None:
    rule = {
        "trigger": "invoice_paid",
        "tiers": TIERS,
        "tier_period": "quarter",
        "tier_mode": "retroactive",
        "caps": {"per_partner_period": 100_000, "period": "quarter"},
    }
    partner = PartnerContext(
        "prt_1",
        "active",
        period_customers={"quarter": 10},
        earned_in_cap_period={1: 60_000},
        earlier_in_period={1: [EarlierLine(300_000, 60_000)]},
    )
    lines = run([rule], partner=partner)
    # €360.00 fits (€400.00 left); the €300.00 true-up only gets the remaining €40.00.
    assert [(x.draft.kind, x.draft.amount) for x in lines] == [("commission", 36_000), ("true_up", 4_000)]
    assert lines[1].draft.explanation.endswith(f"= €300.00, capped at €40.00 (per-partner cap for the quarter); {HOLD}")
