"""What a recalculation's replay starts from (commissions/recalculate.py): the history before the replayed
events, read as plan_earn.load_history reads it for a live event, and the payments that may not earn."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from partnerpay.commissions.history import History, Made
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.plan_earn import PAYING_TYPES, not_reversed
from partnerpay.events.models import Event
from partnerpay.programs.models import Program
from partnerpay.tracking.attribution_models import FlagStatus, FraudFlag


def held_payments(session: Session, program: Program, partner_id: str, start: datetime | None) -> set[str]:
    """Payments an open flag holds, or a confirmed one stops, from earning (tracking.fraud): none of them earns."""
    if not program.hold_flagged_events:
        return set()
    stmt = (
        select(Event.id)
        .join(FraudFlag, (FraudFlag.event_id == Event.id) & (FraudFlag.partner_id == Event.partner_id))
        .where(
            Event.partner_id == partner_id,
            Event.type.in_(PAYING_TYPES),
            FraudFlag.status.in_((FlagStatus.OPEN.value, FlagStatus.CONFIRMED.value)),
        )
    )
    if start is not None:
        stmt = stmt.where(Event.occurred_at >= start)
    return set(session.scalars(stmt))


def history_before(session: Session, partner_id: str, start: datetime | None, replayed: set[str]) -> History:
    """What the replay cannot accumulate itself, read as plan_earn.load_history reads it: the payments of the
    replayed events' customers that are not replayed (earlier, or another partner's) and the partner's lines on
    events not replayed (for per-customer caps)."""
    history = History()
    customers = select(Event.customer_id).where(Event.partner_id == partner_id)
    if start is not None:
        customers = customers.where(Event.occurred_at >= start)
    paid = select(Event.id, Event.partner_id, Event.customer_id, Event.occurred_at).where(
        Event.type.in_(PAYING_TYPES), Event.customer_id.in_(customers)
    )
    for event_id, owner, customer_id, occurred_at in session.execute(paid.order_by(Event.occurred_at, Event.id)):
        if event_id not in replayed:
            history.add_paying(owner if owner == partner_id else None, customer_id, event_id, occurred_at)
    lines = (
        select(CommissionLine, Event.occurred_at)
        .join(Event, Event.id == CommissionLine.event_id)
        .where(
            CommissionLine.partner_id == partner_id,
            CommissionLine.plan_version_id.is_not(None),
            CommissionLine.status != LineStatus.REJECTED.value,
            not_reversed(),
        )
        .order_by(Event.occurred_at, CommissionLine.created_at, CommissionLine.id)
    )
    if start is not None:
        lines = lines.where(or_(Event.occurred_at >= start, CommissionLine.customer_id.in_(customers)))
    for line, event_at in session.execute(lines):
        if line.event_id in replayed:
            continue
        assert line.plan_version_id is not None and line.rule_number is not None
        history.lines[partner_id].append(
            Made(
                line.partner_id,
                line.customer_id,
                line.event_id,
                event_at,
                line.kind,
                line.amount,
                line.base_amount or 0,
                line.rate_bp or 0,
                line.plan_version_id,
                line.rule_number,
            )
        )
    return history
