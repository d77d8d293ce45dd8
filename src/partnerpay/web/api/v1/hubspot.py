"""HubSpot actions over the API (docs/api-hubspot.md): push a partner deal to HubSpot, as a background job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.integrations.hubspot_push import PUSH_JOB, request_push
from partnerpay.web.api import idempotency
from partnerpay.web.api.v1.common import Caller, need, now

router = APIRouter(tags=["leads and deals"])


@router.post(
    "/deals/{deal_id}/push-to-hubspot",
    status_code=202,
    responses={409: {"description": "the deal is already linked to a HubSpot deal, or closed"}},
)
def push_to_hubspot(request: Request, deal_id: str, actor: Actor = Caller) -> JSONResponse:
    """Queue the creation of this deal in HubSpot (with its partner recorded); the job links it when done."""
    need(actor, "write")
    box = request.app.state.secret_box

    def work(session: Session) -> tuple[int, Any]:
        job_id = request_push(session, actor=actor, box=box, deal_id=deal_id, now=now(request))
        return 202, {"deal_id": deal_id, "job_id": job_id, "kind": PUSH_JOB, "status": "queued"}

    return idempotency.run(request, actor, {"deal_id": deal_id}, work)
