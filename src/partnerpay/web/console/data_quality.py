"""The data-quality page: revenue no partner was found for (with the way to attribute it), inbox items that
failed or wait, and each integration's health, for one program on one page."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.events.data_quality import FAILED_SHOWN, HEALTH_DAYS, UNATTRIBUTED_DAYS, data_quality
from partnerpay.web.console.access import Staff
from partnerpay.web.console.queries import programs
from partnerpay.web.pages import PageRoute, now, reading, render

router = APIRouter(route_class=PageRoute)


@router.get("/data-quality")
def data_quality_page(request: Request, me: Actor = Staff, program: str = "") -> Response:
    with reading(request) as session:
        choices = [p for p in programs(session) if me.sees_program(p.id)]
        chosen = next((p for p in choices if p.id == program), choices[0] if choices else None)
        figures = data_quality(session, me, program_id=chosen.id, now=now(request)) if chosen else None
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "data-quality",
        "programs": [(p.id, p.name) for p in choices],
        "program": chosen,
        "dq": figures,
        "unattributed_days": UNATTRIBUTED_DAYS,
        "health_days": HEALTH_DAYS,
        "failed_shown": FAILED_SHOWN,
    }
    return render(request, "console/data_quality.html", context)
