"""The customer record: status and lifetime revenue follow its events in the order they happened, and a
program's own event types are recorded like core ones."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.lifecycle import Fact, fold_all
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventIn, EventType
from partnerpay.events.service import record_event
from partnerpay.kit.errors import ValidationError
from partnerpay.programs.models import Program
from partnerpay.programs.service import update_program_settings
from tests import factories
from tests.conftest import T0


def _record(
    session: Session,
    program: Program,
    n: int,
    kind: str,
    *,
    amount: int | None = None,
    partner_id: str | None = None,
    meta: dict[str, Any] | None = None,
    customer: str = "cus_1",
) -> None:
    data = EventIn.model_validate(
        {
            "program_id": program.id,
            "type": kind,
            "external_id": f"e{n}",
            "occurred_at": (T0 + timedelta(days=n)).isoformat(),
            "customer_external_id": customer,
            "amount": amount,
            "currency": program.currency if amount is not None else None,
            "partner_id": partner_id,
            "metadata": meta,
        }
    )
    record_event(session, actor=SYSTEM, data=data, now=T0)


def _customer(session: Session, program: Program, external_id: str = "cus_1") -> Customer:
    found = session.scalar(
        select(Customer).where(Customer.program_id == program.id, Customer.external_id == external_id)
    )
    assert found is not None
    return found


def test_a_customer_moves_through_its_life(session: Session) -> None:
    program = factories.program(session, T0)
    steps: list[tuple[str, dict[str, Any], str, int]] = [
        ("signup", {}, "lead", 0),
        ("subscription_updated", {"meta": {"status": "trialing"}}, "trial", 0),
        ("invoice_paid", {"amount": 10_000}, "active", 10_000),
        ("subscription_updated", {"meta": {"status": "past_due"}}, "past_due", 10_000),
        ("invoice_paid", {"amount": 10_000}, "active", 20_000),
        ("subscription_canceled", {}, "canceled", 20_000),
        ("invoice_paid", {"amount": 5_000}, "active", 25_000),  # re-subscribed
        ("refund", {"amount": 25_000}, "refunded", 0),
        ("subscription_canceled", {}, "refunded", 0),  # a cancellation does not hide the refund
    ]
    for n, (kind, extra, status, revenue) in enumerate(steps, start=1):
        _record(session, program, n, kind, **extra)
        customer = _customer(session, program)
        assert (customer.status, customer.lifetime_revenue) == (status, revenue), kind
    assert customer.first_paid_at == T0 + timedelta(days=3)
    assert customer.last_event_at == T0 + timedelta(days=len(steps))
    assert customer.status_changed_at == T0 + timedelta(days=8)


KINDS = st.sampled_from(
    ["signup", "invoice_paid", "subscription_canceled", "trialing", "past_due", "active", "custom_x"]
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(KINDS, min_size=1, max_size=7), order=st.randoms(use_true_random=False))
def test_any_arrival_order_gives_the_record_of_the_time_order(
    session_factory: sessionmaker[Session], kinds: list[str], order: Any
) -> None:
    with session_factory() as session:
        program = factories.program(session, T0)
        update_program_settings(
            session, actor=SYSTEM, program_id=program.id, changes={"custom_event_types": ["custom_x"]}, now=T0
        )
        steps = list(enumerate(kinds, start=1))
        arrival = steps[:]
        order.shuffle(arrival)
        customer_id = f"cus_{order.random()}"
        for n, kind in arrival:
            if kind in ("trialing", "past_due", "active"):
                _record(session, program, n, "subscription_updated", meta={"status": kind}, customer=customer_id)
            else:
                _record(
                    session,
                    program,
                    n,
                    kind,
                    amount=1_000 * n if kind == "invoice_paid" else None,
                    customer=customer_id,
                )
        got = _customer(session, program, customer_id)
        facts = [
            Fact(e.type, e.occurred_at, e.amount, e.metadata_json)
            for e in session.scalars(
                select(Event).where(Event.customer_id == got.id).order_by(Event.occurred_at, Event.external_id)
            )
        ]
        expected = fold_all(facts)
        assert (got.status, got.lifetime_revenue, got.first_paid_at, got.last_event_at, got.status_changed_at) == (
            expected.status.value,
            expected.revenue,
            expected.first_paid_at,
            expected.last_event_at,
            expected.status_changed_at,
        )
        session.rollback()


class TestCustomEventTypes:
    def test_a_program_records_its_own_types_and_nothing_else(self, session: Session) -> None:
        program = factories.program(session, T0)
        partner = factories.partner(session, program, T0)
        with pytest.raises(ValidationError) as refused:
            _record(session, program, 1, "trial_extended", partner_id=partner.id)
        assert refused.value.field == "type" and "custom_event_types" in refused.value.message
        update_program_settings(
            session, actor=SYSTEM, program_id=program.id, changes={"custom_event_types": ["trial_extended"]}, now=T0
        )
        _record(session, program, 1, "trial_extended", partner_id=partner.id, amount=500)
        event = session.scalar(select(Event).where(Event.program_id == program.id))
        assert event is not None and (event.type, event.amount, event.partner_id) == ("trial_extended", 500, partner.id)
        # A custom type earns nothing by itself until a plan rule names it (issue 6).
        assert session.scalar(select(func.count()).select_from(CommissionLine)) == 0
        assert _customer(session, program).status == "lead"

    @pytest.mark.parametrize(
        ("value", "words"),
        [
            (["invoice_paid"], "core event type"),
            (["Trial Extended"], "not a type name"),
            (["a", "a"], "not a type name"),
            (["ok_one", "ok_one"], "appears twice"),
            ("trial", "list"),
        ],
    )
    def test_bad_custom_types_are_refused_naming_the_field(self, session: Session, value: Any, words: str) -> None:
        program = factories.program(session, T0)
        with pytest.raises(ValidationError) as refused:
            update_program_settings(
                session, actor=SYSTEM, program_id=program.id, changes={"custom_event_types": value}, now=T0
            )
        assert refused.value.field == "custom_event_types" and words in refused.value.message

    def test_a_type_name_that_is_not_snake_case_is_a_422_on_the_api_schema(self) -> None:
        base = {"program_id": "p", "external_id": "x", "occurred_at": T0.isoformat(), "customer_external_id": "c"}
        with pytest.raises(ValueError, match="custom type name"):
            EventIn.model_validate({**base, "type": "Bad Type"})
        assert EventIn.model_validate({**base, "type": "invoice_paid"}).type is EventType.INVOICE_PAID
