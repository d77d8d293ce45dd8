"""Attributing a customer to a partner by hand (the data-quality page's "Attribute to partner").

Staff who know where a customer came from (a partner's email, a call) record it as an attribution
decision of rule `manual` with their reason. The customer's paying events that found no partner then
earn, each once, as if the partner had been known when they arrived; refunds that already took part of
such an event back are clawed back at once, so the partner never keeps commission on refunded money.
Events are ordinary rows (the ledger and the audit log are the append-only tables): their partner and
attribution are set here exactly as tracking.attribution sets them when an event arrives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.customers import PAYING_TYPES, get_customer
from partnerpay.events.models import Customer, Event
from partnerpay.kit.errors import ConcurrentWrite, Conflict, Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.activity import record_activity
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs.models import Program
from partnerpay.tracking import adoption, attribution
from partnerpay.tracking.attribution_models import Attribution, Rule

REASON_MAX = 1000


@dataclass(frozen=True, slots=True)
class Attributed:
    customer: Customer
    decision: Attribution
    events: list[Event]  # the paying events that got the partner now
    commissions: list[CommissionLine]  # earned on them (and clawbacks of refunds they already had)


def attribute_customer(
    session: Session,
    *,
    actor: Actor,
    customer_id: str,
    partner_id: str,
    reason: str,
    now: datetime,
) -> Attributed:
    """Give an unattributed customer a partner, audited; its paying events without a partner earn now."""
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("attributing a customer to a partner needs a staff login or key with the 'write' scope")
    customer = get_customer(session, actor, customer_id)
    why = (reason or "").strip()
    if not why:
        raise ValidationError("say why this customer belongs to the partner: a reason is required", field="reason")
    if len(why) > REASON_MAX:
        raise ValidationError(f"the reason may have at most {REASON_MAX} characters", field="reason")
    program = session.get(Program, customer.program_id)
    assert program is not None
    current = attribution.current_partner_id(customer, now)
    if current is not None:
        holder = session.get(Partner, current)
        raise Conflict(
            f"customer {customer.external_id} is already attributed to {holder.name if holder else current} "
            f"({customer.attribution or 'no reason recorded'}); a customer has one partner at a time",
            field="customer_id",
        )
    partner = session.get(Partner, partner_id) if partner_id else None
    if partner is None or partner.program_id != customer.program_id:
        raise NotFound(f"partner {partner_id!r} not found in this program", field="partner_id")
    if partner.status != PartnerStatus.ACTIVE.value:
        raise ValidationError(
            f"{partner.name} is {partner.status}: only an active partner can be given a customer", field="partner_id"
        )

    before = {
        "partner_id": customer.partner_id,
        "attribution_id": customer.attribution_id,
        "attribution": customer.attribution,
    }
    unattributed = list(
        session.scalars(
            select(Event)
            .where(Event.customer_id == customer.id, Event.type.in_(PAYING_TYPES), Event.partner_id.is_(None))
            .order_by(Event.occurred_at, Event.id)
        )
    )
    # The decision names the newest event it gives a partner (or the customer's newest event).
    for_event = unattributed[-1].id if unattributed else _newest_event_id(session, customer)
    decision = _decide(
        session, actor=actor, program=program, customer=customer, partner=partner, why=why, event_id=for_event, now=now
    )
    lines: list[CommissionLine] = []
    for event in unattributed:
        # Compare-and-set: an event another request attributed meanwhile is left alone (no second commission).
        taken = session.execute(
            update(Event)
            .where(Event.id == event.id, Event.partner_id.is_(None))
            .values(partner_id=partner.id, attribution_id=decision.id)
            .execution_options(synchronize_session=False)
        )
        if taken.rowcount != 1:  # type: ignore[attr-defined]
            raise ConcurrentWrite(f"event {event.external_id} was attributed by another request; nothing was saved")
        session.refresh(event)
        lines += _earn(session, actor=actor, program=program, partner=partner, customer=customer, event=event, now=now)
    audit.record(
        session,
        actor=actor,
        action="customer.attribute",
        object_type="customer",
        object_id=customer.id,
        program_id=customer.program_id,
        before=before,
        after={
            "partner_id": partner.id,
            "attribution_id": decision.id,
            "rule": decision.rule,
            "reason": why,
            "expires_at": decision.expires_at.isoformat() if decision.expires_at else None,
            "self_referral": decision.self_referral,
            "event_ids": [e.id for e in unattributed],
            "commission_line_ids": [line.id for line in lines],
        },
        now=now,
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="customer.attribute",
        text=f"Customer {customer.external_id} attributed by hand: {why[:300]}",
        actor=actor,
        now=now,
        ref_type="customer",
        ref_id=customer.id,
    )
    return Attributed(customer, decision, unattributed, lines)


def _decide(
    session: Session,
    *,
    actor: Actor,
    program: Program,
    customer: Customer,
    partner: Partner,
    why: str,
    event_id: str,
    now: datetime,
) -> Attribution:
    """The decision row and the customer pointing at it (as attribution.apply_decision does, decided now)."""
    expires = attribution.add_months(now, program.attribution_months) if program.attribution_months else None
    decision = Attribution(
        id=new_id("att"),
        program_id=program.id,
        customer_id=customer.id,
        partner_id=partner.id,
        rule=Rule.MANUAL.value,
        reason=f"attributed by hand by {actor.label or actor.id}: {why}",
        decided_at=now,
        expires_at=expires,
        event_id=event_id,
        self_referral=attribution.is_self_referral(partner, email=customer.email, domain=customer.domain),
    )
    session.add(decision)
    # Compare-and-set on the decision the customer had when read: two people attributing the same
    # customer at once cannot both win (the loser's transaction writes nothing).
    claimed = session.execute(
        update(Customer)
        .where(
            Customer.id == customer.id,
            Customer.attribution_id.is_(None)
            if customer.attribution_id is None
            else Customer.attribution_id == customer.attribution_id,
        )
        .values(
            partner_id=partner.id,
            attribution_id=decision.id,
            attributed_until=expires,
            attribution=decision.reason[:200],
        )
        .execution_options(synchronize_session=False)
    )
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentWrite(f"customer {customer.external_id} was attributed by another request; nothing was saved")
    session.refresh(customer)
    return decision


def _newest_event_id(session: Session, customer: Customer) -> str:
    found = session.scalar(
        select(Event.id).where(Event.customer_id == customer.id).order_by(Event.occurred_at.desc()).limit(1)
    )
    return found or ""


def _earn(
    session: Session,
    *,
    actor: Actor,
    program: Program,
    partner: Partner,
    customer: Customer,
    event: Event,
    now: datetime,
) -> list[CommissionLine]:
    """Commission on one paying event (once), then clawbacks of the refunds it already had."""
    earned = session.scalar(
        select(exists().where(CommissionLine.event_id == event.id, CommissionLine.kind == "commission"))
    )
    if earned:
        return []
    lines = attribution.earn(
        session, actor=actor, program=program, partner=partner, customer=customer, event=event, now=now
    )
    # Refunds recorded while the payment had no partner take back their share, as on adoption.
    return lines + (adoption.claw_back_recorded(session, actor=actor, original=event, now=now) if lines else [])
