"""The plan's Simulate page: the backtest (commissions/backtest.py) for a window and version, per partner and in
total; a plain GET form, since nothing is written."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.commissions.backtest import simulate
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.plans import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, now, reading, render

router = APIRouter(route_class=PageRoute)


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationError(f"{value!r} is not a date such as 2026-01-31", field=field) from None


def _version(value: str) -> int | None:
    if not value:
        return None
    if not value.isdigit():
        raise ValidationError(f"{value!r} is not a version number", field="version")
    return int(value)


@router.get("/plans/{plan_id}/simulate")
def simulate_page(request: Request, plan_id: str, me: Actor = Staff) -> Response:
    params = request.query_params
    start, end, version = params.get("from", ""), params.get("to", ""), params.get("version", "")
    today = now(request).date()
    form = {
        "from": start or (today - timedelta(days=90)).isoformat(),
        "to": end or today.isoformat(),
        "version": version,
    }
    errors: dict[str, str] = {}
    result = None
    with reading(request) as session:
        view = queries.plan_view(session, me, plan_id)
        if start and end:
            try:
                result = simulate(session, me, plan_id, _day(start, "from"), _day(end, "to"), version=_version(version))
            except PartnerpayError as exc:
                if exc.status in (403, 404) and exc.field != "version":
                    raise
                errors[exc.field or "from"] = exc.message
    # The read session is closed without a commit: a backtest never writes.
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "plans",
        "view": view,
        "form": form,
        "errors": errors,
        "result": result,
    }
    return render(request, "console/plan_simulate.html", context, status_code=422 if errors else 200)
