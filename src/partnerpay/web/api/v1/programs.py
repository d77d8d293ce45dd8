"""Programs and partners."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import select

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.commissions.queries import partner_balance
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.paging import paginate
from partnerpay.partners import recruiters
from partnerpay.partners import service as partners
from partnerpay.payouts.settings import carried_over, describe_skip
from partnerpay.programs import service as programs
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import (
    BalanceOut,
    PartnerIn,
    PartnerOut,
    PartnerPatch,
    ProgramIn,
    ProgramOut,
    dump,
    page,
)
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader
from partnerpay.web.security import factory

router = APIRouter()


@router.post("/programs", status_code=201, response_model=ProgramOut)
def create_program(request: Request, body: ProgramIn, actor: Actor = Caller) -> JSONResponse:
    # Staff need the owner role; an API key without a program needs 'write'.
    need(actor, "admin" if actor.type is ActorType.STAFF else "write")
    data = body.model_dump()
    return idempotency.run(
        request,
        actor,
        data,
        lambda s: (201, dump(ProgramOut, programs.create_program(s, actor=actor, now=now(request), **data))),
    )


@router.get("/programs")
def list_programs(
    request: Request, actor: Actor = Caller, cursor: str | None = CursorParam, limit: int = Limit
) -> dict[str, Any]:
    with reader(request, actor) as s:
        stmt = select(Program)
        if actor.program_id:
            stmt = stmt.where(Program.id == actor.program_id)
        result = paginate(s, stmt, Program.id, cursor=cursor, limit=limit)
        return page(ProgramOut, result.data, result.next_cursor)


@router.get("/programs/{program_id}", response_model=ProgramOut)
def read_program(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return dump(ProgramOut, get_program(s, actor, program_id))


@router.post("/partners", status_code=201, response_model=PartnerOut)
def create_partner(request: Request, body: PartnerIn, actor: Actor = Caller) -> JSONResponse:
    need(actor, "write")
    data = body.model_dump()
    return idempotency.run(
        request,
        actor,
        data,
        lambda s: (201, dump(PartnerOut, partners.create_partner(s, actor=actor, now=now(request), **data))),
    )


# GET /partners (the filtered list) lives in partner_admin.py with the export and the other filters.


@router.get("/partners/{partner_id}", response_model=PartnerOut)
def read_partner(request: Request, partner_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return dump(PartnerOut, partners.get_partner(s, actor, partner_id))


@router.patch("/partners/{partner_id}", response_model=PartnerOut)
def update_partner(request: Request, partner_id: str, body: PartnerPatch, actor: Actor = Caller) -> dict[str, Any]:
    """Only the fields sent change: recruited_by_id names the recruiter, null removes it (audited)."""
    need(actor, "write")
    with unit_of_work(factory(request)) as s:
        partner = partners.get_partner(s, actor, partner_id)
        if "recruited_by_id" in body.model_fields_set:
            partner = recruiters.set_recruiter(
                s, actor=actor, partner_id=partner.id, recruited_by_id=body.recruited_by_id, now=now(request)
            )
        return dump(PartnerOut, partner)


@router.get("/partners/{partner_id}/balance", response_model=BalanceOut)
def read_balance(request: Request, partner_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        partner = partners.get_partner(s, actor, partner_id)
        program = s.get(Program, partner.program_id)
        if program is None:
            raise ValidationError("partner has no program", field="partner_id")
        balance = partner_balance(s, partner, program.currency, now(request))
        skips = [{**k, "text": describe_skip(k)} for k in carried_over(s, partner.id, program.id)]
        return {
            "partner_id": partner.id,
            **balance.__dict__,
            "carried_over": skips,
            "carried_over_reason": skips[0]["text"] if skips else None,
        }
