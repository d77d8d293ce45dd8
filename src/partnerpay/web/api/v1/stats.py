"""Tracking figures by day: GET /programs/{id}/stats and GET /partners/{id}/stats (docs/api-stats.md)."""

from __future__ import annotations

from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import NotFound, Unauthorized
from partnerpay.partners.service import get_partner
from partnerpay.programs.service import get_program
from partnerpay.tracking.stats import Figures, Ratio, TrackingStats, day_range, tracking_stats
from partnerpay.web.api.v1.common import now, reader
from partnerpay.web.security import api_actor, factory, partner_from_session

router = APIRouter(tags=["stats"])
From = Query(None, alias="from", description="first day (UTC), YYYY-MM-DD; default: 29 days before `to`")
To = Query(
    None, alias="to", description="last day (UTC, included), YYYY-MM-DD; default: today; at most 366 days in all"
)


class AmountOut(BaseModel):
    currency: str
    amount: int  # minor units


class RatioOut(BaseModel):
    numerator: int
    denominator: int
    basis_points: int | None  # rounded half-even; null when the denominator is 0
    percent: str  # one decimal, for display: "12.3 %"


class FiguresOut(BaseModel):
    clicks: int
    attributed_clicks: int
    signups: int
    leads: int
    deals_won: int
    won: list[AmountOut]
    paying_customers: int
    revenue: list[AmountOut]


class DayOut(FiguresOut):
    date: date


class TopPartnerOut(BaseModel):
    partner_id: str
    name: str
    owner_email: str | None
    clicks: int
    signups: int
    leads: int
    deals_won: int


class StatsOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    program_id: str
    partner_id: str | None
    from_: date = Field(alias="from")
    to: date
    days: list[DayOut]
    totals: FiguresOut
    conversion: dict[str, RatioOut]
    top_partners: list[TopPartnerOut]


def stats_caller(request: Request) -> Actor:
    """An API key or staff session as everywhere in v1; without one, a partner logged in to the portal may
    read its own figures (read-only, and get_partner answers 404 for any other partner)."""
    if request.headers.get("authorization"):
        return api_actor(request)
    try:
        return api_actor(request)
    except Unauthorized:
        with factory(request)() as session:
            partner = partner_from_session(request, session)
        if partner is None:
            raise
        return partner


Caller = Depends(stats_caller)


def _money(by_currency: dict[str, int]) -> list[dict[str, Any]]:
    return [{"currency": c, "amount": a} for c, a in sorted(by_currency.items())]


def _figures(f: Figures) -> dict[str, Any]:
    return {
        "clicks": f.clicks,
        "attributed_clicks": f.attributed_clicks,
        "signups": f.signups,
        "leads": f.leads,
        "deals_won": f.deals_won,
        "won": _money(f.won),
        "paying_customers": f.paying_customers,
        "revenue": _money(f.revenue),
    }


def _ratio(r: Ratio) -> dict[str, Any]:
    return {
        "numerator": r.numerator,
        "denominator": r.denominator,
        "basis_points": r.basis_points,
        "percent": r.percent,
    }


def body_of(stats: TrackingStats) -> dict[str, Any]:
    return {
        "program_id": stats.program_id,
        "partner_id": stats.partner_id,
        "from": stats.range.start.isoformat(),
        "to": stats.range.end.isoformat(),
        "days": [{"date": d.day.isoformat(), **_figures(d)} for d in stats.days],
        "totals": _figures(stats.totals),
        "conversion": {name: _ratio(r) for name, r in stats.conversion.items()},
        "top_partners": [t.__dict__ for t in stats.top_partners],
    }


@router.get("/programs/{program_id}/stats", response_model=StatsOut)
def program_stats(
    request: Request, program_id: str, actor: Actor = Caller, start: str | None = From, end: str | None = To
) -> dict[str, Any]:
    """Clicks, signups, leads, won deals, paying customers and revenue by day for the whole program."""
    with reader(request, actor) as s:
        if actor.partner_id is not None:
            # A partner's login reads its own figures (/partners/{id}/stats), never the program's.
            raise NotFound(f"program {program_id} not found", field="program_id")
        program = get_program(s, actor, program_id)
        days = day_range(start, end, today=now(request).date())
        return body_of(tracking_stats(s, program_id=program.id, days=days))


@router.get("/partners/{partner_id}/stats", response_model=StatsOut)
def partner_stats(
    request: Request, partner_id: str, actor: Actor = Caller, start: str | None = From, end: str | None = To
) -> dict[str, Any]:
    """The same figures for one partner; a partner-scoped caller gets 404 for any partner but itself."""
    with reader(request, actor) as s:
        partner = get_partner(s, actor, partner_id)
        days = day_range(start, end, today=now(request).date())
        return body_of(tracking_stats(s, program_id=partner.program_id, days=days, partner_id=partner.id))
