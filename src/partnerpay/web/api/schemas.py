"""API shapes: money is an integer amount in minor units plus an ISO 4217 currency."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, StrictInt, StrictStr
from sqlalchemy.orm import Session

from partnerpay.commissions.queries import plan_citations


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ProgramIn(In):
    name: StrictStr = Field(min_length=1, max_length=200)
    currency: StrictStr = Field(min_length=3, max_length=3, examples=["EUR"])
    hold_days: StrictInt = Field(ge=0, le=3650, examples=[30])
    default_percent_bp: StrictInt = Field(default=0, ge=0, le=10_000, examples=[2000])
    cookie_days: StrictInt = Field(default=30, ge=0, le=3650)
    rounding: StrictStr = "half_even"


class ProgramOut(Out):
    id: str
    name: str
    currency: str
    hold_days: int
    default_percent_bp: int
    cookie_days: int
    rounding: str
    created_at: datetime


class PartnerIn(In):
    program_id: StrictStr
    name: StrictStr = Field(min_length=1, max_length=200)
    email: EmailStr
    group_id: StrictStr | None = None
    country: StrictStr | None = Field(default=None, min_length=2, max_length=2)
    recruited_by_id: StrictStr | None = Field(
        default=None, description="the partner who recruited this one (earns a plan rule's two-tier share)"
    )


class PartnerPatch(In):
    """Only the fields sent change; null clears."""

    recruited_by_id: StrictStr | None = Field(
        default=None, description="another partner of the program, not one of this partner's own recruits"
    )


class PartnerOut(Out):
    id: str
    program_id: str
    name: str
    email: str
    referral_code: str
    status: str
    group_id: str | None
    country: str | None
    created_at: datetime
    recruited_by_id: str | None = None


class BalanceOut(Out):
    partner_id: str
    currency: str
    pending: int
    approved: int
    payable: int
    in_batch: int
    paid: int
    clawback_carry: int
    # Issue 7 part 2: why the latest payout run left money unpaid (below the minimum, no verified method, …),
    # one entry per currency with a sentence to show; the first sentence alone in carried_over_reason.
    carried_over: list[dict[str, Any]] = Field(default_factory=list)
    carried_over_reason: str | None = None


class LineOut(Out):
    id: str
    program_id: str
    partner_id: str
    customer_id: str | None
    event_id: str | None
    kind: str
    amount: int
    currency: str
    base_amount: int | None
    rate_bp: int | None
    rounding: str
    status: str
    hold_until: datetime
    explanation: str
    reverses_line_id: str | None
    payout_id: str | None
    approved_by: str | None
    approved_at: datetime | None
    rejected_reason: str | None
    created_at: datetime
    created_by: str | None = Field(default=None, description="who added a manual adjustment")
    reason: str | None = Field(default=None, description="why a manual adjustment was made")
    plan_version_id: str | None = Field(default=None, description="the plan version that made the line; null: none")
    rule_number: int | None = Field(default=None, description="the rule of that version (from 1) that made it")
    plan_id: str | None = Field(default=None, description="the plan of that version (see lines_out)")
    plan_name: str | None = Field(default=None, description="its name, as cited in the explanation")
    plan_version: int | None = Field(default=None, description="the version number, as cited (v4)")


class EventOut(Out):
    id: str
    program_id: str
    type: str
    external_id: str
    occurred_at: datetime
    customer_id: str
    partner_id: str | None
    amount: int | None
    currency: str | None
    product: str | None
    original_event_id: str | None
    metadata: dict[str, Any] | None = Field(default=None, validation_alias="metadata_json")
    created_at: datetime
    attribution_id: str | None = Field(default=None, description="the attribution decision that named the partner")
    unattributed_reason: str | None = Field(default=None, description="why no partner was found, when none was")


class IdsIn(In):
    ids: list[StrictStr] = Field(min_length=1, max_length=5000)


class RejectIn(IdsIn):
    reason: StrictStr = Field(min_length=1, max_length=2000)


class PayoutRunIn(In):
    program_id: StrictStr
    as_of: AwareDatetime | None = None


class PayoutOut(Out):
    id: str
    batch_id: str
    partner_id: str
    amount: int
    currency: str
    line_count: int
    status: str
    paid_at: datetime | None
    # Issue 7 parts 4-5: the rail Pay all chose, when it went out, the provider's reference, and the last
    # provider error while it is still being retried.
    rail: str | None = None
    sent_at: datetime | None = None
    provider_ref: str | None = None
    attempts: int = 0
    last_error: str | None = None
    # Issue 7 part 7: amount/currency are what is sent; source_* what the lines summed to, at fx_rate.
    source_amount: int | None = None
    source_currency: str | None = None
    fx_rate: str | None = None


class BatchOut(Out):
    id: str
    run_id: str
    program_id: str
    currency: str
    status: str
    total: int
    payout_count: int
    approved_by: str | None
    approved_at: datetime | None
    paid_at: datetime | None
    created_at: datetime
    sent_at: datetime | None = None  # issue 7 parts 4-5: Pay all pressed at, by
    sent_by: str | None = None
    # Issue 7 parts 2, 7: the schedule slot that made the batch, and the conversion it was made at.
    scheduled_for: datetime | None = None
    source_currency: str | None = None
    source_total: int | None = None
    fx_rate: str | None = None


def dump(model: type[Out], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json")


def page(model: type[Out], rows: list[Any], next_cursor: str | None) -> dict[str, Any]:
    return {"data": [dump(model, r) for r in rows], "next_cursor": next_cursor}


def lines_out(session: Session, lines: Sequence[Any], model: type[LineOut] = LineOut) -> list[dict[str, Any]]:
    """Commission lines as LineOut with the plan they cite (id, name, version number) read in one query."""
    cited = plan_citations(session, (line.plan_version_id for line in lines))
    out = []
    for line in lines:
        row = dump(model, line)
        citation = cited.get(line.plan_version_id) if line.plan_version_id else None
        if citation is not None:
            row.update(plan_id=citation.plan_id, plan_name=citation.plan_name, plan_version=citation.version)
        out.append(row)
    return out
