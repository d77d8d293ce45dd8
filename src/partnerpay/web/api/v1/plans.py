"""Commission plans: drafts, publishing, versions, assignments, and which plan applies to a partner (staff only).

Rules arrive as plain JSON and are validated by plans.rules (one message naming rules.<i>.<field>), so the
API, the console and the CLI refuse bad rules in the same words.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field, StrictBool, StrictStr
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import NotFound
from partnerpay.plans import assignments as plan_assignments
from partnerpay.plans import queries, service
from partnerpay.plans.describe import describe_rule
from partnerpay.plans.models import PlanAssignment, PlanVersion
from partnerpay.plans.queries import PlanView
from partnerpay.plans.resolve import rules_of
from partnerpay.programs.service import get_program
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In
from partnerpay.web.api.v1.common import need, now, reader
from partnerpay.web.api.v1.deals import Caller  # partner sessions too, so they get 404 rather than 401

router = APIRouter(tags=["plans"])

RULES_DOC = "rules as in docs/api-plans.md: trigger, conditions, percent_bp, flat, recurring_months, tiers, caps, …"


class AssignIn(In):
    program: StrictBool = False
    group_ids: list[StrictStr] = Field(default_factory=list)
    partner_ids: list[StrictStr] = Field(default_factory=list)
    reason: StrictStr | None = Field(default=None, max_length=1000, description="required with partner_ids")
    expires_at: AwareDatetime | None = Field(default=None, description="partner exceptions only")
    effective_from: AwareDatetime | None = None


class PlanIn(In):
    name: StrictStr = Field(min_length=1, max_length=200)
    rules: list[Any] = Field(description=RULES_DOC)
    assign: AssignIn | None = None
    note: StrictStr = Field(default="", max_length=2000)
    effective_from: AwareDatetime | None = Field(default=None, description="wanted start; set for good on publish")


class DraftIn(In):
    rules: list[Any] = Field(description=RULES_DOC)
    note: StrictStr | None = Field(default=None, max_length=2000)
    effective_from: AwareDatetime | None = None


class PublishIn(In):
    effective_from: AwareDatetime | None = Field(default=None, description="default: the draft's date, else now")
    allow_new_products: StrictBool = Field(
        default=False, description="accept product conditions naming products no event of the program has carried yet"
    )


class VersionIn(In):
    rules: list[Any] | None = Field(default=None, description="default: a copy of the published version's rules")


class AssignmentIn(In):
    scope: StrictStr = Field(description="program, group or partner")
    group_id: StrictStr | None = None
    partner_id: StrictStr | None = None
    reason: StrictStr | None = Field(default=None, max_length=1000, description="required for a partner exception")
    effective_from: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None


def _need_write(actor: Actor) -> None:
    if actor.partner_id is not None:
        raise NotFound("not found")  # plans are staff business: a partner session sees nothing here
    need(actor, "write")


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def version_out(version: PlanVersion, currency: str, *, with_rules: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": version.id,
        "version": version.version,
        "status": version.status,
        "effective_from": _iso(version.effective_from),
        "published_at": _iso(version.published_at),
        "published_by": version.published_by,
        "archived_at": _iso(version.archived_at),
        "created_at": _iso(version.created_at),
        "note": version.note,
    }
    if with_rules:
        parsed = rules_of(version)
        out["rules"] = [{"number": i + 1, **r} for i, r in enumerate(version.rules)]
        out["rules_text"] = [describe_rule(r, currency, number=i + 1) for i, r in enumerate(parsed)]
    return out


def assignment_out(a: PlanAssignment) -> dict[str, Any]:
    return {
        "id": a.id,
        "plan_id": a.plan_id,
        "program_id": a.program_id,
        "scope": a.scope,
        "group_id": a.group_id,
        "partner_id": a.partner_id,
        "reason": a.reason,
        "effective_from": _iso(a.effective_from),
        "expires_at": _iso(a.expires_at),
        "created_at": _iso(a.created_at),
        "created_by": a.created_by,
        "ended_at": _iso(a.ended_at),
        "ended_by": a.ended_by,
    }


def plan_out(view: PlanView, *, with_rules: bool = True) -> dict[str, Any]:
    published, draft = view.published, view.draft
    return {
        "id": view.plan.id,
        "program_id": view.plan.program_id,
        "name": view.plan.name,
        "created_at": _iso(view.plan.created_at),
        "status": view.status,
        "currency": view.program.currency,
        "published_version": published.version if published else None,
        "draft_version": draft.version if draft else None,
        "versions": [version_out(v, view.program.currency, with_rules=with_rules) for v in view.versions],
        "assignments": [assignment_out(a) for a in view.assignments],
    }


def _view(s: Session, actor: Actor, plan_id: str) -> dict[str, Any]:
    return plan_out(queries.plan_view(s, actor, plan_id))


@router.post("/programs/{program_id}/plans", status_code=201)
def create_plan(request: Request, program_id: str, body: PlanIn, actor: Actor = Caller) -> JSONResponse:
    """A plan with its rules as draft version 1, assigned as `assign` says (it pays once published)."""
    _need_write(actor)

    def work(s: Session) -> tuple[int, Any]:
        plan, _ = service.create_plan(
            s,
            actor=actor,
            program_id=program_id,
            name=body.name,
            rules=body.rules,
            note=body.note,
            effective_from=body.effective_from,
            now=now(request),
        )
        if body.assign is not None:
            spec = plan_assignments.AssignSpec(**body.assign.model_dump())
            plan_assignments.assign_many(s, actor=actor, plan_id=plan.id, spec=spec, now=now(request))
        return 201, _view(s, actor, plan.id)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.get("/programs/{program_id}/plans")
def list_plans(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """The program's plans by name, each with its versions (without rules) and assignments."""
    with reader(request, actor) as s:
        return {"data": [plan_out(v, with_rules=False) for v in queries.list_plans(s, actor, program_id)]}


