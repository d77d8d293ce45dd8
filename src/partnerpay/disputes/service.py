"""Writing disputes: open, review, resolve (adjust or reject), withdraw, and the program's SLA setting.

Every status change goes through `transition` (compare-and-set on the status the caller saw) and is
audited there, in the caller's transaction; the partner hears of an answer through the outbox.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.adjustments import add_adjustment, check_amount
from partnerpay.commissions.models import CommissionLine
from partnerpay.disputes import notify
from partnerpay.disputes.access import get_dispute, is_partner, require_team
from partnerpay.disputes.models import (
    DEFAULT_SLA_DAYS,
    WAITING,
    Dispute,
    DisputeKind,
    DisputeSettings,
    DisputeStatus,
)
from partnerpay.disputes.rules import (
    MACHINE,
    REF_MAX,
    RESOLUTION_MAX,
    check_kind,
    check_sla_days,
    check_text,
    due_at,
)
from partnerpay.disputes.schemas import DisputeOut
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import check_minor_units
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.webhooks_out.emit import dispute_updated

S = DisputeStatus


def snapshot(d: Dispute) -> dict[str, Any]:
    """What the audit log keeps of a dispute."""
    return {
        "status": d.status, "kind": d.kind, "partner_id": d.partner_id, "line_id": d.line_id, "amount": d.amount,
        "currency": d.currency, "customer_ref": d.customer_ref, "owner_id": d.owner_id,
        "due_at": d.due_at.isoformat(), "resolution_reason": d.resolution_reason,
        "adjustment_line_id": d.adjustment_line_id,
    }  # fmt: skip


def announce(session: Session, dispute: Dispute, *, now: datetime) -> None:
    """Outgoing webhook dispute.updated, in the same transaction as the change (subscribers get it after commit)."""
    dispute_updated(session, program_id=dispute.program_id, now=now,
                    dispute=DisputeOut.model_validate(dispute).model_dump(mode="json"))  # fmt: skip


def sla_days(session: Session, program_id: str) -> int:
    settings = session.get(DisputeSettings, program_id)
    return settings.sla_days if settings is not None else DEFAULT_SLA_DAYS


def set_sla_days(session: Session, *, actor: Actor, program_id: str, days: object, now: datetime) -> DisputeSettings:
    """How many days the team has to answer a new dispute; disputes already open keep their due date."""
    require_team(actor, "changing the dispute SLA")
    program = get_program(session, actor, program_id)
    value = check_sla_days(days)
    settings = session.get(DisputeSettings, program.id)
    before = settings.sla_days if settings is not None else DEFAULT_SLA_DAYS
    if settings is None:
        settings = DisputeSettings(program_id=program.id, sla_days=value, updated_by=actor.id, updated_at=now)
        session.add(settings)
    else:
        settings.sla_days, settings.updated_by, settings.updated_at = value, actor.id, now
    session.flush()
    audit.record(session, actor=actor, action="dispute.sla_days", object_type="program", object_id=program.id,
                 program_id=program.id, before={"sla_days": before}, after={"sla_days": value}, now=now)  # fmt: skip
    return settings


def _disputed_line(session: Session, actor: Actor, line_id: object, partner_id: str | None) -> CommissionLine:
    if not isinstance(line_id, str) or not line_id:
        raise ValidationError("line_id is required to dispute a line's amount", field="line_id")
    line = session.get(CommissionLine, line_id)
    if line is None or not actor.sees(line.program_id, line.partner_id):
        raise NotFound(f"commission line {line_id} not found", field="line_id")
    if partner_id is not None and partner_id != line.partner_id:
        raise ValidationError(f"line {line_id} is not partner {partner_id}'s", field="line_id")
    waiting = session.scalar(select(Dispute.id).where(Dispute.line_id == line.id, Dispute.status.in_(WAITING)).limit(1))
    if waiting is not None:
        raise Conflict(f"line {line.id} is already disputed in {waiting}; add to that dispute instead", field="line_id")
    return line


def open_dispute(
    session: Session,
    *,
    actor: Actor,
    kind: object,
    description: object,
    now: datetime,
    partner_id: str | None = None,
    line_id: str | None = None,
    amount: object = None,
    customer_ref: object = None,
    event_date: datetime | None = None,
) -> Dispute:
    """A partner disputes its line ("wrong amount", with the amount it expected) or claims a missing commission;
    the team may open either on a partner's behalf. Due after the program's SLA days."""
    if is_partner(actor):
        if partner_id is not None and partner_id != actor.partner_id:
            raise NotFound(f"partner {partner_id} not found", field="partner_id")
        partner_id = actor.partner_id
    else:
        require_team(actor, "opening a dispute on a partner's behalf")
    dispute_kind = check_kind(kind)
    text = check_text(description, field="description")
    line = None
    ref = None
    if dispute_kind is DisputeKind.WRONG_AMOUNT:
        line = _disputed_line(session, actor, line_id, partner_id)
        partner_id = line.partner_id
        if amount is None:
            raise ValidationError("amount is required: the commission you expected, in minor units", field="amount")
        expected: int | None = check_minor_units(amount, field="amount", allow_negative=True)
        if expected == line.amount:
            raise ValidationError(f"amount {expected} is what the line already pays", field="amount")
    else:
        if line_id is not None:
            raise ValidationError("a missing commission has no line; dispute the line instead", field="line_id")
        ref = check_text(customer_ref, field="customer_ref", limit=REF_MAX)
        if event_date is None:
            raise ValidationError("event_date is required: when the referral signed up or paid", field="event_date")
        if event_date > now:
            raise ValidationError("event_date must not be in the future", field="event_date")
        expected = None if amount is None else check_minor_units(amount, field="amount")
    if partner_id is None:
        raise ValidationError("partner_id is required when the team opens a dispute", field="partner_id")
    partner = get_partner(session, actor, partner_id)
    program = session.get(Program, partner.program_id)
    assert program is not None
    dispute = Dispute(
        id=new_id("dsp"), program_id=program.id, partner_id=partner.id, kind=dispute_kind.value,
        line_id=line.id if line else None, amount=expected, currency=line.currency if line else program.currency,
        customer_ref=ref, event_date=event_date, description=text, status=S.OPEN.value,
        due_at=due_at(now, sla_days(session, program.id)), opened_by=actor.id, opened_by_type=actor.type.value,
        created_at=now, updated_at=now,
    )  # fmt: skip
    session.add(dispute)
    session.flush()
    audit.record(session, actor=actor, action="dispute.open", object_type="dispute", object_id=dispute.id,
                 program_id=program.id, after={**snapshot(dispute), "description": text}, now=now)  # fmt: skip
    announce(session, dispute, now=now)
    if is_partner(actor):
        notify.dispute_opened(session, dispute, now=now)
    return dispute


def transition(
    session: Session, dispute: Dispute, *, to: DisputeStatus, actor: Actor, now: datetime, **values: Any
) -> Dispute:
    """The one way a dispute changes status: from the status the caller read, or not at all (409)."""
    src = S(dispute.status)
    MACHINE.check(src, to, object_id=dispute.id)
    before = snapshot(dispute)
    MACHINE.transition(session, Dispute, [dispute.id], src=src, dst=to, values={"updated_at": now, **values})
    session.refresh(dispute)
    audit.record(session, actor=actor, action=f"dispute.{to.value}", object_type="dispute", object_id=dispute.id,
                 program_id=dispute.program_id, before=before, after=snapshot(dispute), now=now)  # fmt: skip
    announce(session, dispute, now=now)
    return dispute


def start_review(session: Session, *, actor: Actor, dispute_id: str, now: datetime) -> Dispute:
    """A team member takes the dispute: it is in review, and theirs."""
    require_team(actor, "reviewing a dispute")
    dispute = get_dispute(session, actor, dispute_id)
    return transition(session, dispute, to=S.IN_REVIEW, actor=actor, now=now, owner_id=actor.id)


def _adjustment_amount(session: Session, dispute: Dispute, amount: object) -> int:
    if amount is not None:
        return check_amount(amount)
    if dispute.kind == DisputeKind.WRONG_AMOUNT.value and dispute.line_id and dispute.amount is not None:
        line = session.get(CommissionLine, dispute.line_id)
        assert line is not None
        return check_amount(dispute.amount - line.amount)  # what the partner expected, less what the line pays
    if dispute.amount:
        return check_amount(dispute.amount)
    raise ValidationError("amount is required: the adjustment in minor units", field="amount")


def resolve(
    session: Session, *, actor: Actor, dispute_id: str, action: str, reason: object, now: datetime,
    amount: object = None,
) -> Dispute:  # fmt: skip
    """`adjust`: a pending adjustment line (approved like any line) linked to the dispute; `reject`: with a reason.

    An open dispute is taken into review by the resolver first (both steps audited). The partner is told."""
    require_team(actor, "resolving a dispute")
    dispute = get_dispute(session, actor, dispute_id)
    text = check_text(reason, field="reason", limit=RESOLUTION_MAX)
    assert text is not None
    if action not in ("adjust", "reject"):
        raise ValidationError(f"action must be adjust or reject, got {action!r}", field="action")
    if dispute.status == S.OPEN.value:
        dispute = transition(session, dispute, to=S.IN_REVIEW, actor=actor, now=now, owner_id=actor.id)
    done: dict[str, Any] = {"resolved_at": now, "resolved_by": actor.id, "resolution_reason": text}
    value: int | None = None
    if action == "reject":
        MACHINE.check(S(dispute.status), S.REJECTED, object_id=dispute.id)
        dispute = transition(session, dispute, to=S.REJECTED, actor=actor, now=now, **done)
    else:
        MACHINE.check(S(dispute.status), S.RESOLVED_ADJUSTED, object_id=dispute.id)
        value = _adjustment_amount(session, dispute, amount)
        line = session.get(CommissionLine, dispute.line_id) if dispute.line_id else None
        adjustment = add_adjustment(
            session, actor=actor, partner_id=dispute.partner_id, amount=value, currency=dispute.currency,
            reason=f"dispute {dispute.id}: {text}", customer_id=line.customer_id if line else None,
            event_id=line.event_id if line else None, now=now,
        )  # fmt: skip
        dispute = transition(session, dispute, to=S.RESOLVED_ADJUSTED, actor=actor, now=now,
                             adjustment_line_id=adjustment.id, **done)  # fmt: skip
    notify.dispute_answered(session, dispute, now=now, adjustment=value)
    return dispute


def withdraw(session: Session, *, actor: Actor, dispute_id: str, now: datetime) -> Dispute:
    """The partner takes its dispute back while it waits (the team may record that on its behalf)."""
    dispute = get_dispute(session, actor, dispute_id)
    if not is_partner(actor) and not actor.can("write"):
        raise Forbidden(f"withdrawing a dispute needs the 'write' scope, which {actor.type.value} {actor.id} lacks")
    return transition(session, dispute, to=S.WITHDRAWN, actor=actor, now=now, resolved_at=now, resolved_by=actor.id)
