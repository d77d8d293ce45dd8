"""Tracking pages: clicks, signups, leads and won deals by day for a program (with its top partners) or for
one partner, as charts with the table of the same figures beside them."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import ValidationError
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.tracking.stats import DayRange, TrackingStats, day_range, tracking_stats
from partnerpay.web.charts import BarChart, Series, bar_chart
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, now, reading, render

router = APIRouter(route_class=PageRoute)
TEMPLATE = "console/tracking.html"


def charts_of(stats: TrackingStats) -> list[BarChart]:
    days = [d.day.strftime("%d %b") for d in stats.days]
    return [
        bar_chart(
            id="chart-traffic",
            title="Clicks and signups by day",
            categories=days,
            series=[
                Series("Clicks", [d.clicks for d in stats.days]),
                Series("Signups", [d.signups for d in stats.days]),
            ],
        ),
        bar_chart(
            id="chart-pipeline",
            title="Leads and won deals by day",
            categories=days,
            series=[
                Series("Leads", [d.leads for d in stats.days]),
                Series("Won deals", [d.deals_won for d in stats.days]),
            ],
        ),
    ]


def _range(request: Request) -> tuple[DayRange | None, dict[str, str]]:
    """The asked-for range, or None and the error at its field ("from" or "to")."""
    params = request.query_params
    try:
        return day_range(params.get("from"), params.get("to"), today=now(request).date()), {}
    except ValidationError as exc:
        return None, {exc.field or "from": exc.message}


def _page(request: Request, me: Actor, program: Program, context: dict[str, Any], **figures: Any) -> Response:
    days, errors = _range(request)
    base: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "tracking",
        "program": program,
        "form": {"from": request.query_params.get("from", ""), "to": request.query_params.get("to", "")},
        "errors": errors,
        "stats": None,
        **context,
    }
    if days is None:
        return render(request, TEMPLATE, base, status_code=422)
    base["form"] = {"from": days.start.isoformat(), "to": days.end.isoformat()}
    with reading(request) as session:
        stats = tracking_stats(session, program_id=program.id, days=days, **figures)
        owners = queries.partner_owners(session, [figures["partner_id"]]) if "partner_id" in figures else {}
    return render(request, TEMPLATE, {**base, "stats": stats, "charts": charts_of(stats), "owners": owners})


@router.get("/tracking")
def program_tracking(request: Request, me: Actor = Staff) -> Response:
    """`?program_id=&from=YYYY-MM-DD&to=YYYY-MM-DD`; the first program the user may see by default."""
    with reading(request) as session:
        visible = [p for p in queries.programs(session) if me.sees_program(p.id)]
        wanted = request.query_params.get("program_id")
        program = get_program(session, me, wanted) if wanted else (visible[0] if visible else None)
    if program is None:
        context = {"area": "console", "me": me, "page": "tracking", "programs": [], "program": None, "stats": None}
        return render(request, TEMPLATE, context)
    return _page(request, me, program, {"programs": visible, "partner": None})


@router.get("/tracking/partners/{partner_id}")
def partner_tracking(request: Request, partner_id: str, me: Actor = Staff) -> Response:
    with reading(request) as session:
        partner = get_partner(session, me, partner_id)
        program = get_program(session, me, partner.program_id)
    return _page(request, me, program, {"programs": [], "partner": partner}, partner_id=partner.id)
