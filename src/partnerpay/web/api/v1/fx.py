"""A program's recorded currency rates: record them, list them, preview a conversion."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool

from partnerpay.auth.actor import Actor
from partnerpay.fx.service import add_rates, convert, list_rates, program_for_rates, rate_for
from partnerpay.kit.money import Rounding
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, Out, dump, page
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader

router = APIRouter()
_EXAMPLE = {"base": "EUR", "quote": "USD", "rate": "1.0842", "rate_date": "2026-03-01", "source": "ECB reference rate"}


class RatesIn(In):
    # Each row is checked by fx.service so that a float rate gets its own message naming rates.N.rate.
    rates: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=5000,
        examples=[[_EXAMPLE]],
    )
    replace: StrictBool = Field(default=False, description="rewrite a day's recorded rate that differs (else 409)")


class FxRateOut(Out):
    id: str
    program_id: str
    base: str
    quote: str
    rate: str = Field(description="1 base = rate quote, an exact decimal string")
    rate_date: date
    source: str
    created_at: datetime
    created_by: str


@router.post("/programs/{program_id}/fx-rates", status_code=201)
def post_fx_rates(request: Request, program_id: str, body: RatesIn, actor: Actor = Caller) -> JSONResponse:
    """Record rates, all or nothing; each answered row says created, unchanged or replaced."""
    need(actor, "write")

    def work(session: Any) -> tuple[int, Any]:
        results = add_rates(session, actor, program_id, body.rates, now(request), replace=body.replace)
        return 201, {"data": [{**dump(FxRateOut, r.record), "outcome": r.outcome} for r in results]}

    return idempotency.run(request, actor, {"program_id": program_id, **body.model_dump(mode="json")}, work)


@router.get("/programs/{program_id}/fx-rates")
def get_fx_rates(
    request: Request,
    program_id: str,
    actor: Actor = Caller,
    base: str | None = None,
    quote: str | None = None,
    on: date | None = Query(None, description="only rates that apply from this day or earlier"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as session:
        result = list_rates(session, actor, program_id, base=base, quote=quote, on=on, cursor=cursor, limit=limit)
        return page(FxRateOut, result.data, result.next_cursor)


@router.get("/programs/{program_id}/fx-rates/convert")
def preview_conversion(
    request: Request,
    program_id: str,
    amount: int = Query(description="minor units of `from`"),
    from_ccy: str = Query(alias="from"),
    to_ccy: str | None = Query(None, alias="to", description="default: the program currency"),
    on: date | None = Query(None, description="default: today (UTC)"),
    actor: Actor = Caller,
) -> dict[str, Any]:
    """What `amount` of `from` is in `to` with the rate that applies on the day, rounded as the program rounds."""
    with reader(request, actor) as session:
        program = program_for_rates(session, actor, program_id)
        target = to_ccy or program.currency
        day = on or now(request).date()
        rate = None if from_ccy == target else rate_for(session, program.id, from_ccy, target, day)
        result = convert(amount, from_ccy, target, rate, Rounding(program.rounding))
        return {
            "amount": result.amount,
            "currency": result.currency,
            "from_amount": result.from_amount,
            "from_currency": result.from_currency,
            "rate_id": result.rate_id,
            "rate": result.rate_text,
            "inverted": result.inverted,
            "rate_date": rate.rate_date.isoformat() if rate else None,
            "source": rate.source if rate else None,
            "rounding": result.rounding.value,
            "explanation": result.explain(),
        }
