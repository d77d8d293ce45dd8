"""Recalculation by itself: record_event asks, after each attributed event, whether the partner already has a
later-occurring event whose lines this one may change, and if so queues the outbox job that recalculates
(commissions/recalculate.py) from this event's time. Events arriving in the order they happened cost one
indexed look-up and queue nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.history import period_start
from partnerpay.commissions.plan_earn import plan_rules
from partnerpay.commissions.recalculate import recalculate
from partnerpay.commissions.replay import NOT_TRIGGER_TYPES
from partnerpay.events.models import Event
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import JobContext, PermanentJobError
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.plans.resolve import has_assignments, load_book
from partnerpay.plans.rules import Period
from partnerpay.programs.models import Program

RECALCULATE_JOB = "commissions.recalculate"


def period_end(period: Period, at: datetime) -> datetime:
    start = period_start(period, at)
    months = {Period.MONTH: 1, Period.QUARTER: 3, Period.YEAR: 12}[period]
    years, month = divmod(start.month - 1 + months, 12)
    return datetime(start.year + years, month + 1, 1, tzinfo=UTC)


def enqueue_if_late(
    session: Session, *, program: Program, partner: Partner | None, event: Event, now: datetime
) -> None:
    """After a live event: when the partner already has a later-occurring event whose lines it may change (same
    tier or cap period, same customer, or any with a one-time bonus), queue a recalculation from it."""
    if partner is None or event.type in NOT_TRIGGER_TYPES or partner.status != PartnerStatus.ACTIVE.value:
        return
    if not has_assignments(session, program.id):
        return  # the default rate reads no history: a late payment changes no other line
    later = (
        select(Event.id)
        .where(
            Event.partner_id == partner.id,
            Event.occurred_at > event.occurred_at,
            Event.id != event.id,
            Event.type.not_in(NOT_TRIGGER_TYPES),
        )
        .limit(1)
    )
    if session.scalar(later) is None:  # the usual case: events arrive in the order they happened
        return
    plan = plan_rules(load_book(session, program.id), partner, event.occurred_at)
    if plan is None:
        return  # the default rate reads no history: a late payment changes no other line
    if all(rule.bonus is None for rule in plan.rules):
        periods = [r.tier_period for r in plan.rules if r.tier_period is not None]
        periods += [r.caps.period for r in plan.rules if r.caps.per_partner_period is not None]
        until = max((period_end(p, event.occurred_at) for p in periods), default=None)
        near = Event.customer_id == event.customer_id
        later = later.where(near if until is None else or_(near, Event.occurred_at < until))
        if session.scalar(later) is None:
            return
    payload = {"program_id": program.id, "partner_id": partner.id, "since": event.occurred_at.isoformat()}
    enqueue(session, RECALCULATE_JOB, [payload], now=now)


def recalculate_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Outbox handler of commissions.recalculate {program_id, partner_id, since}; a rerun writes nothing new."""
    program_id, partner_id, since = (payload.get(k) for k in ("program_id", "partner_id", "since"))
    if not isinstance(program_id, str) or not isinstance(partner_id, str) or not isinstance(since, str):
        raise PermanentJobError(f"payload needs program_id, partner_id and since as strings, got {payload!r}")
    partner = session.get(Partner, partner_id)
    if partner is None or partner.program_id != program_id:
        raise PermanentJobError(f"partner {partner_id} of program {program_id} does not exist")
    if partner.status != PartnerStatus.ACTIVE.value:
        return  # suspended since: its lines stay as they were made
    recalculate(
        session,
        actor=SYSTEM,
        program_id=program_id,
        partner_id=partner_id,
        since=datetime.fromisoformat(since),
        now=context.now,
    )
