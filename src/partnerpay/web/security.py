"""Who is calling: API keys, staff sessions and partner sessions; CSRF for cookie-authenticated writes."""

from __future__ import annotations

import hmac
import secrets

from fastapi import Request
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.auth.models import StaffUser
from partnerpay.auth.service import api_key_actor, staff_actor
from partnerpay.kit.errors import Forbidden, Unauthorized
from partnerpay.partners.models import Partner, PartnerUser

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


def factory(request: Request) -> sessionmaker[Session]:
    return request.app.state.session_factory  # type: ignore[no-any-return]


def read_factory(request: Request) -> sessionmaker[Session]:
    """Sessions for requests that only read (no write lock on SQLite)."""
    return request.app.state.read_factory  # type: ignore[no-any-return]


def csrf_token(request: Request) -> str:
    token = request.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        request.session["csrf"] = token
    return str(token)


def check_csrf(request: Request, submitted: str | None) -> None:
    expected = request.session.get("csrf")
    if not expected or not submitted or not hmac.compare_digest(str(expected), submitted):
        raise Forbidden(
            "the form expired or did not come from this site; reload the page and try again", field="csrf_token"
        )


def staff_from_session(request: Request, session: Session) -> Actor | None:
    user_id = request.session.get("staff_id")
    if not user_id:
        return None
    user = session.get(StaffUser, user_id)
    return staff_actor(user) if user else None


def partner_from_session(request: Request, session: Session) -> Actor | None:
    user_id = request.session.get("partner_user_id")
    if not user_id:
        return None
    user = session.get(PartnerUser, user_id)
    if user is None:
        return None
    partner = session.get(Partner, user.partner_id)
    if partner is None:
        return None
    return Actor(
        ActorType.PARTNER,
        user.id,
        frozenset({"read"}),
        program_id=partner.program_id,
        partner_id=partner.id,
        label=user.email,
    )


def api_actor(request: Request) -> Actor:
    """Bearer API key, or a staff session (whose writes must carry the X-CSRF-Token header)."""
    with factory(request)() as session:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            actor = api_key_actor(session, header[7:].strip())
            if actor is None:
                raise Unauthorized("the API key is unknown or revoked")
            return actor
        actor = staff_from_session(request, session)
        if actor is None:
            raise Unauthorized("send 'Authorization: Bearer <api key>' or log in to the console")
        if request.method not in SAFE_METHODS:
            check_csrf(request, request.headers.get("x-csrf-token"))
        return actor
