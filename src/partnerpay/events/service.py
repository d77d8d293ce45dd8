"""Recording events: dedupe by external id, attribute to a partner (tracking.attribution), flag what looks
like fraud (tracking.fraud), then earn or claw back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.audit.service import canonical
from partnerpay.auth.actor import Actor
from partnerpay.commissions import clawbacks, reinstate, reversal
from partnerpay.commissions import recalculate_auto as recalculation
from partnerpay.commissions import service as commissions
from partnerpay.commissions.models import CommissionLine
from partnerpay.events import lifecycle
from partnerpay.events.currency import check_event_currency
from partnerpay.events.models import Customer, Event, RefundAllocation
from partnerpay.events.schemas import (
    LATER_FIELDS,
    NEEDS_AMOUNT,
    PAYING,
    REINSTATING,
    REVERSING,
    EventIn,
    EventType,
)
from partnerpay.kit.errors import Conflict, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import check_currency
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.tracking import adoption, attribution, fraud
from partnerpay.tracking.attribution_models import Attribution, Rule
from partnerpay.tracking.coupons import coupon_for
from partnerpay.tracking.models import Click, Coupon

# Events that take commission back without being a refund: early churn, and a won chargeback giving it back.
TAKING_BACK = frozenset({EventType.SUBSCRIPTION_CANCELED}) | REINSTATING


@dataclass
class Recorded:
    event: Event
    commissions: list[CommissionLine]
    created: bool


def content_hash(data: EventIn) -> str:
    return hash_of_dump(data.model_dump(mode="json"))


def hash_of_dump(body: dict[str, Any]) -> str:
    """content_hash from an event's JSON dump (the batch ingest dumps each row once for this and the inbox)."""
    body = {k: v for k, v in body.items() if not (k in LATER_FIELDS and v is None)}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def record_event(session: Session, *, actor: Actor, data: EventIn, now: datetime) -> Recorded:
    """Store the event once; the same external id again returns the first result and writes nothing."""
    program = get_program(session, actor, data.program_id)
    digest = content_hash(data)
    existing = session.scalar(
        select(Event).where(Event.program_id == program.id, Event.external_id == data.external_id)
    )
    if existing is not None:
        if existing.content_hash != digest:
            raise Conflict(f"event {data.external_id} was already recorded with different content", field="external_id")
        earlier = session.scalars(
            select(CommissionLine).where(CommissionLine.event_id == existing.id).order_by(CommissionLine.id)
        ).all()
        return Recorded(existing, list(earlier), created=False)

    check_type(data, program)
    check_money(data)
    named = _named_partner(session, program.id, data)
    coupon = _coupon(session, program.id, data)
    customer = _customer(session, program.id, data, now)
    original = _original(session, program.id, customer, data)
    check_event_currency(session, program=program, data=data, customer=customer, original=original)
    event = Event(
        id=new_id("evt"),
        program_id=program.id,
        type=str(data.type),
        external_id=data.external_id,
        occurred_at=data.occurred_at,
        customer_id=customer.id,
        partner_id=None,
        amount=data.amount,
        currency=data.currency,
        product=data.product,
        original_event_id=original.id if original else None,
        metadata_json=data.metadata,
        content_hash=digest,
        created_at=now,
        click_id=data.click_id,
    )
    session.add(event)
    session.flush()
    lifecycle.apply(session, customer, event)
    click = _attribute(
        session, program=program, customer=customer, event=event, data=data, named=named, coupon=coupon, now=now
    )
    attributed = session.get(Partner, customer.partner_id) if event.partner_id else None
    current = session.get(Attribution, event.attribution_id) if event.attribution_id else None
    flags = fraud.flag_event(session, actor=actor, event=event, current=current, click=click, now=now)
    held = data.type in PAYING and fraud.holds(session, program, event)
    audit.record(
        session,
        actor=actor,
        action="event.record",
        object_type="event",
        object_id=event.id,
        program_id=program.id,
        now=now,
        after={
            "type": event.type,
            "external_id": event.external_id,
            "amount": event.amount,
            "currency": event.currency,
            "partner_id": event.partner_id,
            "attribution_id": event.attribution_id,
            "unattributed_reason": event.unattributed_reason,
            "flags": [f.id for f in flags],
            "held": held,
        },
    )
    lines: list[CommissionLine] = []
    if current is not None and current.event_id == event.id:
        # This event decided the customer's partner: events that arrived before it without one follow.
        lines += adoption.adopt_orphans(
            session, actor=actor, program=program, customer=customer, decision=current, now=now,
            exclude_event_id=event.id,
        )  # fmt: skip
    if data.type in REVERSING or data.type in TAKING_BACK:
        lines += _reverse(session, actor=actor, refund=event, customer=customer, original=original, now=now)
    elif attributed is not None and not held:
        # Any other event may trigger a plan rule (signup, demo_booked, deal_won, custom); a payment also
        # the default rate.
        lines += attribution.earn(
            session, actor=actor, program=program, partner=attributed, customer=customer, event=event, now=now
        )
        # An event that happened before ones already evaluated may change their tiers and caps.
        recalculation.enqueue_if_late(session, program=program, partner=attributed, event=event, now=now)
    return Recorded(event, lines, created=True)


