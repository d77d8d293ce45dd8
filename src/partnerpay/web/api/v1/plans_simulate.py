"""POST /plans/{id}/simulate: the backtest (commissions/backtest.py) over HTTP; it reads and writes nothing.

Kept out of plans.py so that file stays about plans themselves; the scopes are those of reading a plan.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Request
from pydantic import Field, StrictInt

from partnerpay.auth.actor import Actor
from partnerpay.commissions.backtest import simulate
from partnerpay.web.api.schemas import In
from partnerpay.web.api.v1.common import reader
from partnerpay.web.api.v1.deals import Caller  # partner sessions too, so they get 404 rather than 401

router = APIRouter(tags=["plans"])


class SimulateIn(In):
    start: date = Field(alias="from", description="first day (UTC), YYYY-MM-DD")
    end: date = Field(alias="to", description="last day (UTC, included), YYYY-MM-DD")
    version: StrictInt | None = Field(default=None, ge=1, description="default: the draft, else the newest published")


@router.post("/plans/{plan_id}/simulate")
def simulate_plan(request: Request, plan_id: str, body: SimulateIn, actor: Actor = Caller) -> dict[str, Any]:
    """What the plan's draft (or `version`) would have paid on the events of [from, to] vs what was made,
    per partner and in total per currency (amounts in minor units). Nothing is written."""
    with reader(request, actor) as s:
        try:
            return simulate(s, actor, plan_id, body.start, body.end, version=body.version).as_dict()
        finally:
            s.rollback()
