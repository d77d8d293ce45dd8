"""Settings > Calendar: the user's own ICS feed URL (create, rotate, revoke) and each program's Google Calendar
(connect through Google's consent, sync now, status)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import select

from partnerpay.auth.actor import Actor
from partnerpay.calendars import google_sync
from partnerpay.calendars.service import active_feed, revoke_feed, rotate_feed
from partnerpay.db.engine import unit_of_work
from partnerpay.integrations.google_calendar import PROVIDER
from partnerpay.integrations.settings_store import get_integration
from partnerpay.kit.errors import PartnerpayError
from partnerpay.programs.models import Program
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
PAGE = "/settings/calendar"


def feed_url(request: Request, token: str) -> str:
    return f"{request.app.state.settings.base_url.rstrip('/')}/calendar/{token}.ics"


def _page(
    request: Request, me: Actor, *, new_url: str | None = None, error: str | None = None, status_code: int = 200
) -> Response:
    with reading(request) as session:
        feed = active_feed(session, me)
        stmt = select(Program).order_by(Program.name)
        if me.program_id is not None:
            stmt = stmt.where(Program.id == me.program_id)
        programs = []
        for program in session.scalars(stmt):
            integration = get_integration(session, program.id, PROVIDER)
            programs.append(
                {
                    "program": program,
                    "has_client": integration is not None and bool(integration.config.get("client_id")),
                    "calendar_id": (integration.config.get("calendar_id") if integration else None) or "primary",
                    **google_sync.status_of(session, program.id),
                }
            )
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "settings",
        "feed": feed,
        "new_url": new_url,
        "programs": programs,
        "can_write": me.can("write"),
        "error": error,
    }
    return render(request, "console/calendar_settings.html", context, status_code=status_code)


@router.get(PAGE)
def calendar_settings(request: Request, me: Actor = Staff) -> Response:
    return _page(request, me)


@router.post(f"{PAGE}/feed")
def make_feed(request: Request, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    """A new secret URL, shown once on the page that answers (never put in a cookie or a redirect)."""
    check_form_csrf(request, csrf_token)
    with unit_of_work(factory(request)) as session:
        token = rotate_feed(session, actor=me, now=now(request))
    return _page(request, me, new_url=feed_url(request, token))


@router.post(f"{PAGE}/feed/revoke")
def remove_feed(request: Request, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form_csrf(request, csrf_token)
    with unit_of_work(factory(request)) as session:
        revoked = revoke_feed(session, actor=me, now=now(request))
    flash(request, "Calendar feed turned off: its URL now answers 404." if revoked else "You had no calendar feed.")
    return redirect(PAGE)


@router.post(PAGE + "/google/{program_id}/connect")
def google_connect(
    request: Request, program_id: str, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    settings = request.app.state.settings
    try:
        with unit_of_work(factory(request)) as session:
            url = google_sync.start_connect(
                session,
                actor=me,
                box=request.app.state.secret_box,
                program_id=program_id,
                base_url=settings.base_url,
                endpoints=google_sync.endpoints_of(settings),
                now=now(request),
            )
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status_code=exc.status)
    return RedirectResponse(url, status_code=303)


@router.get(google_sync.CALLBACK_PATH)
def google_callback(request: Request, me: Actor = Staff, state: str = "", code: str = "", error: str = "") -> Response:
    """Google sends the user back here; the code is exchanged by a background job, not in this request."""
    if error:
        flash(request, f"Google Calendar was not connected: Google answered {error[:100]!r}.", "error")
        return redirect(PAGE)
    try:
        with unit_of_work(factory(request)) as session:
            google_sync.finish_connect(
                session, actor=me, box=request.app.state.secret_box, state=state, code=code, now=now(request)
            )
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status_code=exc.status)
    flash(request, "Google accepted: partnerpay finishes connecting in the background and then adds the events.")
    return redirect(PAGE)


@router.post(PAGE + "/google/{program_id}/sync")
def google_sync_now(
    request: Request, program_id: str, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            google_sync.request_sync(session, actor=me, program_id=program_id, now=now(request))
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status_code=exc.status)
    flash(request, "Sync queued: the events are updated within a minute.")
    return redirect(PAGE)
