"""Reading plans: a program's plans with their status, one plan with versions and assignments, a partner's plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import NotFound
from partnerpay.partners.models import Partner
from partnerpay.plans.models import Plan, PlanAssignment, PlanVersion, VersionStatus
from partnerpay.plans.resolve import PlanChoice, plan_for
from partnerpay.plans.service import get_plan, versions_of
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program


@dataclass(frozen=True)
class PlanView:
    plan: Plan
    program: Program
    versions: list[PlanVersion]  # oldest first
    assignments: list[PlanAssignment]  # newest first, removed ones included

    @property
    def published(self) -> PlanVersion | None:
        return next((v for v in self.versions if v.status == VersionStatus.PUBLISHED), None)

    @property
    def draft(self) -> PlanVersion | None:
        return next((v for v in self.versions if v.status == VersionStatus.DRAFT), None)

    @property
    def status(self) -> str:
        """published when a version pays, else draft."""
        return VersionStatus.PUBLISHED.value if self.published else VersionStatus.DRAFT.value


def plan_view(session: Session, actor: Actor, plan_id: str) -> PlanView:
    plan = get_plan(session, actor, plan_id)
    program = get_program(session, actor, plan.program_id)
    assignments = list(
        session.scalars(
            select(PlanAssignment)
            .where(PlanAssignment.plan_id == plan.id)
            .order_by(PlanAssignment.created_at.desc(), PlanAssignment.id.desc())
        )
    )
    return PlanView(plan, program, versions_of(session, plan.id), assignments)


def list_plans(session: Session, actor: Actor, program_id: str) -> list[PlanView]:
    """Every plan of the program, by name (a program has a handful, so no paging)."""
    if actor.partner_id is not None:
        raise NotFound(f"program {program_id} not found", field="program_id")
    program = get_program(session, actor, program_id)
    plans = list(session.scalars(select(Plan).where(Plan.program_id == program.id).order_by(Plan.name)))
    if not plans:
        return []
    ids = [p.id for p in plans]
    versions: dict[str, list[PlanVersion]] = {i: [] for i in ids}
    for v in session.scalars(select(PlanVersion).where(PlanVersion.plan_id.in_(ids)).order_by(PlanVersion.version)):
        versions[v.plan_id].append(v)
    assignments: dict[str, list[PlanAssignment]] = {i: [] for i in ids}
    for a in session.scalars(
        select(PlanAssignment).where(PlanAssignment.plan_id.in_(ids)).order_by(PlanAssignment.created_at.desc())
    ):
        assignments[a.plan_id].append(a)
    return [PlanView(p, program, versions[p.id], assignments[p.id]) for p in plans]


def partner_plan(session: Session, actor: Actor, partner_id: str, at: datetime) -> tuple[Partner, PlanChoice | None]:
    """What applies to the partner at `at` (staff only: a partner user gets 404)."""
    partner = session.get(Partner, partner_id)
    if partner is None or actor.partner_id is not None or not actor.sees_program(partner.program_id):
        raise NotFound(f"partner {partner_id} not found", field="partner_id")
    return partner, plan_for(session, partner, at)
