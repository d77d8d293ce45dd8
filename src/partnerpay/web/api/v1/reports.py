"""Dashboard data and the weekly report schedule (docs/api-reports.md). Figures come from the rollups."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool, StrictInt, StrictStr

from partnerpay.auth.actor import Actor
from partnerpay.commissions.queries import partner_balance
from partnerpay.kit.errors import NotFound, ValidationError
from partnerpay.partners.service import get_partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.reports.queries import (
    MAX_DAYS,
    MAX_TOP,
    Figures,
    Series,
    TopPartner,
    commissions_by_status,
    last_days,
    next_payout_at,
    partner_series,
    program_overview,
    top_partners,
)
from partnerpay.reports.schedule import read_schedule, write_schedule
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In
from partnerpay.web.api.v1.common import Caller, need, now, reader
from partnerpay.web.api.v1.stats import Caller as PartnerOrStaff

router = APIRouter(tags=["reports"])
Days = Query(30, description=f"whole UTC days ending today, 1 to {MAX_DAYS}")


def _days(request: Request, days: int) -> tuple[Any, Any]:
    if not 1 <= days <= MAX_DAYS:
        raise ValidationError(f"days must be 1 to {MAX_DAYS}, got {days}", field="days")
    return last_days(days, today=now(request).date())


def _money(by_currency: dict[str, int]) -> list[dict[str, Any]]:
    return [{"currency": c, "amount": a} for c, a in sorted(by_currency.items())]


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "clicks": f.clicks,
        "signups": f.signups,
        "leads": f.leads,
        "deals_won": f.deals_won,
        "conversions": f.conversions,
        "customers_paid": f.customers_paid,
        **{name: _money(by_currency) for name, by_currency in f.money.items()},
    }


def _series(series: Series) -> dict[str, Any]:
    return {
        "from": series.start.isoformat(),
        "to": series.end.isoformat(),
        "days": [{"date": d.day.isoformat(), **_figures(d)} for d in series.days],
        "totals": _figures(series.totals),
    }


def _top(t: TopPartner) -> dict[str, Any]:
    return {
        "partner_id": t.partner_id,
        "name": t.name,
        "clicks": t.clicks,
        "signups": t.signups,
        "conversions": t.conversions,
        "deals_won": t.deals_won,
        "revenue": {"amount": t.revenue, "currency": t.currency},
        "commissions": {"amount": t.commissions, "currency": t.currency},
    }


def _program(request: Request, actor: Actor, s: Any, program_id: str) -> Program:
    if actor.partner_id is not None:
        raise NotFound(f"program {program_id} not found", field="program_id")  # a partner sees only its own
    return get_program(s, actor, program_id)


@router.get("/reports/programs/{program_id}/overview")
def program_overview_data(
    request: Request, program_id: str, actor: Actor = PartnerOrStaff, days: int = Days
) -> dict[str, Any]:
    """Revenue attributed, commissions by status, payouts, funnel and top 10 partners of the last `days` days."""
    with reader(request, actor) as s:
        program = _program(request, actor, s, program_id)
        start, end = _days(request, days)
        o = program_overview(
            s, program_id=program.id, currency=program.currency, start=start, end=end, now=now(request)
        )
        return {
            "program_id": program.id,
            "currency": program.currency,
            **_series(o.series),
            "commissions_by_status": {k: _money(v) for k, v in o.commissions_by_status.items()},
            "funnel": {"clicks": o.funnel.clicks, "signups": o.funnel.signups, "paid": o.funnel.customers_paid},
            "top_partners": [_top(t) for t in o.top_partners],
            "next_payout_at": o.next_payout_at.isoformat() if o.next_payout_at else None,
        }


@router.get("/reports/programs/{program_id}/top-partners")
def program_top_partners(
    request: Request,
    program_id: str,
    actor: Actor = PartnerOrStaff,
    days: int = Days,
    limit: int = Query(100, ge=1, le=MAX_TOP, description=f"at most {MAX_TOP}"),
) -> dict[str, Any]:
    """Partners ranked by revenue in the program currency, then conversions, then clicks."""
    with reader(request, actor) as s:
        program = _program(request, actor, s, program_id)
        start, end = _days(request, days)
        top = top_partners(s, program_id=program.id, currency=program.currency, start=start, end=end, limit=limit)
        return {
            "program_id": program.id,
            "from": start.isoformat(),
            "to": end.isoformat(),
            "data": [_top(t) for t in top],
        }


@router.get("/reports/partners/{partner_id}/series")
def partner_series_data(
    request: Request, partner_id: str, actor: Actor = PartnerOrStaff, days: int = Days
) -> dict[str, Any]:
    """One partner's figures by day, its balance now (pending / payable / paid) and the next payout date.
    A partner's portal login reads its own only: any other partner is 404."""
    with reader(request, actor) as s:
        partner = get_partner(s, actor, partner_id)
        program = s.get(Program, partner.program_id)
        assert program is not None
        start, end = _days(request, days)
        at = now(request)
        balance = partner_balance(s, partner, program.currency, at)
        return {
            "partner_id": partner.id,
            "program_id": partner.program_id,
            **_series(partner_series(s, partner_id=partner.id, start=start, end=end)),
            "balance": {
                "currency": balance.currency,
                "pending": balance.pending,
                "approved": balance.approved,
                "payable": balance.payable,
                "in_batch": balance.in_batch,
                "paid": balance.paid,
            },
            "commissions_by_status": {
                k: _money(v)
                for k, v in commissions_by_status(s, program_id=partner.program_id, partner_id=partner.id).items()
            },
            "next_payout_at": (n.isoformat() if (n := next_payout_at(s, partner.program_id, at)) else None),
        }


class ReportScheduleIn(In):
    enabled: StrictBool = True
    weekday: StrictInt | StrictStr = Field(default=0, description="0-6 (Monday 0) or a day name", examples=["monday"])
    hour: StrictInt = Field(default=8, description="local hour, 0-23")
    minute: StrictInt = Field(default=0, description="0-59")
    timezone: StrictStr = Field(default="UTC", examples=["Europe/Berlin"])
    staff_ids: list[StrictStr] = Field(default_factory=list, description="staff users who receive the report")
    send_to_partners: StrictBool = Field(default=False, description="also send each partner its own version")


@router.get("/programs/{program_id}/report-schedule")
def get_report_schedule(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """When the weekly report goes out; `configured: false` means never set (nothing is sent)."""
    with reader(request, actor) as s:
        return {"program_id": program_id, **read_schedule(s, actor, program_id).as_dict()}


@router.put("/programs/{program_id}/report-schedule")
def put_report_schedule(
    request: Request, program_id: str, body: ReportScheduleIn, actor: Actor = Caller
) -> JSONResponse:
    """Replace the weekly report schedule (scope 'write'); audited."""
    need(actor, "write")
    data = body.model_dump(mode="json")
    return idempotency.run(
        request,
        actor,
        {"program_id": program_id, **data},
        lambda s: (
            200,
            {
                "program_id": program_id,
                **write_schedule(s, actor=actor, program_id=program_id, data=data, now=now(request)).as_dict(),
            },
        ),
    )
