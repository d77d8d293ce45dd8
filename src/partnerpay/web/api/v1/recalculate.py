"""POST /partners/{id}/recalculate: re-derive a partner's plan lines after a late event (commissions/recalculate.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, Field, StrictBool
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.recalculate import Recalculation, recalculate
from partnerpay.partners.service import get_partner
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, LineOut, Out, dump
from partnerpay.web.api.v1.common import Caller, now

router = APIRouter()


class RecalculateIn(In):
    since: AwareDatetime | None = Field(
        default=None, description="when the late event happened; omitted: the partner's whole history"
    )
    dry_run: StrictBool = Field(default=False, description="say what would change and write nothing")


class ReversedOut(Out):
    original: LineOut
    reversal: LineOut | None = Field(description="null in a dry run")


class RecalculationOut(Out):
    partner_id: str
    since: datetime | None
    start: datetime | None = Field(description="events from here were replayed; null: all history")
    events: int
    dry_run: bool
    changed: bool
    reversed: list[ReversedOut]
    created: list[LineOut] = Field(description="the lines now owed (ids not stored in a dry run)")
    clawbacks: list[LineOut] = Field(description="refunds already recorded, re-applied to the new lines")


def recalculation_body(result: Recalculation) -> dict[str, Any]:
    return dump(RecalculationOut, result)


@router.post("/partners/{partner_id}/recalculate")
def recalculate_partner(request: Request, partner_id: str, body: RecalculateIn, actor: Actor = Caller) -> JSONResponse:
    """Reverse every line of the partner that differs from a replay of its events in time order and create the
    line now owed; unchanged lines stay. Finance or owner (or an API key with 'write'); 404 for another
    program's partner."""

    def work(s: Session) -> tuple[int, dict[str, Any]]:
        partner = get_partner(s, actor, partner_id)
        result = recalculate(
            s,
            actor=actor,
            program_id=partner.program_id,
            partner_id=partner.id,
            since=body.since,
            now=now(request),
            dry_run=body.dry_run,
        )
        return 200, recalculation_body(result)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)
