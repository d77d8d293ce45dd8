"""Leads, deals and update requests over the API (docs/api-deals.md).

Staff sessions and API keys work on every lead of their programs; a logged-in partner (portal session)
may use the same endpoints for its own leads: register, read, and answer update requests.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.deals import leads, queries, service, updates
from partnerpay.deals.access import get_deal, get_lead
from partnerpay.deals.schemas import (
    AnswerIn,
    BulkRejectIn,
    DealOut,
    IdsIn,
    LeadIn,
    LeadOut,
    MessageIn,
    ReasonIn,
    StageIn,
    TimelineLineOut,
    UpdateRequestOut,
    dump,
)
from partnerpay.deals.timeline import lines_for
from partnerpay.kit.errors import Unauthorized
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import CursorParam, Limit, now, reader
from partnerpay.web.security import SAFE_METHODS, api_actor, check_csrf, factory, partner_from_session

router = APIRouter(tags=["leads and deals"])


def caller(request: Request) -> Actor:
    """An API key or staff session (api_actor), else a partner's portal session (writes need X-CSRF-Token)."""
    if request.headers.get("authorization") or request.session.get("staff_id"):
        return api_actor(request)
    with factory(request)() as session:
        actor = partner_from_session(request, session)
    if actor is None:
        raise Unauthorized("send 'Authorization: Bearer <api key>' or log in to the console or the portal")
    if request.method not in SAFE_METHODS:
        check_csrf(request, request.headers.get("x-csrf-token"))
    return actor


Caller = Depends(caller)
Work = Callable[[Session], tuple[int, Any]]


def _run(request: Request, actor: Actor, body: Any, work: Work) -> JSONResponse:
    return idempotency.run(request, actor, body, work)


def lead_out(session: Session, lead: Any) -> dict[str, Any]:
    deal = service.deal_for_lead(session, lead.id)
    return {**dump(LeadOut, lead), "deal_id": deal.id if deal else None}


# --- leads ----------------------------------------------------------------------------------------


@router.post("/leads", status_code=201)
def register(request: Request, body: LeadIn, actor: Actor = Caller) -> JSONResponse:
    """Register a lead; conflicts (existing customer, another partner's lead or deal, an open CRM deal, your own
    duplicate) are stored on it in `conflicts` — the lead is kept and the team decides."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        lead = leads.register_lead(s, actor=actor, now=now(request), **data)
        return 201, lead_out(s, lead)

    return _run(request, actor, data, work)


@router.get("/leads")
def list_leads(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = Query(None, description="registered, accepted or rejected"),
    conflicted: bool | None = Query(None, description="true: only leads with flagged conflicts"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        page = queries.list_leads(s, actor, program_id=program_id, partner_id=partner_id, status=status,
                                  conflicted=conflicted, cursor=cursor, limit=limit)  # fmt: skip
        return {"data": [lead_out(s, lead) for lead in page.data], "next_cursor": page.next_cursor}


@router.get("/leads/{lead_id}")
def show_lead(request: Request, lead_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return lead_out(s, get_lead(s, actor, lead_id))


@router.post("/leads/accept")
def accept_many(request: Request, body: IdsIn, actor: Actor = Caller) -> JSONResponse:
    """Accept every listed lead or none; each gets a deal at the first stage and its protection window."""

    def work(s: Session) -> tuple[int, Any]:
        deals = leads.accept_leads(s, actor=actor, lead_ids=body.ids, now=now(request))
        return 200, {"data": [{**lead_out(s, get_lead(s, actor, d.lead_id or "")), "deal": dump(DealOut, d)}
                              for d in deals]}  # fmt: skip

    return _run(request, actor, body.model_dump(), work)


@router.post("/leads/reject")
def reject_many(request: Request, body: BulkRejectIn, actor: Actor = Caller) -> JSONResponse:
    def work(s: Session) -> tuple[int, Any]:
        done = leads.reject_leads(s, actor=actor, lead_ids=body.ids, reason=body.reason, now=now(request))
        return 200, {"data": [lead_out(s, lead) for lead in done]}

    return _run(request, actor, body.model_dump(), work)


@router.post("/leads/{lead_id}/accept")
def accept(request: Request, lead_id: str, actor: Actor = Caller) -> JSONResponse:
    def work(s: Session) -> tuple[int, Any]:
        (deal,) = leads.accept_leads(s, actor=actor, lead_ids=[lead_id], now=now(request))
        return 200, {**lead_out(s, get_lead(s, actor, lead_id)), "deal": dump(DealOut, deal)}

    return _run(request, actor, {}, work)


@router.post("/leads/{lead_id}/reject")
def reject(request: Request, lead_id: str, body: ReasonIn, actor: Actor = Caller) -> JSONResponse:
    def work(s: Session) -> tuple[int, Any]:
        (lead,) = leads.reject_leads(s, actor=actor, lead_ids=[lead_id], reason=body.reason, now=now(request))
        return 200, lead_out(s, lead)

    return _run(request, actor, body.model_dump(), work)


@router.get("/leads/{lead_id}/timeline")
def lead_timeline(request: Request, lead_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """The lead's and its deal's timeline, oldest first, with its update requests."""
    with reader(request, actor) as s:
        lead = get_lead(s, actor, lead_id)
        deal = service.deal_for_lead(s, lead.id)
        return _timeline(s, lead.id, deal.id if deal else None)


@router.post("/leads/{lead_id}/update-requests", status_code=201)
def ask_on_lead(request: Request, lead_id: str, body: MessageIn, actor: Actor = Caller) -> JSONResponse:
    """Ask the partner for an update: emailed now, reminded after the program's update_reminder_days."""

    def work(s: Session) -> tuple[int, Any]:
        item = updates.ask_for_update(s, actor=actor, lead_id=lead_id, message=body.message, now=now(request))
        return 201, dump(UpdateRequestOut, item)

    return _run(request, actor, body.model_dump(), work)


