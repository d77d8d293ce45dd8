"""A customer's lifecycle: status (lead, trial, active, past_due, canceled, refunded), lifetime revenue
and first payment, folded from its events in the order they happened, not the order they arrived.

Webhooks arrive out of order, so the stored figures must not depend on arrival: an event later than
every earlier one folds onto the stored state (the common case, no reading); an event that happened
before the newest one already seen recomputes the customer from all its events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventType
from partnerpay.fx.service import to_program_currency
from partnerpay.programs.models import Program


class CustomerStatus(StrEnum):
    LEAD = "lead"  # known (signup, demo, deal) but never paid
    TRIAL = "trial"
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELED = "canceled"
    REFUNDED = "refunded"  # everything it paid was taken back (refunds, chargebacks)


# What a provider's subscription status means here (Stripe: trialing, active, past_due, unpaid, canceled, ...).
SUBSCRIPTION_STATUSES = {
    "trialing": CustomerStatus.TRIAL,
    "trial": CustomerStatus.TRIAL,
    "active": CustomerStatus.ACTIVE,
    "past_due": CustomerStatus.PAST_DUE,
    "unpaid": CustomerStatus.PAST_DUE,
    "canceled": CustomerStatus.CANCELED,
    "cancelled": CustomerStatus.CANCELED,
    "incomplete_expired": CustomerStatus.CANCELED,
}
REVERSING = frozenset({EventType.REFUND.value, EventType.CHARGEBACK.value})


@dataclass(frozen=True, slots=True)
class State:
    status: CustomerStatus = CustomerStatus.LEAD
    revenue: int = 0
    paid_ever: bool = False
    first_paid_at: datetime | None = None
    last_event_at: datetime | None = None
    status_changed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Fact:
    """What the fold needs of an event."""

    type: str
    occurred_at: datetime
    amount: int | None
    metadata: dict[str, Any] | None


def _next_status(state: State, fact: Fact, revenue: int) -> CustomerStatus:
    if fact.type == EventType.INVOICE_PAID.value:
        return CustomerStatus.ACTIVE  # a payment after a cancellation is a re-subscription
    if fact.type in REVERSING:
        return CustomerStatus.REFUNDED if revenue <= 0 else state.status
    if fact.type == EventType.CHARGEBACK_REVERSED.value:
        # A won chargeback pays again what the chargeback took back.
        return CustomerStatus.ACTIVE if state.status is CustomerStatus.REFUNDED and revenue > 0 else state.status
    if fact.type == EventType.SUBSCRIPTION_CANCELED.value:
        return state.status if state.status is CustomerStatus.REFUNDED else CustomerStatus.CANCELED
    if fact.type == EventType.SUBSCRIPTION_UPDATED.value:
        given = str((fact.metadata or {}).get("status", "")).lower()
        return SUBSCRIPTION_STATUSES.get(given, state.status)
    return state.status  # signups, demos, deals and custom types leave the status as it is


def fold(state: State, fact: Fact) -> State:
    revenue = state.revenue
    first = state.first_paid_at
    paid = state.paid_ever
    if fact.type == EventType.INVOICE_PAID.value and fact.amount:
        revenue += fact.amount
        paid = True
        first = fact.occurred_at if first is None or fact.occurred_at < first else first
    elif fact.type in REVERSING and fact.amount:
        revenue -= fact.amount
    elif fact.type == EventType.CHARGEBACK_REVERSED.value and fact.amount:
        revenue += fact.amount
    status = _next_status(state, fact, revenue)
    changed = fact.occurred_at if status is not state.status else state.status_changed_at
    last = fact.occurred_at if state.last_event_at is None else max(state.last_event_at, fact.occurred_at)
    return replace(
        state,
        status=status,
        revenue=revenue,
        paid_ever=paid,
        first_paid_at=first,
        last_event_at=last,
        status_changed_at=changed,
    )


def fold_all(facts: Iterable[Fact]) -> State:
    state = State()
    for fact in facts:
        state = fold(state, fact)
    return state


def _stored(customer: Customer) -> State:
    return State(
        status=CustomerStatus(customer.status or CustomerStatus.LEAD.value),
        revenue=customer.lifetime_revenue or 0,
        paid_ever=customer.first_paid_at is not None,
        first_paid_at=customer.first_paid_at,
        last_event_at=customer.last_event_at,
        status_changed_at=customer.status_changed_at,
    )


def _in_program_currency(
    session: Session, program: Program, amount: int | None, currency: str | None, at: datetime
) -> int | None:
    """Lifetime revenue is in the program currency: an amount in another is taken at its day's rate (the event
    was only accepted because that rate exists, events/currency.py)."""
    converted = to_program_currency(session, program, amount=amount, currency=currency, at=at)
    return amount if converted is None else converted.amount


def _history(session: Session, program: Program, customer_id: str) -> list[Fact]:
    # Same-instant events are ordered by external id: any fixed order that does not depend on arrival.
    rows = session.execute(
        select(Event.type, Event.occurred_at, Event.amount, Event.currency, Event.metadata_json)
        .where(Event.customer_id == customer_id)
        .order_by(Event.occurred_at, Event.external_id)
    ).all()
    return [
        Fact(t, at, _in_program_currency(session, program, amount, currency, at), meta)
        for t, at, amount, currency, meta in rows
    ]


def apply(session: Session, customer: Customer, event: Event) -> None:
    """Bring the customer's lifecycle up to date with a just-recorded (flushed) event."""
    program = session.get(Program, customer.program_id)
    assert program is not None
    stored = _stored(customer)
    if stored.last_event_at is None or event.occurred_at > stored.last_event_at:
        amount = _in_program_currency(session, program, event.amount, event.currency, event.occurred_at)
        state = fold(stored, Fact(event.type, event.occurred_at, amount, event.metadata_json))
    else:
        state = fold_all(_history(session, program, customer.id))
    customer.status = state.status.value
    customer.lifetime_revenue = state.revenue
    customer.first_paid_at = state.first_paid_at
    customer.last_event_at = state.last_event_at
    customer.status_changed_at = state.status_changed_at
