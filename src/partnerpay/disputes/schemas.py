"""API shapes of disputes; money is integer minor units + currency, times RFC 3339."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr

from partnerpay.disputes.models import Dispute, DisputeEvidence, DisputeStatus
from partnerpay.disputes.rules import NEXT_STEP, is_overdue, sla_text


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class DisputeIn(_In):
    kind: Literal["wrong_amount", "missing_commission"]
    # Emptiness and lengths are checked by the service, so the portal form gets the same messages.
    description: StrictStr = Field(examples=["The plan pays 25 % on the Pro plan, this line pays 20 %"])
    partner_id: StrictStr | None = Field(None, description="staff and API keys: the partner; a partner: itself")
    line_id: StrictStr | None = Field(None, description="wrong_amount: the disputed line")
    amount: StrictInt | None = Field(
        None, description="wrong_amount: the commission expected; missing_commission: the amount claimed (minor units)"
    )
    customer_ref: StrictStr | None = Field(
        None, description="missing_commission: the referral's name, external id or email", examples=["Acme Corp"]
    )
    event_date: AwareDatetime | None = Field(None, description="missing_commission: when it signed up or paid")


class ResolveIn(_In):
    action: Literal["adjust", "reject"]
    reason: StrictStr = Field(examples=["Pro plan rate confirmed; difference added"])
    amount: StrictInt | None = Field(
        None, description="adjust: minor units; defaults to expected minus line amount (wrong_amount) or the claim"
    )


class SlaIn(_In):
    sla_days: StrictInt = Field(ge=1, le=365, examples=[10])


class EvidenceOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    attachment_id: str
    filename: str
    content_type: str
    size: int
    sha256: str
    added_by: str
    added_at: datetime


class DisputeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    program_id: str
    partner_id: str
    kind: str
    line_id: str | None
    amount: int | None
    currency: str
    customer_ref: str | None
    event_date: datetime | None
    description: str
    status: str
    due_at: datetime
    owner_id: str | None
    opened_by: str
    opened_by_type: str
    created_at: datetime
    updated_at: datetime
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_reason: str | None
    adjustment_line_id: str | None


def dispute_out(d: Dispute, *, now: datetime, evidence: list[DisputeEvidence] | None = None) -> dict[str, Any]:
    body = DisputeOut.model_validate(d).model_dump(mode="json")
    body["overdue"] = is_overdue(d.status, d.due_at, now)
    body["sla"] = sla_text(d.status, d.due_at, now)
    body["next_step"] = NEXT_STEP[DisputeStatus(d.status)]
    if evidence is not None:
        body["evidence"] = [EvidenceOut.model_validate(e).model_dump(mode="json") for e in evidence]
    return body