# --- deals ----------------------------------------------------------------------------------------


@router.get("/deals")
def list_deals(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = Query(None, description="open, won or lost"),
    stage: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        page = queries.list_deals(s, actor, program_id=program_id, partner_id=partner_id, status=status,
                                  stage=stage, cursor=cursor, limit=limit)  # fmt: skip
        return {"data": [dump(DealOut, d) for d in page.data], "next_cursor": page.next_cursor}


@router.get("/deals/{deal_id}")
def show_deal(request: Request, deal_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return dump(DealOut, get_deal(s, actor, deal_id))


@router.post("/deals/{deal_id}/stage")
def move(request: Request, deal_id: str, body: StageIn, actor: Actor = Caller) -> JSONResponse:
    """`{stage}` moves along the pipeline; `{status: "won", amount, currency?, customer_external_id?}` closes it
    won and records a deal_won event; `{status: "lost", reason}` closes it lost."""
    data = body.model_dump()

    def work(s: Session) -> tuple[int, Any]:
        deal = service.move_deal(s, actor=actor, deal_id=deal_id, source="api", now=now(request), **data)
        return 200, dump(DealOut, deal)

    return _run(request, actor, data, work)


@router.get("/deals/{deal_id}/timeline")
def deal_timeline(request: Request, deal_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        deal = get_deal(s, actor, deal_id)
        return _timeline(s, deal.lead_id, deal.id)


@router.post("/deals/{deal_id}/update-requests", status_code=201)
def ask_on_deal(request: Request, deal_id: str, body: MessageIn, actor: Actor = Caller) -> JSONResponse:
    def work(s: Session) -> tuple[int, Any]:
        item = updates.ask_for_update(s, actor=actor, deal_id=deal_id, message=body.message, now=now(request))
        return 201, dump(UpdateRequestOut, item)

    return _run(request, actor, body.model_dump(), work)


# --- update requests ------------------------------------------------------------------------------


@router.post("/update-requests/{request_id}/answer")
def answer(request: Request, request_id: str, body: AnswerIn, actor: Actor = Caller) -> JSONResponse:
    """The partner's answer (portal session): it goes on the lead's/deal's timeline and stops the reminders."""

    def work(s: Session) -> tuple[int, Any]:
        item = updates.answer_update_request(s, actor=actor, request_id=request_id, answer=body.answer,
                                             now=now(request))  # fmt: skip
        return 200, dump(UpdateRequestOut, item)

    return _run(request, actor, body.model_dump(), work)


def _timeline(s: Session, lead_id: str | None, deal_id: str | None) -> dict[str, Any]:
    return {
        "data": [dump(TimelineLineOut, line) for line in lines_for(s, lead_id=lead_id, deal_id=deal_id)],
        "update_requests": [
            dump(UpdateRequestOut, r) for r in queries.requests_for(s, lead_id=lead_id, deal_id=deal_id)
        ],
    }
