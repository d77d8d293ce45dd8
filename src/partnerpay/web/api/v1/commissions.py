"""Commission lines: list, approve, reject."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from partnerpay.auth.actor import Actor
from partnerpay.commissions import decisions
from partnerpay.commissions.queries import list_lines
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import IdsIn, RejectIn, lines_out
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, now, reader

router = APIRouter()


@router.get("/commissions")
def commissions(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        result = list_lines(
            s, actor, program_id=program_id, partner_id=partner_id, status=status, cursor=cursor, limit=limit
        )
        return {"data": lines_out(s, result.data), "next_cursor": result.next_cursor}


@router.post("/commissions/approve")
def approve(request: Request, body: IdsIn, actor: Actor = Caller) -> JSONResponse:
    """Approve every listed line or none: any line that cannot be approved fails the whole request."""
    return idempotency.run(
        request,
        actor,
        body.model_dump(),
        lambda s: (
            200,
            {
                "results": [
                    {"id": line.id, "status": line.status}
                    for line in decisions.approve_lines(s, actor=actor, ids=body.ids, now=now(request))
                ]
            },
        ),
    )


@router.post("/commissions/reject")
def reject(request: Request, body: RejectIn, actor: Actor = Caller) -> JSONResponse:
    return idempotency.run(
        request,
        actor,
        body.model_dump(),
        lambda s: (
            200,
            {
                "results": [
                    {"id": line.id, "status": line.status, "reason": line.rejected_reason}
                    for line in decisions.reject_lines(
                        s, actor=actor, ids=body.ids, reason=body.reason, now=now(request)
                    )
                ]
            },
        ),
    )
