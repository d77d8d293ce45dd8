"""Console Reports: the program overview dashboard (polled every 30 s by HTMX), the weekly report's preview
and its schedule. Figures come from the rollups (reports/queries.py); charts are drawn twice: as server-side
SVG with a table (no script needed) and, where scripts run, by the vendored uPlot from the JSON endpoints."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select

from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.reports.queries import ProgramOverview, last_days, program_overview
from partnerpay.reports.schedule import WEEKDAYS, read_schedule, write_schedule
from partnerpay.reports.weekly import build_report
from partnerpay.reports.weekly import render as render_report
from partnerpay.web.charts import BarChart, Series, bar_chart
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, is_htmx, now, reading, redirect, render, role_of
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
DAYS = 30


def charts_of(o: ProgramOverview) -> list[BarChart]:
    days = [d.day.strftime("%d %b") for d in o.series.days]
    c = o.currency
    return [
        bar_chart(
            id="chart-funnel",
            title="Clicks, signups and first payments by day",
            categories=days,
            series=[
                Series("Clicks", [d.clicks for d in o.series.days]),
                Series("Signups", [d.signups for d in o.series.days]),
                Series("First payments", [d.customers_paid for d in o.series.days]),
            ],
        ),
        bar_chart(
            id="chart-money",
            title=f"Revenue and commissions by day ({c}, minor units)",
            categories=days,
            series=[
                Series("Revenue", [d.money["revenue"].get(c, 0) for d in o.series.days]),
                Series("Commissions", [d.money["commissions"].get(c, 0) for d in o.series.days]),
            ],
        ),
    ]


def _overview(request: Request, me: Actor, program: Program) -> dict[str, Any]:
    start, end = last_days(DAYS, today=now(request).date())
    with reading(request) as session:
        o = program_overview(
            session, program_id=program.id, currency=program.currency, start=start, end=end, now=now(request)
        )
    return {"area": "console", "me": me, "page": "reports", "program": program, "o": o, "charts": charts_of(o)}


@router.get("/reports")
def reports_home(request: Request, me: Actor = Staff) -> Response:
    """The first program the user may see; a list to choose from when there are several."""
    with reading(request) as session:
        visible = [p for p in queries.programs(session) if me.sees_program(p.id)]
    if len(visible) == 1:
        return redirect(f"/reports/programs/{visible[0].id}")
    return render(
        request, "console/reports.html", {"area": "console", "me": me, "page": "reports", "programs": visible}
    )


@router.get("/reports/programs/{program_id}")
def program_dashboard(request: Request, program_id: str, me: Actor = Staff) -> Response:
    """The overview; an HTMX request (the 30-second poll) gets only the live figures fragment."""
    with reading(request) as session:
        program = get_program(session, me, program_id)
    context = _overview(request, me, program)
    name = "console/_report_live.html" if is_htmx(request) else "console/report_overview.html"
    return render(request, name, context)


@router.get("/reports/programs/{program_id}/weekly")
def weekly_preview(request: Request, program_id: str, me: Actor = Staff) -> Response:
    """This week's report as it would be sent now (the 7 days ending yesterday), images inlined."""
    today = now(request).date()
    with reading(request) as session:
        program = get_program(session, me, program_id)
        report = build_report(session, program=program, end=today.fromordinal(today.toordinal() - 1))
        text, html, _ = render_report(report, link=f"/reports/programs/{program.id}", images="data")
    context = {"area": "console", "me": me, "page": "reports", "program": program, "report": report, "html": html}
    return render(request, "console/report_weekly.html", {**context, "text": text})


def _schedule_page(
    request: Request, me: Actor, program_id: str, *, typed: dict[str, Any] | None = None, error: Any = None
) -> Response:
    with reading(request) as session:
        program = get_program(session, me, program_id)
        current = read_schedule(session, me, program.id).as_dict()
        staff = list(session.scalars(select(StaffUser).order_by(StaffUser.email)))
    values = typed or current
    context = {
        "area": "console", "me": me, "role": role_of(me), "page": "reports", "program": program, "v": values,
        "weekdays": WEEKDAYS, "staff": staff, "can_edit": me.can("write"), "error": error, "current": current,
    }  # fmt: skip
    return render(request, "console/report_schedule.html", context, status_code=error.status if error else 200)


@router.get("/reports/programs/{program_id}/schedule")
def schedule_page(request: Request, program_id: str, me: Actor = Staff) -> Response:
    return _schedule_page(request, me, program_id)


@router.post("/reports/programs/{program_id}/schedule")
def save_schedule(
    request: Request,
    program_id: str,
    me: Actor = Staff,
    weekday: Annotated[str, Form()] = "monday",
    hour: Annotated[str, Form()] = "8",
    minute: Annotated[str, Form()] = "0",
    timezone: Annotated[str, Form()] = "UTC",
    staff_ids: Annotated[list[str] | None, Form()] = None,
    enabled: Annotated[bool, Form()] = False,
    send_to_partners: Annotated[bool, Form()] = False,
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    typed: dict[str, Any] = {
        "weekday": weekday, "hour": hour, "minute": minute, "timezone": timezone, "staff_ids": staff_ids or [],
        "enabled": enabled, "send_to_partners": send_to_partners,
    }  # fmt: skip
    data = {**typed, "hour": _number(hour), "minute": _number(minute)}
    try:
        with unit_of_work(factory(request)) as session:
            saved = write_schedule(session, actor=me, program_id=program_id, data=data, now=now(request))
    except PartnerpayError as exc:
        return _schedule_page(request, me, program_id, typed=typed, error=exc)
    state = "on" if saved.enabled else "off"
    when = f"{WEEKDAYS[saved.weekday].title()}s at {saved.hour:02d}:{saved.minute:02d} {saved.timezone}"
    flash(request, f"Weekly report {state}: {when}, to {len(saved.staff_ids)} staff.")
    return redirect(f"/reports/programs/{program_id}/schedule")


def _number(text: str) -> int | str:
    """A whole number from a form box, or the text as typed (write_schedule names the field if it is wrong)."""
    stripped = text.strip()
    return int(stripped) if stripped.isdigit() else stripped
