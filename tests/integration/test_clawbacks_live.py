"""Clawbacks under plans on a real database (issue 6 §5), recorded through record_event: proportional refunds
citing the rule, which kinds are clawed, clawback windows and waivers (said on the partner's timeline),
cancellations within the window, and won chargebacks reinstating."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import ROLE_SCOPES, SYSTEM, Actor, ActorType
from partnerpay.commissions.decisions import approve_lines, reject_lines
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, RefundAllocation
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.kit.errors import ValidationError
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.ledger.verify import verify
from partnerpay.partners.models import Partner, PartnerActivity
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.service import create_plan, publish
from partnerpay.programs.models import Program
from tests import factories

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
FINANCE = Actor(ActorType.STAFF, "usr_finance", ROLE_SCOPES["finance"])


@pytest.fixture
def program(session: Session) -> Program:
    return factories.program(session, T0, hold_days=30, default_percent_bp=1000)


@pytest.fixture
def partner(session: Session, program: Program) -> Partner:
    return factories.partner(session, program, T0, name="Acme")


def on_plan(session: Session, program: Program, rules: list[dict[str, Any]]) -> str:
    plan, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name="Standard", rules=rules, now=T0)
    version = publish(session, actor=SYSTEM, plan_id=plan.id, now=T0)
    assign_plan(session, actor=SYSTEM, plan_id=plan.id, scope="program", now=T0, effective_from=T0 - DAY)
    return version.id


def record(
    session: Session,
    program: Program,
    external_id: str,
    *,
    type: str = "invoice_paid",
    amount: int | None = None,
    at: datetime = T0,
    customer: str = "c1",
    partner: Partner | None = None,
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


def timeline(session: Session, partner: Partner) -> list[str]:
    return list(
        session.scalars(
            select(PartnerActivity.text)
            .where(PartnerActivity.partner_id == partner.id, PartnerActivity.kind == "commission.clawback_kept")
            .order_by(PartnerActivity.at, PartnerActivity.id)
        )
    )


def net(session: Session, partner: Partner) -> int:
    total = session.scalar(
        select(func.coalesce(func.sum(CommissionLine.amount), 0)).where(
            CommissionLine.partner_id == partner.id, CommissionLine.status != "rejected"
        )
    )
    return int(total or 0)


def test_a_partial_refund_claws_commission_and_two_tier_in_proportion_citing_the_rule(
    session: Session, program: Program, partner: Partner
) -> None:
    recruit = factories.partner(session, program, T0, name="Recruit")
    recruit.recruited_by_id = partner.id
    session.flush()
    version_id = on_plan(
        session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "two_tier_percent_bp": 1000}]
    )
    made = record(session, program, "in1", amount=12_345, partner=recruit)
    assert [(x.kind, x.amount) for x in made] == [("commission", 2469), ("two_tier", 247)]
    back = record(session, program, "re1", type="refund", amount=4_115, at=T0 + DAY)  # a third
    assert [(x.partner_id, x.kind, x.amount) for x in back] == [
        (recruit.id, "clawback", -823),  # 2469 / 3 = 823
        (partner.id, "clawback", -82),  # 247 / 3 = 82.33 -> 82
    ]
    assert {(x.plan_version_id, x.rule_number) for x in back} == {(version_id, 1)}
    assert [x.reverses_line_id for x in back] == [x.id for x in made]
    assert back[0].explanation == (
        "Refund re1 took back €41.15 (€41.15 of €123.45 so far) (no original given: applied to the customer's "
        f"paid events, newest first); claws back €8.23 of line {made[0].id} (€24.69) = -€8.23, "
        "plan Standard v1 rule 1"
    )
    rest = record(session, program, "re2", type="refund", amount=8_230, at=T0 + 2 * DAY)
    assert [x.amount for x in rest] == [-1646, -165]  # the rest, to the cent: nothing left of either line
    assert net(session, recruit) == 0 and net(session, partner) == 0
    assert verify(session).ok


def test_true_ups_and_bonuses_are_not_clawed_by_a_refund(session: Session, program: Program, partner: Partner) -> None:
    on_plan(
        session,
        program,
        [{"trigger": "invoice_paid", "percent_bp": 1000, "bonus": {"first_customers": 1, "amount": 5000}}],
    )
    made = record(session, program, "in1", amount=10_000, partner=partner)
    assert [(x.kind, x.amount) for x in made] == [("commission", 1000), ("bonus", 5000)]
    back = record(session, program, "re1", type="refund", amount=10_000, at=T0 + DAY)
    assert [(x.kind, x.amount, x.reverses_line_id) for x in back] == [("clawback", -1000, made[0].id)]
    assert net(session, partner) == 5000  # the bonus was for reaching a first customer, which a refund does not undo


def test_a_refund_after_the_rules_clawback_window_keeps_the_commission_and_says_so(
    session: Session, program: Program, partner: Partner
) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "clawback_days": 60}])
    [line] = record(session, program, "in1", amount=10_000, partner=partner)
    [inside] = record(session, program, "re1", type="refund", amount=1_000, at=T0 + 60 * DAY)
    assert inside.amount == -200
    assert record(session, program, "re3", type="refund", amount=5_000, at=T0 + 61 * DAY) == []
    assert timeline(session, partner) == [
        "refund re3 after the 60-day clawback window of plan Standard v1 rule 1: commission kept"
    ]
    audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "commission.clawback_kept")).one()
    assert audit.after is not None and audit.after["lines"] == [line.id]
    # The money is still refunded: the allocation records it, only the commission stays.
    refunded = session.scalar(select(func.sum(RefundAllocation.amount)))
    assert refunded == 6_000 and net(session, partner) == 1_800


def test_the_default_rate_claws_back_whenever_the_refund_comes(
    session: Session, program: Program, partner: Partner
) -> None:
    record(session, program, "in1", amount=10_000, partner=partner)
    [back] = record(session, program, "re1", type="refund", amount=10_000, at=T0 + 400 * DAY)
    assert (back.amount, back.plan_version_id, back.rule_number) == (-1000, None, None)


def test_the_waiver_keeps_commission_once_the_customer_has_paid_long_enough(
    session: Session, program: Program, partner: Partner
) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "waive_clawback_after_days": 90}])
    record(session, program, "in1", amount=10_000, partner=partner)
    record(session, program, "in2", amount=10_000, at=T0 + 85 * DAY)
    [early] = record(session, program, "re1", type="refund", amount=5_000, at=T0 + 90 * DAY, original_external_id="in2")
    assert early.amount == -1000  # 90 days of paying: not more than 90 yet
    assert (
        record(session, program, "re2", type="refund", amount=5_000, at=T0 + 91 * DAY, original_external_id="in2") == []
    )
    assert timeline(session, partner) == [
        "refund re2 after the customer paid for more than 90 days (clawback waived) of plan Standard v1 rule 1: "
        "commission kept"
    ]


def test_a_cancellation_claws_back_in_full_the_lines_within_the_window_before_it(
    session: Session, program: Program, partner: Partner
) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "clawback_days": 30}])
    [old] = record(session, program, "in1", amount=10_000, partner=partner)
    [recent] = record(session, program, "in2", amount=10_001, at=T0 + 40 * DAY)
    [part] = record(session, program, "re1", type="refund", amount=5_000, at=T0 + 41 * DAY, original_external_id="in2")
    assert part.amount == -1000  # 2000.2 -> 2000 earned; half refunded
    [churn] = record(session, program, "cx1", type="subscription_canceled", at=T0 + 50 * DAY)
    assert (churn.amount, churn.reverses_line_id, churn.rule_number) == (-1000, recent.id, 1)
    assert churn.explanation == (
        f"Cancellation cx1 30 days or less after in2 (10 days): claws back €10.00 of line {recent.id} (€20.00, "
        "less €10.00 taken back before) = -€10.00, plan Standard v1 rule 1"
    )
    assert net(session, partner) == old.amount  # the payment 50 days before the cancellation was earned
    # Nothing is left to take back of in2: a later refund of it claws nothing more.
    assert (
        record(session, program, "re2", type="refund", amount=5_001, at=T0 + 51 * DAY, original_external_id="in2") == []
    )
    assert verify(session).ok


def test_a_cancellation_claws_nothing_without_a_clawback_window(
    session: Session, program: Program, partner: Partner
) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000}])
    record(session, program, "in1", amount=10_000, partner=partner)
    assert record(session, program, "cx1", type="subscription_canceled", at=T0 + DAY) == []


def test_a_won_chargeback_reinstates_the_clawback_and_the_money_counts_as_paid_again(
    session: Session, program: Program, partner: Partner
) -> None:
    version_id = on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000}])
    [line] = record(session, program, "in1", amount=10_000, partner=partner)
    [clawback] = record(session, program, "cb1", type="chargeback", amount=10_000, at=T0 + DAY)
    assert clawback.amount == -2000
    [back] = record(
        session, program, "cb1-won", type="chargeback_reversed", amount=10_000, at=T0 + 20 * DAY,
        original_external_id="cb1",
    )  # fmt: skip
    assert (back.kind, back.amount, back.reverses_line_id) == ("reinstatement", 2000, clawback.id)
    assert (back.plan_version_id, back.rule_number, back.status) == (version_id, 1, "pending")
    assert back.explanation == (
        f"Chargeback cb1 won (cb1-won): gives back €20.00 of clawback {clawback.id} (-€20.00) of line {line.id}, "
        "plan Standard v1 rule 1"
    )
    assert net(session, partner) == 2000
    assert session.scalar(select(func.sum(RefundAllocation.amount))) == 0
    customer = session.scalar(select(Customer).where(Customer.external_id == "c1"))
    assert customer is not None and (customer.lifetime_revenue, customer.status) == (10_000, "active")
    assert ledger.balance(session, program.id, partner.id, AccountKind.PARTNER_PAYABLE, "EUR") == -2000
    # The whole payment is refundable again, and the chargeback cannot be reversed twice.
    [again] = record(session, program, "re1", type="refund", amount=10_000, at=T0 + 21 * DAY)
    assert again.amount == -2000
    with pytest.raises(ValidationError) as twice:
        record(session, program, "cb1-won2", type="chargeback_reversed", amount=10_000, original_external_id="cb1")
    assert twice.value.message == "chargeback cb1 was already reversed by cb1-won"
    assert verify(session).ok


def test_a_won_chargeback_must_name_a_chargeback_and_give_back_all_of_it(
    session: Session, program: Program, partner: Partner
) -> None:
    record(session, program, "in1", amount=10_000, partner=partner)
    record(session, program, "cb1", type="chargeback", amount=4_000, at=T0 + DAY)
    with pytest.raises(ValidationError) as wrong:
        record(session, program, "x1", type="chargeback_reversed", amount=4_000, original_external_id="in1")
    assert (wrong.value.field, wrong.value.message) == (
        "original_external_id",
        "no chargeback 'in1' for customer c1",
    )
    with pytest.raises(ValidationError) as part:
        record(session, program, "x2", type="chargeback_reversed", amount=1_000, original_external_id="cb1")
    assert part.value.field == "amount"
    assert part.value.message == "a won chargeback gives back the whole chargeback cb1 (€40.00), not €10.00"


def test_after_a_cancellation_a_won_chargeback_gives_nothing_back(
    session: Session, program: Program, partner: Partner
) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "clawback_days": 30}])
    record(session, program, "in1", amount=10_000, partner=partner)
    [cb] = record(session, program, "cb1", type="chargeback", amount=5_000, at=T0 + DAY)
    [churn] = record(session, program, "cx1", type="subscription_canceled", at=T0 + 2 * DAY)
    assert (cb.amount, churn.amount) == (-1000, -1000)
    assert record(session, program, "w1", type="chargeback_reversed", amount=5_000, at=T0 + 3 * DAY,
                  original_external_id="cb1") == []  # fmt: skip
    assert net(session, partner) == 0


def test_an_unpaid_reinstatement_follows_its_original_when_approved_or_rejected(
    session: Session, program: Program, partner: Partner
) -> None:
    [line] = record(session, program, "in1", amount=10_000, partner=partner)
    [claw] = record(session, program, "cb1", type="chargeback", amount=10_000, at=T0 + DAY)
    [back] = record(session, program, "w1", type="chargeback_reversed", amount=10_000, at=T0 + 2 * DAY,
                    original_external_id="cb1")  # fmt: skip
    assert (claw.status, back.status, back.hold_until) == ("pending", "pending", line.hold_until)
    approve_lines(session, actor=FINANCE, ids=[line.id], now=T0 + 3 * DAY)
    for x in (line, claw, back):
        session.refresh(x)
    assert (line.status, claw.status, back.status) == ("approved", "approved", "approved")
    reject_lines(session, actor=FINANCE, ids=[line.id], reason="fraud", now=T0 + 4 * DAY)
    for x in (line, claw, back):
        session.refresh(x)
    assert (line.status, claw.status, back.status) == ("rejected", "rejected", "rejected")
    assert net(session, partner) == 0
    assert verify(session).ok


def test_a_won_chargeback_gives_back_its_clawback_even_after_a_refund_outside_the_window(
    session: Session, program: Program, partner: Partner
) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "clawback_days": 30}])
    record(session, program, "in1", amount=10_000, partner=partner)
    [claw] = record(session, program, "cb1", type="chargeback", amount=5_000, at=T0 + 10 * DAY)
    assert record(session, program, "re1", type="refund", amount=5_000, at=T0 + 40 * DAY) == []  # after the window
    [back] = record(session, program, "w1", type="chargeback_reversed", amount=5_000, at=T0 + 50 * DAY,
                    original_external_id="cb1")  # fmt: skip
    # The late refund took money but no commission, so the whole clawback comes back.
    assert (claw.amount, back.amount) == (-1000, 1000)
    assert net(session, partner) == 2000


def test_a_won_chargeback_after_a_cancellation_that_found_nothing_left_gives_nothing_back(
    session: Session, program: Program, partner: Partner
) -> None:
    on_plan(session, program, [{"trigger": "invoice_paid", "percent_bp": 2000, "clawback_days": 30}])
    record(session, program, "in1", amount=10_000, partner=partner)
    [claw] = record(session, program, "cb1", type="chargeback", amount=10_000, at=T0 + DAY)
    assert record(session, program, "cx1", type="subscription_canceled", at=T0 + 2 * DAY) == []  # nothing left
    assert record(session, program, "w1", type="chargeback_reversed", amount=10_000, at=T0 + 3 * DAY,
                  original_external_id="cb1") == []  # fmt: skip
    assert claw.amount == -2000 and net(session, partner) == 0


def test_a_payment_adopted_later_keeps_what_a_won_chargeback_gave_back(
    session: Session, program: Program, partner: Partner
) -> None:
    record(session, program, "in1", amount=10_000)  # no partner yet
    record(session, program, "cb1", type="chargeback", amount=4_000, at=T0 + DAY)
    record(
        session, program, "w1", type="chargeback_reversed", amount=4_000, at=T0 + 2 * DAY, original_external_id="cb1"
    )
    record(session, program, "re1", type="refund", amount=1_000, at=T0 + 3 * DAY)
    adopted = record(session, program, "su1", type="signup", at=T0 + 4 * DAY, partner=partner)
    # The chargeback's share is taken, then given back down to what the refund still takes (100.00 of 1,000.00).
    assert sorted((x.kind, x.amount) for x in adopted) == [
        ("clawback", -400),
        ("commission", 1000),
        ("reinstatement", 300),
    ]
    assert net(session, partner) == 900  # 10 % of the 9,000.00 kept
    assert verify(session).ok
