"""One-click unsubscribe (RFC 8058) from non-transactional partner mail: no login, the signed link is enough.

GET shows what the link does and a button (mail scanners follow GET links, so a GET changes nothing);
POST records it: mail clients send `List-Unsubscribe=One-Click` there, without cookies, so no CSRF token
is asked for. The token names one partner and one kind and cannot be forged without the secret key.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.db.engine import unit_of_work
from partnerpay.messaging.preferences import UNSUBSCRIBE_PATH, read_token, unsubscribe
from partnerpay.messaging.templates import KINDS
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.web.pages import PageRoute, now, reading, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)


def _secret(request: Request) -> str:
    return request.app.state.settings.require_secret()  # type: ignore[no-any-return]


@router.get(UNSUBSCRIBE_PATH + "{token}")
def confirm(request: Request, token: str) -> Response:
    partner_id, kind = read_token(_secret(request), token)
    with reading(request) as session:
        partner = session.get(Partner, partner_id)
        program = session.get(Program, partner.program_id) if partner else None
    context = {"area": "public", "token": token, "label": KINDS[kind].label, "program": program, "done": False}
    return render(request, "public/unsubscribe.html", context)


@router.post(UNSUBSCRIBE_PATH + "{token}")
def one_click(request: Request, token: str) -> Response:
    with unit_of_work(factory(request)) as session:
        partner, kind = unsubscribe(session, secret=_secret(request), token=token, now=now(request))
        program = session.get(Program, partner.program_id)
    context = {"area": "public", "token": token, "label": KINDS[kind].label, "program": program, "done": True}
    return render(request, "public/unsubscribe.html", context)
