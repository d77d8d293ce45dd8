"""Commission lines: list (with their approval state and SLA), approve, reject: by ids or by a filter."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool, StrictInt, StrictStr, model_validator
from sqlalchemy.orm import Session

from partnerpay.approvals import lines as approval_lines
from partnerpay.auth.actor import Actor
from partnerpay.commissions import decisions
from partnerpay.commissions.models import CommissionLine
from partnerpay.commissions.queries import list_lines
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, lines_out
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, now, reader

router = APIRouter()


class LineFilterIn(In):
    """ "All matching": the lines of one program the filter selects (at most 5,000 per request)."""

    program_id: StrictStr
    partner_id: StrictStr | None = None
    status: StrictStr = Field(default="pending", description="pending (default) or approved (reject only)")
    overdue: StrictBool | None = Field(default=None, description="only lines past the program's SLA (or not)")
    awaiting_second_approval: StrictBool | None = None
    min_amount: StrictInt | None = Field(default=None, description="minor units")
    max_amount: StrictInt | None = Field(default=None, description="minor units")
    kind: StrictStr | None = Field(default=None, description="commission, clawback, adjustment, …")


class DecideIn(In):
    """Either `ids` (each decided, all or none) or `filter` (every line matching it, all or none)."""

    ids: list[StrictStr] | None = Field(default=None, min_length=1, max_length=5000)
    filter: LineFilterIn | None = None
    reason: StrictStr | None = Field(default=None, max_length=2000, description="why (optional to approve)")

    @model_validator(mode="after")
    def _one_of(self) -> DecideIn:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("send either ids or filter, not both and not neither")
        return self


class RejectIn(DecideIn):
    reason: StrictStr = Field(min_length=1, max_length=2000, description="why: required, shown to the partner")


def _ids(s: Session, actor: Actor, body: DecideIn, request: Request) -> list[str]:
    if body.ids is not None:
        return body.ids
    assert body.filter is not None
    flt = approval_lines.parse_filter(body.filter.model_dump())
    return approval_lines.matching(s, actor, flt, now(request))


def _with_approval(s: Session, lines: list[CommissionLine], request: Request) -> list[dict[str, Any]]:
    extra = approval_lines.approval_fields(s, lines, now(request))
    return [{**row, **extra[row["id"]]} for row in lines_out(s, lines)]


@router.get("/commissions")
def commissions(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = None,
    overdue: bool | None = Query(None, description="only lines pending past their program's SLA (or only not)"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        if overdue is None:
            result = list_lines(
                s, actor, program_id=program_id, partner_id=partner_id, status=status, cursor=cursor, limit=limit
            )
        else:
            result = approval_lines.list_by_overdue(
                s,
                actor,
                overdue=overdue,
                program_id=program_id,
                partner_id=partner_id,
                status=status,
                cursor=cursor,
                limit=limit,
                now=now(request),
            )
        return {"data": _with_approval(s, result.data, request), "next_cursor": result.next_cursor}


def _approve_payload(s: Session, actor: Actor, body: DecideIn, request: Request) -> dict[str, Any]:
    ids = _ids(s, actor, body, request)
    if not ids:
        return {"results": [], "matched": 0}
    done = decisions.approve(s, actor=actor, ids=ids, now=now(request), reason=body.reason)
    results: list[dict[str, Any]] = []
    for line in done.lines:
        row: dict[str, Any] = {"id": line.id, "status": line.status}
        if done.state_of(line.id) == "awaiting_second_approval":
            first = done.awaiting.get(line.id)
            row["awaiting"] = "second_approval"
            if first is not None:
                row |= {"first_approved_by": first.approved_by, "first_approved_at": first.approved_at.isoformat()}
        results.append(row)
    payload: dict[str, Any] = {"results": results}
    if body.filter is not None:
        payload["matched"] = len(ids)
    return payload


@router.post("/commissions/approve")
def approve(request: Request, body: DecideIn, actor: Actor = Caller) -> JSONResponse:
    """Approve every listed (or matching) line or none: any line that cannot be approved fails the request.

    A line above the program's `second_approval_above` gets its first approval and stays pending
    (`"awaiting": "second_approval"` in its result) until another finance user approves it.
    """
    return idempotency.run(
        request, actor, body.model_dump(mode="json"), lambda s: (200, _approve_payload(s, actor, body, request))
    )


def _reject_payload(s: Session, actor: Actor, body: RejectIn, request: Request) -> dict[str, Any]:
    ids = _ids(s, actor, body, request)
    if not ids:
        return {"results": [], "matched": 0}
    lines = decisions.reject_lines(s, actor=actor, ids=ids, reason=body.reason, now=now(request))
    payload: dict[str, Any] = {
        "results": [{"id": line.id, "status": line.status, "reason": line.rejected_reason} for line in lines]
    }
    if body.filter is not None:
        payload["matched"] = len(ids)
    return payload


@router.post("/commissions/reject")
def reject(request: Request, body: RejectIn, actor: Actor = Caller) -> JSONResponse:
    """Reject every listed (or matching) line or none; the reason is required and shown to the partner."""
    return idempotency.run(
        request, actor, body.model_dump(mode="json"), lambda s: (200, _reject_payload(s, actor, body, request))
    )