def _attribute(
    session: Session,
    *,
    program: Program,
    customer: Customer,
    event: Event,
    data: EventIn,
    named: tuple[Partner, Rule] | None,
    coupon: Coupon | None,
    now: datetime,
) -> Click | None:
    """Give the event its customer's partner, deciding anew when the customer has none now.

    Returns the click the event named, when the redirect has written it (for the fraud signals).
    """
    if data.click_id is not None:
        attribution.remember_click(session, customer=customer, click_id=data.click_id, event_id=event.id, now=now)
    current = attribution.current_partner_id(customer, event.occurred_at)
    # Most events are of customers attributed for good and carry no click: their clicks need no reading.
    clicks = attribution.known_clicks(session, customer) if data.click_id is not None or current is None else []
    named_click = next((k for k in clicks if k.id == data.click_id), None)
    if current is not None:
        event.partner_id = customer.partner_id
        event.attribution_id = customer.attribution_id
        session.flush()
        return named_click
    expired = customer.partner_id
    evidence = attribution.Evidence(
        occurred_at=event.occurred_at,
        event_type=event.type,
        clicks=clicks,
        coupon=coupon if coupon is not None and coupon.active else None,
        claim=attribution.domain_claim(session, program, customer.domain, event.occurred_at),
        named=named[0] if named else None,
        named_rule=named[1] if named else None,
    )
    decision = attribution.decide(
        evidence,
        model=program.attribution_model,
        coupon_overrides_link=program.coupon_overrides_link,
        cookie_days=program.cookie_days,
    )
    if decision is None:
        event.unattributed_reason = attribution.unattributed_note(
            customer=customer,
            click_id=data.click_id,
            clicks=clicks,
            ev=evidence,
            cookie_days=program.cookie_days,
            deactivated_coupon=coupon if coupon is not None and not coupon.active else None,
            expired_partner=expired,
        )[:500]
        if expired is not None:
            customer.partner_id = None
            customer.attribution_id = None
            customer.attribution = event.unattributed_reason[:200]
        session.flush()
        return named_click
    partner = session.get(Partner, decision.partner_id)
    assert partner is not None
    row = attribution.apply_decision(
        session,
        program=program,
        customer=customer,
        event=event,
        decision=decision,
        self_referral=attribution.is_self_referral(partner, email=customer.email, domain=customer.domain),
    )
    event.partner_id = row.partner_id
    event.attribution_id = row.id
    session.flush()
    return named_click


def check_type(data: EventIn, program: Program) -> None:
    """A type that is not a core one must be one of the program's own (PATCH /programs custom_event_types)."""
    if isinstance(data.type, EventType):
        return
    custom = program.custom_event_types or []
    if data.type not in custom:
        own = f"this program's custom types: {', '.join(custom)}" if custom else "this program has no custom types"
        raise ValidationError(
            f"unknown event type {data.type!r}: not a core type and not defined by the program ({own}; "
            "add it to the program's custom_event_types)",
            field="type",
        )


def check_money(data: EventIn) -> None:
    """Amount and currency present where needed; another currency than the program's is checked against the
    program's rates by events.currency.check_event_currency, once the customer is known."""
    if data.type in NEEDS_AMOUNT:
        if data.amount is None:
            raise ValidationError(f"amount is required for {data.type} events", field="amount")
        if data.currency is None:
            raise ValidationError(f"currency is required for {data.type} events", field="currency")
    if data.currency is not None:
        check_currency(data.currency)
    if data.type in REVERSING and data.amount == 0:
        raise ValidationError("a refund or chargeback must take back more than zero", field="amount")


def _named_partner(session: Session, program_id: str, data: EventIn) -> tuple[Partner, Rule] | None:
    if data.partner_id is not None:
        partner = session.get(Partner, data.partner_id)
        if partner is None or partner.program_id != program_id:
            raise ValidationError(f"unknown partner {data.partner_id!r} in this program", field="partner_id")
        return partner, Rule.PARTNER_ID
    if data.referral_code is not None:
        partner = session.scalar(
            select(Partner).where(Partner.program_id == program_id, Partner.referral_code == data.referral_code)
        )
        if partner is None:
            raise ValidationError(
                f"unknown referral code {data.referral_code!r} in this program", field="referral_code"
            )
        return partner, Rule.REFERRAL_CODE
    return None


