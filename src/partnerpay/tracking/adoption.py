"""When a customer gets a partner, its events recorded earlier without one become the partner's.

Facts arrive out of order: a renewal may be delivered before the first invoice that carried the
partner's referral, a cancellation before the signup. The customer's partner holds for all its events
until the attribution expires (attribution.current_partner_id), so the result must not depend on which
arrived first: the orphans are adopted, their payments earn, and refunds already recorded against them
are clawed back, exactly as if they had arrived after the decision.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions import service as commissions
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event, RefundAllocation
from partnerpay.events.schemas import PAYING
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.tracking import attribution, fraud
from partnerpay.tracking.attribution_models import Attribution


def adopt_orphans(
    session: Session,
    *,
    actor: Actor,
    program: Program,
    customer: Customer,
    decision: Attribution,
    now: datetime,
    exclude_event_id: str | None = None,
) -> list[CommissionLine]:
    """Give `decision`'s partner the customer's partnerless events inside its window; returns new lines."""
    stmt = select(Event).where(Event.customer_id == customer.id, Event.partner_id.is_(None))
    if exclude_event_id is not None:
        stmt = stmt.where(Event.id != exclude_event_id)
    if decision.expires_at is not None:
        stmt = stmt.where(Event.occurred_at < decision.expires_at)
    orphans = list(session.scalars(stmt.order_by(Event.occurred_at, Event.external_id)).all())
    if not orphans:
        return []
    partner = session.get(Partner, decision.partner_id)
    assert partner is not None
    for event in orphans:
        event.partner_id = partner.id
        event.attribution_id = decision.id
        event.unattributed_reason = None
    session.flush()
    lines: list[CommissionLine] = []
    paying = [e for e in orphans if e.type in {t.value for t in PAYING} and e.amount]
    for event in paying:
        if fraud.holds(session, program, event):
            continue
        earned = attribution.earn(
            session, actor=actor, program=program, partner=partner, customer=customer, event=event, now=now
        )
        lines += earned + (claw_back_recorded(session, actor=actor, original=event, now=now) if earned else [])
    return lines


def claw_back_recorded(session: Session, *, actor: Actor, original: Event, now: datetime) -> list[CommissionLine]:
    """Refunds recorded while the payment had no partner take back their share of its new commission."""
    rows = session.execute(
        select(RefundAllocation.amount, Event)
        .join(Event, Event.id == RefundAllocation.refund_event_id)
        .where(RefundAllocation.original_event_id == original.id)
        .order_by(Event.occurred_at, Event.external_id)
    ).all()
    lines: list[CommissionLine] = []
    before = 0
    for amount, refund in rows:
        lines += commissions.claw_back(
            session,
            actor=actor,
            refund=refund,
            original=original,
            refunded=int(amount),
            refunded_before=before,
            chosen_newest_first=refund.original_event_id is None,
            now=now,
        )
        before += int(amount)
    return lines
