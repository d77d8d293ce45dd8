"""The partner's monthly statements in the portal: a list of months with PDF and CSV downloads.

No URL carries a partner id: the statements are always the logged-in partner's own.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.web.api.v1.statements import months_page, statement_file
from partnerpay.web.pages import PageRoute, now, reading, render
from partnerpay.web.portal.routes import PartnerUserActor

router = APIRouter(route_class=PageRoute)


@router.get("/portal/statements")
def statements_page(request: Request, me: Actor = PartnerUserActor) -> Response:
    assert me.partner_id is not None
    with reading(request) as session:
        partner = session.get(Partner, me.partner_id)
        assert partner is not None
        program = session.get(Program, partner.program_id)
        months, _ = months_page(session, me, partner.id, now(request), cursor=None, limit=120)
    context = {
        "area": "portal",
        "page": "statements",
        "me": me,
        "partner": partner,
        "program": program,
        "months": months,
        "base": "/portal/statements",
    }
    return render(request, "portal/statements.html", context)


@router.get("/portal/statements/{period}.pdf")
def statement_pdf(request: Request, period: str, me: Actor = PartnerUserActor) -> Response:
    assert me.partner_id is not None
    return statement_file(request, me, me.partner_id, period, "pdf")


@router.get("/portal/statements/{period}.csv")
def statement_csv(request: Request, period: str, me: Actor = PartnerUserActor) -> Response:
    assert me.partner_id is not None
    return statement_file(request, me, me.partner_id, period, "csv")
