"""Deals & leads in the console: the pipeline board, the conflicts queue, lead and deal pages and their actions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.deals import leads, queries, service, updates
from partnerpay.deals.access import get_deal, get_lead
from partnerpay.deals.models import Deal, Lead
from partnerpay.deals.rules import minor_units
from partnerpay.deals.timeline import lines_for
from partnerpay.integrations.hubspot_push import request_push
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.partners import queries as partner_queries
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.programs.tracking_settings import deal_stages
from partnerpay.web.console import queries as console_queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]


def _write(request: Request, work: Callable[[Session], str]) -> str | PartnerpayError:
    try:
        with unit_of_work(factory(request)) as session:
            return work(session)
    except PartnerpayError as exc:
        return exc


def _done(request: Request, result: str | PartnerpayError, back: str) -> Response:
    """Flash the outcome (the service's own words when refused) and go back where the form was."""
    if isinstance(result, PartnerpayError):
        flash(request, result.message, "error")
    else:
        flash(request, result)
    return redirect(back)


@router.get("/deals")
def board(
    request: Request,
    me: Actor = Staff,
    program_id: str | None = None,
    partner_id: str | None = None,
    owner: str | None = None,
) -> Response:
    with reading(request) as session:
        programs = [p for p in console_queries.programs(session) if me.sees_program(p.id)]
        program = next((p for p in programs if p.id == program_id), programs[0] if programs else None)
        result = None
        if program is not None:
            result = queries.board(session, me, program, partner_id=partner_id or None,
                                   owner_id=me.id if owner == "mine" else None)  # fmt: skip
        partners = (
            list(session.scalars(select(Partner).where(Partner.program_id == program.id).order_by(Partner.name)))
            if program
            else []
        )
        context = {
            "area": "console", "me": me, "page": "deals", "programs": programs, "program": program,
            "board": result, "partners": partners, "partner_id": partner_id or "", "owner": owner or "",
            "owners": {u.id: u.email for u in partner_queries.staff_users(session)},
            "conflicts": len(queries.conflict_queue(session, me, program_id=program.id)) if program else 0,
        }  # fmt: skip
    return render(request, "console/deals.html", context)


@router.get("/deals/conflicts")
def conflicts(request: Request, me: Actor = Staff, program_id: str | None = None) -> Response:
    with reading(request) as session:
        context = {
            "area": "console", "me": me, "page": "deals",
            "cases": queries.conflict_queue(session, me, program_id=program_id or None),
        }  # fmt: skip
    return render(request, "console/deals_conflicts.html", context)


def _detail(request: Request, me: Actor, lead: Lead | None, deal: Deal | None) -> Response:
    with reading(request) as session:
        subject = deal or lead
        assert subject is not None
        program = session.get(Program, subject.program_id)
        partner = session.get(Partner, subject.partner_id)
        lead_id = lead.id if lead else (deal.lead_id if deal else None)
        context = {
            "area": "console", "me": me, "page": "deals", "lead": lead, "deal": deal, "program": program,
            "partner": partner, "stages": deal_stages(program) if program else [],
            "timeline": lines_for(session, lead_id=lead_id, deal_id=deal.id if deal else None),
            "requests": queries.requests_for(session, lead_id=lead_id, deal_id=deal.id if deal else None),
            "cases": [c for c in queries.conflict_queue(session, me) if lead and c.lead.id == lead.id],
        }  # fmt: skip
    return render(request, "console/deal.html", context)


@router.get("/deals/leads/{lead_id}")
def show_lead(request: Request, lead_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        lead = get_lead(session, me, lead_id)
        deal = service.deal_for_lead(session, lead.id)
    if deal is not None:
        return redirect(f"/deals/{deal.id}")
    return _detail(request, me, lead, None)


@router.get("/deals/{deal_id}")
def show_deal(request: Request, deal_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        deal = get_deal(session, me, deal_id)
        lead = session.get(Lead, deal.lead_id) if deal.lead_id else None
    return _detail(request, me, lead, deal)


@router.post("/deals/leads/decide")
def decide(
    request: Request,
    me: Actor = Staff,
    ids: Annotated[list[str] | None, Form()] = None,
    action: Text = "",
    reason: Text = "",
    back: Text = "/deals/conflicts",
    csrf_token: Csrf = None,
) -> Response:
    """Accept or reject one or many leads (the board's and the conflicts queue's forms)."""
    check_form_csrf(request, csrf_token)
    chosen = ids or []

    def work(s: Session) -> str:
        if not chosen:
            raise ValidationError("tick at least one lead", field="ids")
        if action == "accept":
            deals = leads.accept_leads(s, actor=me, lead_ids=chosen, now=now(request))
            return f"Accepted {len(deals)} lead{'s' if len(deals) != 1 else ''}; each is a deal now."
        if action == "reject":
            done = leads.reject_leads(s, actor=me, lead_ids=chosen, reason=reason, now=now(request))
            return f"Rejected {len(done)} lead{'s' if len(done) != 1 else ''}: {reason.strip()}"
        raise ValidationError("choose accept or reject", field="action")

    target = back if back.startswith("/deals") else "/deals"
    return _done(request, _write(request, work), target)


@router.post("/deals/{deal_id}/stage")
def move(
    request: Request,
    deal_id: str,
    me: Actor = Staff,
    stage: Text = "",
    status: Text = "",
    amount: Text = "",
    currency: Text = "",
    customer_external_id: Text = "",
    reason: Text = "",
    back: Text = "",
    csrf_token: Csrf = None,
) -> Response:
    """A stage move from the board or the deal page, or closing the deal as won / lost."""
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        deal = get_deal(s, me, deal_id)
        money = currency.strip().upper() or deal.currency or _program_currency(s, deal)
        value = minor_units(amount, money, field="amount") if status == "won" else None
        service.move_deal(
            s, actor=me, deal_id=deal_id, stage=stage or None, status=status or None, amount=value,
            currency=money if value is not None else None, customer_external_id=customer_external_id or None,
            reason=reason or None, now=now(request),
        )  # fmt: skip
        return f"{deal.company}: " + (f"now {status}." if status else f"moved to {deal.stage}.")

    target = "/deals" if back == "board" else f"/deals/{deal_id}"
    return _done(request, _write(request, work), target)


@router.post("/deals/{deal_id}/push-to-hubspot")
def push_to_hubspot(request: Request, deal_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    """Queue the deal's creation in HubSpot (integrations/hubspot_push.py); the job links it when done."""
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        request_push(s, actor=me, box=request.app.state.secret_box, deal_id=deal_id, now=now(request))
        return "Queued: the deal is created in HubSpot in the background, then linked here."

    return _done(request, _write(request, work), f"/deals/{deal_id}")


def _program_currency(s: Session, deal: Deal) -> str:
    program = s.get(Program, deal.program_id)
    assert program is not None
    return program.currency


@router.post("/deals/{deal_id}/ask")
def ask_on_deal(
    request: Request, deal_id: str, me: Actor = Staff, message: Text = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        updates.ask_for_update(s, actor=me, deal_id=deal_id, message=message, now=now(request))
        return "Update asked. The partner is emailed now and reminded until they answer."

    return _done(request, _write(request, work), f"/deals/{deal_id}")


@router.post("/deals/leads/{lead_id}/ask")
def ask_on_lead(
    request: Request, lead_id: str, me: Actor = Staff, message: Text = "", csrf_token: Csrf = None
) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        updates.ask_for_update(s, actor=me, lead_id=lead_id, message=message, now=now(request))
        return "Update asked. The partner is emailed now and reminded until they answer."

    return _done(request, _write(request, work), f"/deals/leads/{lead_id}")
