"""POST /commissions/adjustments: a manual positive or negative line with a reason (issue 6).

Included before the commissions router, so this path is never read as a line id.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictInt, StrictStr
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.adjustments import add_adjustment
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, LineOut, dump
from partnerpay.web.api.v1.common import Caller, now

router = APIRouter()


class AdjustmentIn(In):
    partner_id: StrictStr
    amount: StrictInt = Field(description="minor units; negative takes money back", examples=[5000, -2500])
    currency: StrictStr = Field(examples=["EUR"])
    # Emptiness and length are checked by the service, so the console form gets the same messages.
    reason: StrictStr = Field(examples=["missed referral Acme, see ticket 123"])
    customer_id: StrictStr | None = None
    event_id: StrictStr | None = None


class AdjustmentOut(LineOut):
    created_by: str | None
    reason: str | None


@router.post("/commissions/adjustments", status_code=201)
def create_adjustment(request: Request, body: AdjustmentIn, actor: Actor = Caller) -> JSONResponse:
    """A pending adjustment line, posted to the ledger; someone other than its creator approves it."""

    def work(s: Session) -> tuple[int, dict[str, Any]]:
        line = add_adjustment(s, actor=actor, now=now(request), **body.model_dump())
        return 201, dump(AdjustmentOut, line)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)
