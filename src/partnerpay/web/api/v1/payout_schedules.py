"""A program's payout schedule, minimums and gates; a partner's payout currency and carried-over balance."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool, StrictInt, StrictStr

from partnerpay.auth.actor import Actor
from partnerpay.partners.service import get_partner
from partnerpay.payouts.settings import carried_over, describe_skip, read_settings, set_partner_currency, write_settings
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In
from partnerpay.web.api.v1.common import Caller, need, now, reader

router = APIRouter()


class PayoutScheduleIn(In):
    schedule: StrictStr = Field(description="manual | monthly | twice_monthly | weekly | net", examples=["monthly"])
    day_of_month: StrictInt | None = Field(default=None, description="monthly, twice_monthly: 1-31 (clamped)")
    second_day: StrictInt | None = Field(default=None, description="twice_monthly: after day_of_month")
    weekday: StrictInt | StrictStr | None = Field(default=None, description="weekly: 0-6 (Monday 0) or a day name")
    net_days: StrictInt | None = Field(default=None, description="net: pay lines approved this many days ago")
    run_hour: StrictInt = Field(default=9, description="local hour of the run, 0-23")
    timezone: StrictStr = Field(default="UTC", examples=["Europe/Berlin"])
    minimums: dict[str, Any] = Field(
        default_factory=dict, description="currency → minimum payout in minor units", examples=[{"EUR": 5000}]
    )
    pay_in_partner_currency: StrictBool = False
    require_verified_method: StrictBool = True
    require_tax_form: StrictBool = False


class PayoutCurrencyIn(In):
    currency: StrictStr = Field(min_length=3, max_length=3, examples=["USD"])


def _out(program_id: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"program_id": program_id, **data}


@router.get("/programs/{program_id}/payout-schedule")
def get_payout_schedule(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """The program's payout settings; `configured: false` means the defaults (manual, no minimums)."""
    with reader(request, actor) as s:
        return _out(program_id, read_settings(s, actor, program_id).as_dict())


@router.put("/programs/{program_id}/payout-schedule")
def put_payout_schedule(
    request: Request, program_id: str, body: PayoutScheduleIn, actor: Actor = Caller
) -> JSONResponse:
    """Replace schedule, minimums and gates (finance or owner); next_run_at is recomputed from now."""
    need(actor, "payouts")
    data = body.model_dump(mode="json")
    return idempotency.run(
        request,
        actor,
        {"program_id": program_id, **data},
        lambda s: (
            200,
            _out(
                program_id,
                write_settings(s, actor=actor, program_id=program_id, data=data, now=now(request)).as_dict(),
            ),
        ),
    )


@router.put("/partners/{partner_id}/payout-currency")
def put_payout_currency(
    request: Request, partner_id: str, body: PayoutCurrencyIn, actor: Actor = Caller
) -> JSONResponse:
    """The currency the partner is paid in when the program has pay_in_partner_currency on."""
    need(actor, "write")

    def work(s: Any) -> tuple[int, dict[str, Any]]:
        row = set_partner_currency(s, actor=actor, partner_id=partner_id, currency=body.currency, now=now(request))
        return 200, {"partner_id": row.partner_id, "currency": row.currency}

    return idempotency.run(request, actor, {"partner_id": partner_id, **body.model_dump(mode="json")}, work)


@router.get("/partners/{partner_id}/carried-over")
def get_carried_over(request: Request, partner_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """Why the latest payout run did not pay the partner, per currency, with a sentence to show."""
    with reader(request, actor) as s:
        partner = get_partner(s, actor, partner_id)
        skips = carried_over(s, partner.id, partner.program_id)
        return {"partner_id": partner.id, "data": [{**k, "text": describe_skip(k)} for k in skips]}
