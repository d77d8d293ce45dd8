"""Fraud flags: list, and staff decisions (release, dismiss, confirm)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr

from partnerpay.auth.actor import Actor
from partnerpay.tracking import fraud, fraud_queries
from partnerpay.tracking.attribution_models import FlagStatus
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, LineOut, Out, dump, page
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader

router = APIRouter()


class FlagOut(Out):
    id: str
    program_id: str
    partner_id: str
    event_id: str | None
    click_id: str | None
    kind: str
    detail: str
    created_at: datetime
    status: str
    resolved_by: str | None
    resolved_at: datetime | None
    reason: str | None


class DecisionIn(In):
    reason: StrictStr = Field(min_length=1, max_length=2000)


@router.get("/fraud-flags")
def list_flags(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        result = fraud_queries.list_flags(
            s, actor, program_id=program_id, partner_id=partner_id, status=status, kind=kind, cursor=cursor, limit=limit
        )
        return page(FlagOut, result.data, result.next_cursor)


def _decide(request: Request, actor: Actor, flag_id: str, body: DecisionIn, to: FlagStatus) -> JSONResponse:
    need(actor, "write")

    def work(session):  # type: ignore[no-untyped-def]
        done = fraud.resolve_flag(session, actor=actor, flag_id=flag_id, to=to, reason=body.reason, now=now(request))
        return 200, {"flag": dump(FlagOut, done.flag), "commissions": [dump(LineOut, c) for c in done.commissions]}

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.post("/fraud-flags/{flag_id}/release")
def release(request: Request, flag_id: str, body: DecisionIn, actor: Actor = Caller) -> JSONResponse:
    """Looked at and fine: a held paying event earns now (once), unless another flag still holds it."""
    return _decide(request, actor, flag_id, body, FlagStatus.RELEASED)


@router.post("/fraud-flags/{flag_id}/dismiss")
def dismiss(request: Request, flag_id: str, body: DecisionIn, actor: Actor = Caller) -> JSONResponse:
    """Not fraud at all: same effect on money as release."""
    return _decide(request, actor, flag_id, body, FlagStatus.DISMISSED)


@router.post("/fraud-flags/{flag_id}/confirm")
def confirm(request: Request, flag_id: str, body: DecisionIn, actor: Actor = Caller) -> JSONResponse:
    """Fraud: a held event never earns."""
    return _decide(request, actor, flag_id, body, FlagStatus.CONFIRMED)
