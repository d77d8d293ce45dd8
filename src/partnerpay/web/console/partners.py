"""Partners table with a status filter and a search box."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import ValidationError
from partnerpay.partners.models import PartnerStatus
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, reading, render

router = APIRouter(route_class=PageRoute)
STATUSES = [s.value for s in PartnerStatus]


@router.get("/partners")
def partners(request: Request, me: Actor = Staff, status: str = "", q: str = "", cursor: str | None = None) -> Response:
    if status and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}, got {status!r}", field="status")
    with reading(request) as session:
        page = queries.search_partners(session, status=status or None, q=q, cursor=cursor)
        names = queries.program_names(session)
    return render(
        request,
        "console/partners.html",
        {
            "area": "console",
            "me": me,
            "page": "partners",
            "partners": page.data,
            "next_cursor": page.next_cursor,
            "statuses": STATUSES,
            "status": status,
            "q": q,
            "program_names": names,
        },
    )
