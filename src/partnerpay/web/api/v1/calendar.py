"""Calendars: the secret ICS feed (outside /api/v1) and a program's Google Calendar status and sync."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from partnerpay.auth.actor import Actor
from partnerpay.calendars.google_sync import request_sync, status_of
from partnerpay.calendars.ics import build_calendar
from partnerpay.calendars.items import items_for
from partnerpay.calendars.service import feed_actor
from partnerpay.db.engine import unit_of_work
from partnerpay.programs.service import get_program
from partnerpay.web.api.v1.common import Caller, need, now, reader
from partnerpay.web.security import factory, read_factory

router = APIRouter()
feed_router = APIRouter()  # mounted at the root by web/app.py: calendar apps fetch /calendar/{token}.ics

CALENDAR_TYPE = "text/calendar; charset=utf-8"


@feed_router.get("/calendar/{token}.ics", include_in_schema=False)
def calendar_feed(request: Request, token: str) -> Response:
    """The user's calendar: payout runs, approval deadlines, deal follow-ups, update requests. 404 if unknown."""
    with read_factory(request)() as session:
        actor = feed_actor(session, token)
        if actor is None:
            return Response("Not found\n", status_code=404, media_type="text/plain")
        items = items_for(session, actor, now(request))
    body = build_calendar(items, name=f"partnerpay · {actor.label}", base_url=request.app.state.settings.base_url)
    # The URL is the secret: keep it out of shared caches; calendar apps poll it anyway.
    return Response(body, media_type=CALENDAR_TYPE, headers={"Cache-Control": "private, max-age=300"})


@router.get("/programs/{program_id}/google-calendar")
def google_calendar_status(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """Whether the program's Google Calendar is connected, how many events it holds, the last sync and error."""
    with reader(request, actor) as session:
        program = get_program(session, actor, program_id)
        return status_of(session, program.id)


@router.post("/programs/{program_id}/google-calendar/sync", status_code=202)
def google_calendar_sync(request: Request, program_id: str, actor: Actor = Caller) -> JSONResponse:
    """Queue a sync now (the worker also syncs every connected program each quarter hour)."""
    need(actor, "write")
    with unit_of_work(factory(request)) as session:
        job_id = request_sync(session, actor=actor, program_id=program_id, now=now(request))
    return JSONResponse({"job_id": job_id}, status_code=202)
