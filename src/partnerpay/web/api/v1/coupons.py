"""Coupons: discount codes mapped to partners."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr

from partnerpay.auth.actor import Actor
from partnerpay.tracking import coupons
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, Out, dump, page
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader

router = APIRouter()


class CouponIn(In):
    program_id: StrictStr
    partner_id: StrictStr
    code: StrictStr = Field(min_length=1, max_length=100, examples=["SPRING10"])
    source: StrictStr = Field(default="manual", description="manual | shopify | stripe")
    provider_id: StrictStr | None = Field(
        default=None, max_length=200, description="Shopify discount id or Stripe promotion code id"
    )


class CouponOut(Out):
    id: str
    program_id: str
    partner_id: str
    code: str
    source: str
    provider_id: str | None
    active: bool
    created_at: datetime


@router.post("/coupons", status_code=201)
def create_coupon(request: Request, body: CouponIn, actor: Actor = Caller) -> JSONResponse:
    """Map a code to a partner; the same code in the program (any case) is 409."""
    need(actor, "write")

    def work(session):  # type: ignore[no-untyped-def]
        coupon = coupons.create_coupon(
            session,
            actor=actor,
            program_id=body.program_id,
            partner_id=body.partner_id,
            code=body.code,
            source=body.source,
            provider_id=body.provider_id,
            now=now(request),
        )
        return 201, dump(CouponOut, coupon)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.get("/coupons")
def list_coupons(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    partner_id: str | None = None,
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        result = coupons.list_coupons(
            s, actor, program_id=program_id, partner_id=partner_id, cursor=cursor, limit=limit
        )
        return page(CouponOut, result.data, result.next_cursor)


@router.post("/coupons/{coupon_id}/deactivate")
def deactivate_coupon(request: Request, coupon_id: str, actor: Actor = Caller) -> JSONResponse:
    """The code stops attributing new customers; those it brought keep their partner."""
    need(actor, "write")

    def work(session):  # type: ignore[no-untyped-def]
        coupon = coupons.deactivate_coupon(session, actor=actor, coupon_id=coupon_id, now=now(request))
        return 200, dump(CouponOut, coupon)

    return idempotency.run(request, actor, {}, work)
