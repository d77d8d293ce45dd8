"""Who is looking at a console page: the logged-in staff user, or a redirect to /login."""

from __future__ import annotations

from fastapi import Depends, Request

from partnerpay.auth.actor import Actor
from partnerpay.web.pages import LoginRequired, login_location, reading
from partnerpay.web.security import staff_from_session

LOGIN_PATH = "/login"


def require_staff(request: Request) -> Actor:
    with reading(request) as session:
        actor = staff_from_session(request, session)
    if actor is None:
        raise LoginRequired(login_location(request, LOGIN_PATH))
    return actor


Staff = Depends(require_staff)
