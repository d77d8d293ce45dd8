"""Live evaluation on a real database: events recorded through record_event earn by the partner's published plan,
each line citing plan version and rule, with the partner's history (tiers, caps, bonuses, recurring months,
true-ups, two-tier) read from what was recorded before."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.partners.models import Partner
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.service import create_plan, publish
from partnerpay.programs.models import Program
from tests import factories

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)


@pytest.fixture
def program(session: Session) -> Program:
    return factories.program(session, T0, hold_days=30, default_percent_bp=1000)


@pytest.fixture
def partner(session: Session, program: Program) -> Partner:
    return factories.partner(session, program, T0, name="Acme")


def on_plan(session: Session, program: Program, rules: list[dict[str, Any]], name: str = "Standard") -> str:
    plan, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name=name, rules=rules, now=T0)
    version = publish(session, actor=SYSTEM, plan_id=plan.id, now=T0)
    assign_plan(session, actor=SYSTEM, plan_id=plan.id, scope="program", now=T0, effective_from=T0 - DAY)
    return version.id


def record(
    session: Session,
    program: Program,
    *,
    external_id: str,
    customer: str,
    partner: Partner | None = None,
    amount: int | None = None,
    type: str = "invoice_paid",
    at: datetime = T0,
    **extra: Any,
) -> list[CommissionLine]:
    data = EventIn(
        program_id=program.id,
        type=type,
        external_id=external_id,
        occurred_at=at,
        customer_external_id=customer,
        partner_id=partner.id if partner else None,
        amount=amount,
        currency=program.currency if amount is not None else None,
        **extra,
    )
    return record_event(session, actor=SYSTEM, data=data, now=at).commissions


def test_a_plan_line_cites_version_and_rule_and_posts_to_the_ledger(
    session: Session, program: Program, partner: Partner
) -> None:
    version_id = on_plan(
        session, program, [{"trigger": "signup", "flat": 5000}, {"trigger": "invoice_paid", "percent_bp": 2000}]
    )
    [signup] = record(session, program, external_id="su1", customer="c1", partner=partner, type="signup")
    [paid] = record(session, program, external_id="in1", customer="c1", amount=120_000, at=T0 + DAY)
    assert (signup.amount, signup.rule_number, signup.plan_version_id) == (5000, 1, version_id)
    assert (paid.amount, paid.rule_number, paid.base_amount, paid.rate_bp) == (24_000, 2, 120_000, 2000)
    assert paid.explanation.startswith(
        "20 % of €1,200.00 invoice in1 for customer c1, plan Standard v1 rule 2 = €240.00"
    )
    assert paid.hold_until == T0 + DAY + 30 * DAY
    assert ledger.balance(session, program.id, partner.id, AccountKind.PARTNER_PAYABLE, "EUR") == -29_000  # credit


def test_without_a_plan_the_default_rate_still_applies_and_signups_earn_nothing(
    session: Session, program: Program, partner: Partner
) -> None:
    assert record(session, program, external_id="su1", customer="c1", partner=partner, type="signup") == []
    [line] = record(session, program, external_id="in1", customer="c1", amount=10_000)
    assert (line.amount, line.rule_number, line.plan_version_id) == (1000, None, None)


def test_recurring_months_count_from_the_first_payment(session: Session, program: Program, partner: Partner) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "recurring_months": 2}])
    months = [T0, T0 + 31 * DAY, T0 + 62 * DAY]
    made = [
        record(session, program, external_id=f"in{i}", customer="c1", partner=partner, amount=10_000, at=at)
        for i, at in enumerate(months)
    ]
    assert [[x.amount for x in lines] for lines in made] == [[2000], [2000], []]
    assert "month 2 of 2" in made[1][0].explanation


def test_marginal_tier_by_customers_this_quarter(session: Session, program: Program, partner: Partner) -> None:
    tiers = [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 2, "percent_bp": 3000}]
    on_plan(session, program, [{"trigger": "invoice_paid", "tiers": tiers, "tier_period": "quarter"}])
    amounts = []
    for n in range(4):
        lines = record(
            session, program, external_id=f"in{n}", customer=f"c{n}", partner=partner, amount=10_000, at=T0 + n * DAY
        )
        amounts.append(lines[0].amount)
    # A second invoice of a counted customer does not count it twice.
    [again] = record(session, program, external_id="in-again", customer="c0", amount=10_000, at=T0 + 5 * DAY)
    # Next quarter starts again from the first tier.
    [april] = record(
        session, program, external_id="in-apr", customer="c9", partner=partner, amount=10_000, at=T0 + 90 * DAY
    )
    assert amounts == [1000, 1000, 3000, 3000]
    assert again.amount == 3000  # 3 other customers this quarter
    assert april.amount == 1000


def test_retroactive_tier_pays_a_true_up_once(session: Session, program: Program, partner: Partner) -> None:
    tiers = [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 2, "percent_bp": 2000}]
    rule = {"trigger": "invoice_paid", "tiers": tiers, "tier_period": "month", "tier_mode": "retroactive"}
    on_plan(session, program, [rule])
    made = [
        record(
            session, program, external_id=f"in{n}", customer=f"c{n}", partner=partner, amount=10_000, at=T0 + n * DAY
        )
        for n in range(4)
    ]
    kinds = [[(x.kind, x.amount) for x in lines] for lines in made]
    assert kinds == [
        [("commission", 1000)],
        [("commission", 1000)],
        [("commission", 2000), ("true_up", 2000)],  # lifts the two earlier 10 % lines to 20 %
        [("commission", 2000)],  # nothing left to lift
    ]


def test_caps_per_customer_and_one_time_bonus(session: Session, program: Program, partner: Partner) -> None:
    on_plan(
        session,
        program,
        [
            {
                "trigger": "invoice_paid",
                "percent_bp": 5000,
                "caps": {"per_customer": 7000},
                "bonus": {"first_customers": 2, "amount": 50_000},
            }
        ],
    )
    first = record(session, program, external_id="a1", customer="a", partner=partner, amount=10_000)
    second = record(session, program, external_id="a2", customer="a", amount=10_000, at=T0 + DAY)
    third = record(session, program, external_id="b1", customer="b", partner=partner, amount=10_000, at=T0 + 2 * DAY)
    assert [(x.kind, x.amount) for x in first] == [("commission", 5000)]
    assert [(x.kind, x.amount) for x in second] == [("commission", 2000)]  # 7,000 cap minus 5,000 already
    assert "per-customer cap" in second[0].explanation
    assert [(x.kind, x.amount) for x in third] == [("commission", 5000), ("bonus", 50_000)]


def test_two_tier_share_goes_to_the_recruiter(session: Session, program: Program, partner: Partner) -> None:
    recruit = factories.partner(session, program, T0, name="Recruit")
    recruit.recruited_by_id = partner.id
    session.flush()
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "two_tier_percent_bp": 1000}])
    lines = record(session, program, external_id="in1", customer="c1", partner=recruit, amount=10_000)
    assert [(x.partner_id, x.kind, x.amount) for x in lines] == [
        (recruit.id, "commission", 2000),
        (partner.id, "two_tier", 200),
    ]


def test_conditions_read_product_and_metadata(session: Session, program: Program, partner: Partner) -> None:
    on_plan(
        session,
        program,
        [{"trigger": "invoice_paid", "percent_bp": 2000, "conditions": {"metadata_equals": {"sku": "pro"}}}],
    )
    assert (
        record(
            session, program, external_id="x", customer="c1", partner=partner, amount=10_000, metadata={"sku": "basic"}
        )
        == []
    )
    [line] = record(session, program, external_id="y", customer="c1", amount=10_000, metadata={"sku": "pro"})
    assert line.amount == 2000


def test_a_line_of_a_published_version_stays_when_a_new_version_comes(
    session: Session, program: Program, partner: Partner
) -> None:
    first = on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000}])
    [old] = record(session, program, external_id="in1", customer="c1", partner=partner, amount=10_000)
    later = T0 + 10 * DAY
    plan, _ = create_plan(
        session,
        actor=SYSTEM,
        program_id=program.id,
        name="Better",
        rules=[{"trigger": "invoice_paid", "percent_bp": 3000}],
        now=later,
    )
    publish(session, actor=SYSTEM, plan_id=plan.id, now=later)
    assign_plan(session, actor=SYSTEM, plan_id=plan.id, scope="program", now=later, effective_from=later)
    [new] = record(session, program, external_id="in2", customer="c1", amount=10_000, at=later + DAY)
    stored = session.scalar(select(CommissionLine).where(CommissionLine.id == old.id))
    assert stored is not None and (stored.amount, stored.plan_version_id) == (2000, first)
    assert new.amount == 3000 and new.plan_version_id != first
