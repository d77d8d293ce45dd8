"""Profile > Calendar in the portal: the partner user's own ICS feed URL (create, rotate, turn off).

The feed shows the program's next payout runs and this partner's deal follow-ups and update requests only.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.calendars.service import active_feed, revoke_feed, rotate_feed
from partnerpay.db.engine import unit_of_work
from partnerpay.web.console.calendar_settings import feed_url
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.portal.routes import PartnerUserActor
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
PAGE = "/portal/profile/calendar"


def _page(request: Request, me: Actor, *, new_url: str | None = None) -> Response:
    with reading(request) as session:
        feed = active_feed(session, me)
    context: dict[str, Any] = {"area": "portal", "me": me, "page": "profile", "feed": feed, "new_url": new_url}
    return render(request, "portal/calendar.html", context)


@router.get(PAGE)
def calendar_page(request: Request, me: Actor = PartnerUserActor) -> Response:
    return _page(request, me)


@router.post(PAGE)
def make_feed(
    request: Request, me: Actor = PartnerUserActor, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    with unit_of_work(factory(request)) as session:
        token = rotate_feed(session, actor=me, now=now(request))
    return _page(request, me, new_url=feed_url(request, token))


@router.post(PAGE + "/revoke")
def remove_feed(
    request: Request, me: Actor = PartnerUserActor, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    with unit_of_work(factory(request)) as session:
        revoked = revoke_feed(session, actor=me, now=now(request))
    flash(request, "Calendar feed turned off: its address no longer works." if revoked else "You had no calendar feed.")
    return redirect(PAGE)
