"""Portal: the partner's earnings over time (commissions and clicks by day), as a page and as the fragment the
home page loads and refreshes every 30 s. Figures from the rollups; the partner is always the logged-in one."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.reports.queries import last_days, partner_series
from partnerpay.web.charts import Series, bar_chart
from partnerpay.web.pages import PageRoute, is_htmx, now, reading, render
from partnerpay.web.portal.routes import PartnerUserActor

router = APIRouter(route_class=PageRoute)
DAYS = 30


@router.get("/portal/earnings")
def earnings(request: Request, me: Actor = PartnerUserActor) -> Response:
    assert me.partner_id is not None
    start, end = last_days(DAYS, today=now(request).date())
    with reading(request) as session:
        partner = session.get(Partner, me.partner_id)
        assert partner is not None
        program = session.get(Program, partner.program_id)
        assert program is not None
        series = partner_series(session, partner_id=partner.id, start=start, end=end)
    c = program.currency
    chart = bar_chart(
        id="chart-earnings",
        title=f"Commissions earned by day ({c}, minor units)",
        categories=[d.day.strftime("%d %b") for d in series.days],
        series=[Series("Commissions", [d.money["commissions"].get(c, 0) for d in series.days])],
    )
    context = {
        "area": "portal", "me": me, "page": "home", "partner": partner, "program": program, "series": series,
        "totals": series.totals, "chart": chart,
    }  # fmt: skip
    name = "portal/_earnings.html" if is_htmx(request) else "portal/earnings.html"
    return render(request, name, context)
