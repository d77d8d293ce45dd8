"""Hypothesis over a real database (both backends): any interleaving of invoices, partial refunds, chargebacks,
won chargebacks and a cancellation for one customer, recorded through record_event under a plan, leaves

(a) the sum of the customer's lines equal to the plan's result on the net revenue: for each invoice,
    percent_of(invoice) less round(line * refunded / invoice) for the refunds within the rule's clawback
    window (a won chargeback counting as not refunded), and nothing of an invoice paid within clawback_days
    before the cancellation; the same for the recruiter's two-tier share;
(b) what is taken back of any line between nothing and the line;
(c) the ledger balanced and tied out (partnerpay verify).

The expected figures are worked out here from the events alone, not with the code under test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.kit.money import Rounding, percent_of, round_ratio
from partnerpay.ledger.verify import verify
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.service import create_plan, publish
from tests import factories

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
_programs = count()

PLANS: dict[str, dict[str, Any]] = {
    "percent": {"trigger": "invoice_paid", "percent_bp": 2000, "clawback_days": 30},
    "two_tier": {"trigger": "invoice_paid", "percent_bp": 1550, "two_tier_percent_bp": 1000, "clawback_days": 45},
}

# One step: (kind, hours after the previous step, a size 1..1000 in thousandths, which event it names).
step = st.tuples(
    st.sampled_from(["invoice", "invoice", "refund", "chargeback", "won", "cancel"]),
    st.integers(1, 24 * 20),
    st.integers(1, 1000),
    st.integers(0, 10),
)


@dataclass
class Invoice:
    external_id: str
    amount: int
    at: datetime
    refunded: int = 0  # net: refunds and chargebacks less won chargebacks
    clawable: int = 0  # the part of `refunded` taken back within the rule's window
    canceled: bool = False


@dataclass
class Model:
    window: timedelta
    invoices: list[Invoice] = field(default_factory=list)
    # chargeback external id -> its allocations (invoice, amount, within the window) and its time
    chargebacks: dict[str, tuple[list[tuple[Invoice, int, bool]], datetime]] = field(default_factory=dict)

    def allocate(self, amount: int, named: Invoice | None, at: datetime) -> list[tuple[Invoice, int, bool]]:
        order = [named] if named else sorted(self.invoices, key=lambda i: i.at, reverse=True)
        out, rest = [], amount
        for inv in order:
            take = min(rest, inv.amount - inv.refunded)
            if take > 0:
                inside = at - inv.at <= self.window
                inv.refunded += take
                inv.clawable += take if inside else 0
                out.append((inv, take, inside))
                rest -= take
        assert rest == 0
        return out


def run(
    session_factory: sessionmaker[Session], plan: str, rounding: str, steps: list[tuple[str, int, int, int]]
) -> None:
    session = session_factory()
    try:
        _run(session, plan, rounding, steps)
    finally:
        session.rollback()
        session.close()


def _run(session: Session, plan: str, rounding: str, steps: list[tuple[str, int, int, int]]) -> None:
    n = next(_programs)
    program = factories.program(session, T0, name=f"P{n}", hold_days=10, default_percent_bp=1000, rounding=rounding)
    partner = factories.partner(session, program, T0, name="Seller")
    recruiter = factories.partner(session, program, T0, name="Recruiter")
    partner.recruited_by_id = recruiter.id
    session.flush()
    rule = PLANS[plan]
    made, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name="Std", rules=[rule], now=T0)
    publish(session, actor=SYSTEM, plan_id=made.id, now=T0)
    assign_plan(session, actor=SYSTEM, plan_id=made.id, scope="program", now=T0, effective_from=T0 - HOUR)
    model = Model(window=timedelta(days=rule["clawback_days"]))
    at, ids = T0, count()

    def record(kind: str, amount: int | None = None, original: str | None = None) -> str:
        external = f"e{next(ids)}"
        data = EventIn(
            program_id=program.id,
            type=kind,
            external_id=external,
            occurred_at=at,
            customer_external_id="cust",
            partner_id=partner.id if kind == "invoice_paid" and not model.invoices else None,
            amount=amount,
            currency=program.currency if amount is not None else None,
            original_external_id=original,
        )
        record_event(session, actor=SYSTEM, data=data, now=at)
        return external

    for kind, hours, size, pick in [("invoice", 1, 500, 0), *steps]:
        at += timedelta(hours=hours)
        refundable = sum(i.amount - i.refunded for i in model.invoices)
        if kind == "invoice":
            amount = size * 997
            model.invoices.append(Invoice(record("invoice_paid", amount), amount, at))
        elif kind in ("refund", "chargeback") and refundable > 0:
            named = model.invoices[pick % len(model.invoices)] if pick % 3 == 0 else None
            room = named.amount - named.refunded if named else refundable
            if room == 0:
                continue
            amount = max(1, room * size // 1000)
            external = record(kind, amount, named.external_id if named else None)
            shares = model.allocate(amount, named, at)
            if kind == "chargeback":
                model.chargebacks[external] = (shares, at)
        elif kind == "won" and model.chargebacks:
            external = sorted(model.chargebacks)[pick % len(model.chargebacks)]
            shares, _ = model.chargebacks.pop(external)
            record("chargeback_reversed", sum(s for _, s, _ in shares), external)
            for inv, taken, inside in shares:
                inv.refunded -= taken
                inv.clawable -= taken if inside else 0
        elif kind == "cancel" and model.invoices:
            record("subscription_canceled")
            for inv in model.invoices:
                if at - inv.at <= model.window:
                    inv.canceled = True
    session.flush()
    _check(session, program.id, model, rule, Rounding(rounding))


def _expected(model: Model, rule: dict[str, Any], rounding: Rounding) -> int:
    total = 0
    for inv in model.invoices:
        commission = percent_of(inv.amount, rule["percent_bp"], rounding)
        shares = [commission]
        if rule.get("two_tier_percent_bp"):
            shares.append(percent_of(commission, rule["two_tier_percent_bp"], rounding))
        for line in shares:
            kept = 0 if inv.canceled else line - round_ratio(line * inv.clawable, inv.amount, rounding)
            total += kept
    return total


def _check(session: Session, program_id: str, model: Model, rule: dict[str, Any], rounding: Rounding) -> None:
    customer = session.scalar(select(Customer).where(Customer.program_id == program_id))
    assert customer is not None
    lines = session.scalars(
        select(CommissionLine).where(CommissionLine.customer_id == customer.id, CommissionLine.status != "rejected")
    ).all()
    # (a) the plan's result on the net revenue, to the cent
    assert sum(x.amount for x in lines) == _expected(model, rule, rounding)
    # (b) taken back of each earning line: between nothing and the line
    counter, further = aliased(CommissionLine), aliased(CommissionLine)
    for line in (x for x in lines if x.kind in ("commission", "two_tier")):
        first = session.scalar(
            select(func.coalesce(func.sum(counter.amount), 0)).where(counter.reverses_line_id == line.id)
        )
        second = session.scalar(
            select(func.coalesce(func.sum(further.amount), 0))
            .join(counter, counter.id == further.reverses_line_id)
            .where(counter.reverses_line_id == line.id)
        )
        taken = -int(first or 0) - int(second or 0)
        assert 0 <= taken <= line.amount, (line.id, taken, line.amount)
    # (c) the ledger ties out
    report = verify(session)
    assert report.ok, report.problems


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plan=st.sampled_from(sorted(PLANS)),
    rounding=st.sampled_from([r.value for r in Rounding]),
    steps=st.lists(step, max_size=12),
)
def test_any_interleaving_leaves_the_plans_result_on_net_revenue(
    session_factory: sessionmaker[Session], plan: str, rounding: str, steps: list[tuple[str, int, int, int]]
) -> None:
    run(session_factory, plan, rounding, steps)