def _coupon(session: Session, program_id: str, data: EventIn) -> Coupon | None:
    """The coupon named by code; a deactivated one is returned and ignored by the decision."""
    if data.coupon is None:
        return None
    found = coupon_for(session, program_id, code=data.coupon)
    if found is None:
        raise ValidationError(f"unknown coupon {data.coupon!r} in this program", field="coupon")
    return found


def _customer(session: Session, program_id: str, data: EventIn, now: datetime) -> Customer:
    """The customer, created on its first event; an email or domain an event gives is kept for later decisions."""
    customer = session.scalar(
        select(Customer).where(Customer.program_id == program_id, Customer.external_id == data.customer_external_id)
    )
    if customer is None:
        customer = Customer(
            id=new_id("cus"),
            program_id=program_id,
            external_id=data.customer_external_id,
            partner_id=None,
            attribution=None,
            created_at=now,
        )
        session.add(customer)
    if data.customer_email is not None:
        customer.email = data.customer_email
    domain = attribution.company_domain(data.customer_email, data.customer_domain)
    if domain is not None:
        customer.domain = domain
    session.flush()
    return customer


def _original(session: Session, program_id: str, customer: Customer, data: EventIn) -> Event | None:
    if data.original_external_id is None:
        return None
    original = session.scalar(
        select(Event).where(Event.program_id == program_id, Event.external_id == data.original_external_id)
    )
    # A won chargeback names the chargeback; a refund or chargeback the payment it takes back.
    wanted, noun = ({t.value for t in PAYING}, "paying event")
    if data.type in REINSTATING:
        wanted, noun = {EventType.CHARGEBACK.value}, "chargeback"
    if original is None or original.customer_id != customer.id or original.type not in wanted:
        raise ValidationError(
            f"no {noun} {data.original_external_id!r} for customer {customer.external_id}",
            field="original_external_id",
        )
    return original


def _refunded_so_far(session: Session, original_id: str) -> int:
    return int(
        session.scalar(
            select(func.coalesce(func.sum(RefundAllocation.amount), 0)).where(
                RefundAllocation.original_event_id == original_id
            )
        )
        or 0
    )


def _reverse(
    session: Session,
    *,
    actor: Actor,
    refund: Event,
    customer: Customer,
    original: Event | None,
    now: datetime,
) -> list[CommissionLine]:
    """Take commission back: a refund or chargeback is allocated to paying events (the named one, else newest
    first) and claws back in proportion; a cancellation claws back early churn; a won chargeback reinstates."""
    if refund.type == EventType.SUBSCRIPTION_CANCELED.value:
        return reversal.cancel(session, actor=actor, cancellation=refund, customer=customer, now=now)
    if refund.type == EventType.CHARGEBACK_REVERSED.value:
        if original is None:
            raise ValidationError(
                "a chargeback_reversed event names the chargeback it reverses (original_external_id)",
                field="original_external_id",
            )
        return reinstate.reinstate(session, actor=actor, reversal=refund, chargeback=original, now=now)
    assert refund.amount is not None and refund.currency is not None
    if original is not None:
        candidates = [original]
    else:
        candidates = list(
            session.scalars(
                select(Event)
                .where(Event.customer_id == customer.id, Event.type.in_([t.value for t in PAYING]))
                .order_by(Event.occurred_at.desc(), Event.id.desc())
            ).all()
        )
    by_id = {paying.id: paying for paying in candidates}
    allocations = clawbacks.allocate(
        refund.amount,
        (clawbacks.Candidate(p.id, p.amount or 0, _refunded_so_far(session, p.id)) for p in candidates),
        kind=refund.type,
        currency=refund.currency,
        customer_external_id=customer.external_id,
    )
    lines: list[CommissionLine] = []
    for share in allocations:
        paying, take, before = by_id[share.event_id], share.amount, share.refunded_before
        session.add(
            RefundAllocation(
                program_id=refund.program_id,
                refund_event_id=refund.id,
                original_event_id=paying.id,
                amount=take,
            )
        )
        lines += commissions.claw_back(
            session,
            actor=actor,
            refund=refund,
            original=paying,
            refunded=take,
            refunded_before=before,
            chosen_newest_first=original is None,
            now=now,
        )
    session.flush()
    return lines


__all__ = ["EventType", "Recorded", "record_event"]
