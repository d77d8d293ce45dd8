"""Assigning a plan to the whole program, a group (override) or one partner (exception with a reason)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.clock import ensure_utc
from partnerpay.kit.errors import Conflict, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner, PartnerGroup
from partnerpay.plans.models import AssignmentScope, Plan, PlanAssignment
from partnerpay.plans.service import get_plan, need_plan_write

REASON_MAX = 1000


@dataclass(frozen=True)
class AssignSpec:
    """API.md's `assign` object: {program, group_ids, partner_ids}, plus the exception's reason and expiry."""

    program: bool = False
    group_ids: list[str] = field(default_factory=list)
    partner_ids: list[str] = field(default_factory=list)
    reason: str | None = None
    expires_at: datetime | None = None
    effective_from: datetime | None = None


def assignment_snapshot(a: PlanAssignment) -> dict[str, Any]:
    return {
        "plan_id": a.plan_id,
        "scope": a.scope,
        "group_id": a.group_id,
        "partner_id": a.partner_id,
        "reason": a.reason,
        "effective_from": a.effective_from.isoformat(),
        "expires_at": a.expires_at.isoformat() if a.expires_at else None,
        "ended_at": a.ended_at.isoformat() if a.ended_at else None,
    }


def _target(
    session: Session, plan: Plan, scope: AssignmentScope, target_id: str | None
) -> tuple[str | None, str | None]:
    if scope is AssignmentScope.PROGRAM:
        return None, None
    if not target_id:
        raise ValidationError(f"a {scope.value} assignment names its {scope.value}_id", field=f"{scope.value}_id")
    if scope is AssignmentScope.GROUP:
        group = session.get(PartnerGroup, target_id)
        if group is None or group.program_id != plan.program_id:
            raise NotFound(f"group {target_id} not found in the plan's program", field="group_id")
        return group.id, None
    partner = session.get(Partner, target_id)
    if partner is None or partner.program_id != plan.program_id:
        raise NotFound(f"partner {target_id} not found in the plan's program", field="partner_id")
    return None, partner.id


def assign_plan(
    session: Session,
    *,
    actor: Actor,
    plan_id: str,
    scope: str,
    now: datetime,
    target_id: str | None = None,
    reason: str | None = None,
    effective_from: datetime | None = None,
    expires_at: datetime | None = None,
) -> PlanAssignment:
    """One assignment. A draft plan may be assigned: it applies once a version of it is published.

    At one level the newest effective assignment wins (a new program-wide plan replaces the old one from
    its effective_from); a partner exception needs a reason and may expire.
    """
    need_plan_write(actor, "assigning a plan")
    plan = get_plan(session, actor, plan_id)
    try:
        kind = AssignmentScope(scope)
    except ValueError:
        raise ValidationError(f"scope must be program, group or partner, got {scope!r}", field="scope") from None
    group_id, partner_id = _target(session, plan, kind, target_id)
    reason = (reason or "").strip() or None
    if kind is AssignmentScope.PARTNER and reason is None:
        raise ValidationError(
            "a partner exception needs a reason (why this partner is paid differently)", field="reason"
        )
    if reason is not None and len(reason) > REASON_MAX:
        raise ValidationError(f"reason has at most {REASON_MAX} characters", field="reason")
    start = ensure_utc(effective_from) if effective_from else now
    end = ensure_utc(expires_at) if expires_at else None
    if end is not None and end <= start:
        raise ValidationError(
            f"expires_at {end.isoformat()} must be after effective_from {start.isoformat()}", field="expires_at"
        )
    if kind is not AssignmentScope.PARTNER and end is not None:
        raise ValidationError(
            "only a partner exception expires; end other assignments by removing them", field="expires_at"
        )
    assignment = PlanAssignment(
        id=new_id("pla"),
        program_id=plan.program_id,
        plan_id=plan.id,
        scope=kind.value,
        group_id=group_id,
        partner_id=partner_id,
        reason=reason,
        effective_from=start,
        expires_at=end,
        created_at=now,
        created_by=actor.id,
    )
    session.add(assignment)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="plan.assign",
        object_type="plan_assignment",
        object_id=assignment.id,
        program_id=plan.program_id,
        now=now,
        after=assignment_snapshot(assignment),
    )
    return assignment


def assign_many(
    session: Session, *, actor: Actor, plan_id: str, spec: AssignSpec, now: datetime
) -> list[PlanAssignment]:
    """Every assignment of an `assign` object, in the program, group, partner order."""
    if spec.partner_ids and not (spec.reason or "").strip():
        raise ValidationError("partner exceptions need assign.reason", field="assign.reason")
    targets: list[tuple[str, str | None]] = [("program", None)] if spec.program else []
    targets += [("group", g) for g in dict.fromkeys(spec.group_ids)]
    targets += [("partner", p) for p in dict.fromkeys(spec.partner_ids)]
    return [
        assign_plan(
            session,
            actor=actor,
            plan_id=plan_id,
            scope=scope,
            target_id=target,
            reason=spec.reason if scope == "partner" else None,
            effective_from=spec.effective_from,
            expires_at=spec.expires_at if scope == "partner" else None,
            now=now,
        )
        for scope, target in targets
    ]


def get_assignment(session: Session, actor: Actor, assignment_id: str) -> PlanAssignment:
    assignment = session.get(PlanAssignment, assignment_id)
    if assignment is None or actor.partner_id is not None or not actor.sees_program(assignment.program_id):
        raise NotFound(f"plan assignment {assignment_id} not found", field="assignment_id")
    return assignment


def end_assignment(session: Session, *, actor: Actor, assignment_id: str, now: datetime) -> PlanAssignment:
    """Stop an assignment from now on; it still explains which plan applied before."""
    need_plan_write(actor, "removing a plan assignment")
    assignment = get_assignment(session, actor, assignment_id)
    if assignment.ended_at is not None:
        raise Conflict(f"plan assignment {assignment_id} was already removed", field="assignment_id")
    before = assignment_snapshot(assignment)
    assignment.ended_at = now
    assignment.ended_by = actor.id
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="plan.unassign",
        object_type="plan_assignment",
        object_id=assignment.id,
        program_id=assignment.program_id,
        now=now,
        before=before,
        after=assignment_snapshot(assignment),
    )
    return assignment
