"""Statements on the console's partner page: the months with PDF/CSV downloads (a section the partner page
loads, or a page of its own without JavaScript)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.partners.service import get_partner
from partnerpay.web.api.v1.statements import months_page, statement_file
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, is_htmx, now, reading, render

router = APIRouter(route_class=PageRoute)


@router.get("/partners/{partner_id}/statements")
def partner_statements(request: Request, partner_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        partner = get_partner(session, me, partner_id)
        months, _ = months_page(session, me, partner.id, now(request), cursor=None, limit=120)
    context = {
        "area": "console",
        "page": "partners",
        "me": me,
        "p": partner,
        "months": months,
        "base": f"/partners/{partner.id}/statements",
    }
    name = "console/_statement_months.html" if is_htmx(request) else "console/partner_statements.html"
    return render(request, name, context)


@router.get("/partners/{partner_id}/statements/{period}.pdf")
def statement_pdf(request: Request, partner_id: str, period: str, me: Actor = Staff) -> Response:
    return statement_file(request, me, partner_id, period, "pdf")


@router.get("/partners/{partner_id}/statements/{period}.csv")
def statement_csv(request: Request, partner_id: str, period: str, me: Actor = Staff) -> Response:
    return statement_file(request, me, partner_id, period, "csv")
