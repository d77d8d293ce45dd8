"""Revenue and lifecycle events."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from partnerpay.auth.actor import Actor
from partnerpay.events.schemas import EventIn
from partnerpay.inbox.ingest import ingest_event
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import EventOut, dump, lines_out
from partnerpay.web.api.v1.common import Caller, need, now

router = APIRouter()


@router.post("/events", status_code=201, responses={200: {"description": "the same event again: first result"}})
def create_event(request: Request, body: EventIn, actor: Actor = Caller) -> JSONResponse:
    """Record an event once (stored in the inbox, then processed at once); the same external_id again
    returns 200 with the first result."""
    need(actor, "write")

    def work(session):  # type: ignore[no-untyped-def]
        recorded = ingest_event(session, actor=actor, data=body, now=now(request))
        payload = {
            "event": dump(EventOut, recorded.event),
            "commissions": lines_out(session, recorded.commissions),
        }
        return (201 if recorded.created else 200), payload

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)
