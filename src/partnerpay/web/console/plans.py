"""Plans in the console: the list (status and versions per program) and one plan's page with every version's
rules in plain language, its assignments, and a Publish button for the draft (overlaps refused in words)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError
from partnerpay.partners.models import Partner, PartnerGroup
from partnerpay.plans import queries
from partnerpay.plans.describe import describe_rule
from partnerpay.plans.models import PlanAssignment, PlanVersion
from partnerpay.plans.queries import PlanView
from partnerpay.plans.resolve import PlanBook, active, load_book, rules_of
from partnerpay.plans.service import publish
from partnerpay.web.console.access import Staff
from partnerpay.web.console.queries import programs
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
Field = Annotated[str | None, Form()]


def _rules_text(version: PlanVersion, currency: str) -> list[str]:
    return [describe_rule(r, currency, number=i + 1) for i, r in enumerate(rules_of(version))]


def _assignment_state(a: PlanAssignment, at: datetime, book: PlanBook) -> str:
    if a.ended_at is not None and a.ended_at <= at:
        return "removed"
    if a.expires_at is not None and a.expires_at <= at:
        return "expired"
    if not active(a, at):
        return "scheduled"
    if book.version_at(a.plan_id, at) is None:
        return "waiting_for_publish"
    # At one level the newest assignment with a version in effect wins (plans.resolve.PlanBook.choose).
    newer = [
        b
        for b in book.assignments
        if (b.scope, b.group_id, b.partner_id) == (a.scope, a.group_id, a.partner_id)
        and active(b, at)
        and (b.effective_from, b.created_at, b.id) > (a.effective_from, a.created_at, a.id)
        and book.version_at(b.plan_id, at) is not None
    ]
    return "superseded" if newer else "active"


@router.get("/plans")
def plan_list(request: Request, me: Actor = Staff, program: str = "") -> Response:
    with reading(request) as session:
        choices = [p for p in programs(session) if me.sees_program(p.id)]
        shown = [p for p in choices if not program or p.id == program]
        groups: list[tuple[Any, list[PlanView]]] = [(p, queries.list_plans(session, me, p.id)) for p in shown]
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "plans",
        "groups": groups,
        "programs": [(p.id, p.name) for p in choices],
        "filters": {"program": program},
        "at": now(request),
    }
    return render(request, "console/plans.html", context)


def _detail(request: Request, me: Actor, plan_id: str, *, error: PartnerpayError | None = None) -> Response:
    at = now(request)
    with reading(request) as session:
        view = queries.plan_view(session, me, plan_id)
        names = dict(
            session.execute(select(Partner.id, Partner.name).where(Partner.program_id == view.program.id)).all()
        )
        book = load_book(session, view.program.id)
        names.update(
            session.execute(
                select(PartnerGroup.id, PartnerGroup.name).where(PartnerGroup.program_id == view.program.id)
            ).all()
        )
    versions = [(v, _rules_text(v, view.program.currency)) for v in reversed(view.versions)]
    assignments = [
        (a, names.get(a.partner_id or a.group_id or "", view.program.name), _assignment_state(a, at, book))
        for a in view.assignments
    ]
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "plans",
        "view": view,
        "versions": versions,
        "assignments": assignments,
        "can_publish": me.can("write") and view.draft is not None,
        "error": error.message if error is not None else None,
    }
    return render(request, "console/plan.html", context, status_code=error.status if error else 200)


@router.get("/plans/{plan_id}")
def plan_page(request: Request, plan_id: str, me: Actor = Staff) -> Response:
    return _detail(request, me, plan_id)


@router.post("/plans/{plan_id}/publish")
def publish_draft(request: Request, plan_id: str, me: Actor = Staff, csrf_token: Field = None) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            version = publish(session, actor=me, plan_id=plan_id, now=now(request))
            text = (
                f"Version {version.version} is published; it applies from {version.effective_from:%Y-%m-%d %H:%M} UTC."
            )
    except PartnerpayError as exc:
        return _detail(request, me, plan_id, error=exc)
    flash(request, text)
    return redirect(f"/plans/{plan_id}")
