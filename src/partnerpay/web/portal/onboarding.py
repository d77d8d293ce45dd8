"""Portal terms: read the program's current terms and accept them (time, address, user and version recorded)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from markupsafe import Markup

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError
from partnerpay.partners.models import Partner
from partnerpay.programs import terms
from partnerpay.programs.models import Program
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.portal.routes import PartnerUserActor
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
TERMS = "/portal/terms"


def _page(request: Request, me: Actor, *, error: str | None = None, status: int = 200) -> Response:
    assert me.partner_id is not None
    with reading(request) as session:
        partner = session.get(Partner, me.partner_id)
        assert partner is not None
        program = session.get(Program, partner.program_id)
        current = terms.latest_terms(session, partner.program_id)
        accepted = terms.acceptance_of(session, partner.id, current.id) if current else None
    context = {
        "area": "portal",
        "page": "terms",
        "me": me,
        "partner": partner,
        "program": program,
        "terms": current,
        # The renderer lets no raw HTML through (see programs.terms.to_html), so this is safe to mark.
        "terms_html": Markup(terms.to_html(current.body_markdown)) if current else None,  # noqa: S704
        "accepted": accepted,
        "error": error,
    }
    return render(request, "portal/terms.html", context, status_code=status)


@router.get(TERMS)
def show_terms(request: Request, me: Actor = PartnerUserActor) -> Response:
    return _page(request, me)


@router.post(TERMS)
def accept_terms(
    request: Request,
    me: Actor = PartnerUserActor,
    version: Annotated[int, Form()] = 0,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    assert me.partner_id is not None
    ip = request.client.host if request.client else None
    try:
        with unit_of_work(factory(request)) as session:
            acceptance = terms.accept_terms(
                session, actor=me, partner_id=me.partner_id, version=version, ip=ip, now=now(request)
            )
            accepted_version = acceptance.version
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status=exc.status)
    flash(request, f"Thank you: you accepted the terms (version {accepted_version}). You earn on every referral again.")
    return redirect("/portal")
