"""The console partner page's Disputes section: that partner's disputes with status, SLA and a link to each
case (loaded into the page; also a page of its own without JavaScript)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.disputes import queries
from partnerpay.disputes.rules import NEXT_STEP, is_overdue, sla_text
from partnerpay.partners.service import get_partner
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, is_htmx, reading, render

router = APIRouter(route_class=PageRoute)


@router.get("/partners/{partner_id}/disputes")
def partner_disputes(request: Request, partner_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        partner = get_partner(session, me, partner_id)
        disputes, total = queries.for_partner(session, me, partner.id)
    context = {
        "area": "console", "page": "partners", "me": me, "p": partner, "disputes": disputes, "total": total,
        "next_steps": NEXT_STEP, "sla_text": sla_text, "is_overdue": is_overdue,
    }  # fmt: skip
    name = "console/_partner_disputes.html" if is_htmx(request) else "console/partner_disputes.html"
    return render(request, name, context)