@router.get("/plans/{plan_id}")
def get_plan(request: Request, plan_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """The plan with every version's rules (JSON and plain language) and its assignments."""
    with reader(request, actor) as s:
        return _view(s, actor, plan_id)


@router.put("/plans/{plan_id}/draft")
def replace_draft(request: Request, plan_id: str, body: DraftIn, actor: Actor = Caller) -> JSONResponse:
    """Replace the draft's rules; 409 when the plan has no draft (a published version never changes)."""
    _need_write(actor)

    def work(s: Session) -> tuple[int, Any]:
        service.update_draft(
            s,
            actor=actor,
            plan_id=plan_id,
            rules=body.rules,
            note=body.note,
            effective_from=body.effective_from,
            now=now(request),
        )
        return 200, _view(s, actor, plan_id)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.post("/plans/{plan_id}/publish")
def publish(request: Request, plan_id: str, body: PublishIn | None = None, actor: Actor = Caller) -> JSONResponse:
    """Publish the draft (audited); overlapping same-priority rules are refused naming both."""
    _need_write(actor)
    body = body or PublishIn()

    def work(s: Session) -> tuple[int, Any]:
        service.publish(
            s,
            actor=actor,
            plan_id=plan_id,
            effective_from=body.effective_from,
            allow_new_products=body.allow_new_products,
            now=now(request),
        )
        return 200, _view(s, actor, plan_id)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.post("/plans/{plan_id}/versions", status_code=201)
def new_version(request: Request, plan_id: str, body: VersionIn | None = None, actor: Actor = Caller) -> JSONResponse:
    """A new draft version from the published one; the published version is untouched."""
    _need_write(actor)
    body = body or VersionIn()

    def work(s: Session) -> tuple[int, Any]:
        service.new_version(s, actor=actor, plan_id=plan_id, rules=body.rules, now=now(request))
        return 201, _view(s, actor, plan_id)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.post("/plans/{plan_id}/assignments", status_code=201)
def assign(request: Request, plan_id: str, body: AssignmentIn, actor: Actor = Caller) -> JSONResponse:
    """Assign the plan to the program, a group or a partner (an exception with a reason and optional expiry)."""
    _need_write(actor)

    def work(s: Session) -> tuple[int, Any]:
        target = body.group_id if body.scope == "group" else body.partner_id if body.scope == "partner" else None
        assignment = plan_assignments.assign_plan(
            s,
            actor=actor,
            plan_id=plan_id,
            scope=body.scope,
            target_id=target,
            reason=body.reason,
            effective_from=body.effective_from,
            expires_at=body.expires_at,
            now=now(request),
        )
        return 201, assignment_out(assignment)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.delete("/plan-assignments/{assignment_id}")
def remove_assignment(request: Request, assignment_id: str, actor: Actor = Caller) -> JSONResponse:
    """End the assignment now (audited); it still explains which plan applied before."""
    _need_write(actor)

    def work(s: Session) -> tuple[int, Any]:
        done = plan_assignments.end_assignment(s, actor=actor, assignment_id=assignment_id, now=now(request))
        return 200, assignment_out(done)

    return idempotency.run(request, actor, {"assignment_id": assignment_id}, work)


@router.get("/partners/{partner_id}/plan")
def partner_plan(
    request: Request,
    partner_id: str,
    actor: Actor = Caller,
    at: AwareDatetime | None = Query(None, description="default: now"),
) -> dict[str, Any]:
    """The plan version that applies to the partner (now or `at`) and why; without one, the program default."""
    when = at or now(request)
    with reader(request, actor) as s:
        partner, choice = queries.partner_plan(s, actor, partner_id, when)
        if choice is None:
            program = get_program(s, actor, partner.program_id)
            return {
                "partner_id": partner.id,
                "at": when.isoformat(),
                "plan": None,
                "how": {"level": "default", "text": f"no plan assigned: the program's {program.default_percent_bp} bp"},
                "default_percent_bp": program.default_percent_bp,
            }
        view = queries.plan_view(s, actor, choice.version.plan_id)
        how = choice.how
        return {
            "partner_id": partner.id,
            "at": when.isoformat(),
            "plan": {"id": view.plan.id, "name": view.plan.name},
            "version": version_out(choice.version, view.program.currency),
            "how": {
                "level": how.level,
                "assignment_id": how.assignment_id,
                "reason": how.reason,
                "expires_at": _iso(how.expires_at),
                "text": how.text,
            },
        }
