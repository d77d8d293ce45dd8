"""Recording events: dedupe by external id, attribute to a partner, then earn or claw back."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.audit.service import canonical
from partnerpay.auth.actor import Actor
from partnerpay.commissions import service as commissions
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event, RefundAllocation
from partnerpay.events.schemas import NEEDS_AMOUNT, PAYING, REVERSING, EventIn, EventType
from partnerpay.kit.errors import Conflict, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import check_currency, format_money
from partnerpay.partners.models import Partner
from partnerpay.programs.service import get_program


@dataclass
class Recorded:
    event: Event
    commissions: list[CommissionLine]
    created: bool


def content_hash(data: EventIn) -> str:
    return hashlib.sha256(canonical(data.model_dump(mode="json")).encode()).hexdigest()


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

    _check_money(data, program.currency)
    partner = _named_partner(session, program.id, data)
    customer = _customer(session, program.id, data.customer_external_id, partner, now)
    attributed = session.get(Partner, customer.partner_id) if customer.partner_id else None
    original = _original(session, program.id, customer, data)
    event = Event(
        id=new_id("evt"),
        program_id=program.id,
        type=data.type.value,
        external_id=data.external_id,
        occurred_at=data.occurred_at,
        customer_id=customer.id,
        partner_id=attributed.id if attributed else None,
        amount=data.amount,
        currency=data.currency,
        product=data.product,
        original_event_id=original.id if original else None,
        metadata_json=data.metadata,
        content_hash=digest,
        created_at=now,
    )
    session.add(event)
    session.flush()
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
        },
    )
    lines: list[CommissionLine] = []
    if data.type in PAYING and attributed is not None:
        lines = commissions.earn_on_payment(
            session, actor=actor, program=program, partner=attributed, customer=customer, event=event, now=now
        )
    elif data.type in REVERSING:
        lines = _reverse(session, actor=actor, refund=event, customer=customer, original=original, now=now)
    return Recorded(event, lines, created=True)


def _check_money(data: EventIn, program_currency: str) -> None:
    if data.type in NEEDS_AMOUNT:
        if data.amount is None:
            raise ValidationError(f"amount is required for {data.type.value} events", field="amount")
        if data.currency is None:
            raise ValidationError(f"currency is required for {data.type.value} events", field="currency")
    if data.currency is not None:
        check_currency(data.currency)
        if data.currency != program_currency:
            raise ValidationError(
                f"this program pays in {program_currency}; an event in {data.currency} needs a conversion rate",
                field="currency",
            )
    if data.type in REVERSING and data.amount == 0:
        raise ValidationError("a refund or chargeback must take back more than zero", field="amount")


def _named_partner(session: Session, program_id: str, data: EventIn) -> Partner | None:
    if data.coupon is not None:
        raise ValidationError(f"unknown coupon {data.coupon!r} in this program", field="coupon")
    if data.partner_id is not None:
        partner = session.get(Partner, data.partner_id)
        if partner is None or partner.program_id != program_id:
            raise ValidationError(f"unknown partner {data.partner_id!r} in this program", field="partner_id")
        return partner
    if data.referral_code is not None:
        partner = session.scalar(
            select(Partner).where(Partner.program_id == program_id, Partner.referral_code == data.referral_code)
        )
        if partner is None:
            raise ValidationError(
                f"unknown referral code {data.referral_code!r} in this program", field="referral_code"
            )
        return partner
    return None


def _customer(session: Session, program_id: str, external_id: str, partner: Partner | None, now: datetime) -> Customer:
    """The customer keeps the partner who first brought it; a later code does not move it."""
    customer = session.scalar(
        select(Customer).where(Customer.program_id == program_id, Customer.external_id == external_id)
    )
    if customer is None:
        customer = Customer(
            id=new_id("cus"),
            program_id=program_id,
            external_id=external_id,
            partner_id=partner.id if partner else None,
            attribution=f"named on first event ({partner.referral_code})" if partner else None,
            created_at=now,
        )
        session.add(customer)
        session.flush()
    elif customer.partner_id is None and partner is not None:
        customer.partner_id = partner.id
        customer.attribution = f"named on a later event ({partner.referral_code})"
    return customer


def _original(session: Session, program_id: str, customer: Customer, data: EventIn) -> Event | None:
    if data.original_external_id is None:
        return None
    original = session.scalar(
        select(Event).where(Event.program_id == program_id, Event.external_id == data.original_external_id)
    )
    if original is None or original.customer_id != customer.id or original.type not in {t.value for t in PAYING}:
        raise ValidationError(
            f"no paying event {data.original_external_id!r} for customer {customer.external_id}",
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
    """Allocate the refunded amount to paying events (the named one, else newest first) and claw back."""
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
    remaining = refund.amount
    allocations: list[tuple[Event, int, int]] = []
    for paying in candidates:
        before = _refunded_so_far(session, paying.id)
        take = min(remaining, (paying.amount or 0) - before)
        if take > 0:
            allocations.append((paying, take, before))
            remaining -= take
        if remaining == 0:
            break
    if remaining:
        refundable = refund.amount - remaining
        raise ValidationError(
            f"{refund.type} of {format_money(refund.amount, refund.currency)} exceeds the "
            f"{format_money(refundable, refund.currency)} still refundable for customer {customer.external_id}",
            field="amount",
        )
    lines: list[CommissionLine] = []
    for paying, take, before in allocations:
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
