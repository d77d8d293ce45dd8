"""API shapes of leads, deals, update requests and timeline lines; money is integer minor units + currency."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LeadIn(_In):
    program_id: StrictStr
    partner_id: StrictStr | None = Field(
        None, description="required for staff and API keys; a partner registers for itself"
    )
    company: StrictStr = Field(min_length=1, max_length=200, examples=["Globex Inc."])
    domain: StrictStr | None = Field(None, max_length=500, description="a host, web address or email; its host is kept")
    contact_name: StrictStr | None = Field(None, max_length=200)
    contact_email: StrictStr | None = Field(None, max_length=320)
    expected_value: StrictInt | None = Field(None, ge=0, description="minor units; a float is refused")
    currency: StrictStr | None = Field(None, min_length=3, max_length=3)
    notes: StrictStr | None = Field(None, max_length=5000)


class IdsIn(_In):
    ids: list[StrictStr] = Field(min_length=1, max_length=1000)


class ReasonIn(_In):
    reason: StrictStr = Field(min_length=1, max_length=2000, examples=["already a customer since 2024"])


class BulkRejectIn(IdsIn, ReasonIn):
    pass


class StageIn(_In):
    stage: StrictStr | None = Field(None, max_length=64, examples=["demo"])
    status: Literal["won", "lost"] | None = None
    amount: StrictInt | None = Field(None, ge=0, description="won: the deal's value in minor units")
    currency: StrictStr | None = Field(None, min_length=3, max_length=3)
    customer_external_id: StrictStr | None = Field(None, max_length=200, description="won: defaults to the domain")
    reason: StrictStr | None = Field(None, max_length=2000, description="lost: why")


class MessageIn(_In):
    message: StrictStr = Field(min_length=1, max_length=5000, examples=["Did the demo with Globex happen?"])


class AnswerIn(_In):
    answer: StrictStr = Field(min_length=1, max_length=5000, examples=["Demo done, proposal goes out Friday"])


class LeadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    program_id: str
    partner_id: str
    company: str
    company_key: str
    domain: str | None
    contact_name: str | None
    contact_email: str | None
    expected_value: int | None
    currency: str | None
    notes: str
    status: str
    reason: str | None
    conflicts: list[dict[str, Any]] | None
    protected_until: datetime | None
    created_at: datetime
    decided_at: datetime | None
    decided_by: str | None
    last_update_at: datetime


class DealOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    program_id: str
    partner_id: str
    lead_id: str | None
    company: str
    domain: str | None
    stage: str
    status: str
    amount: int | None
    currency: str | None
    crm_id: str | None
    customer_external_id: str | None
    lost_reason: str | None
    won_at: datetime | None
    event_id: str | None
    created_at: datetime
    updated_at: datetime
    last_update_at: datetime


class UpdateRequestOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    partner_id: str
    lead_id: str | None
    deal_id: str | None
    message: str
    asked_by: str
    asked_at: datetime
    answered_at: datetime | None
    answer: str | None
    next_reminder_at: datetime | None
    reminders_sent: int


class TimelineLineOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    lead_id: str | None
    deal_id: str | None
    at: datetime
    kind: str
    text: str
    actor_id: str
    actor_label: str


def dump(model: type[BaseModel], obj: Any) -> dict[str, Any]:
    return model.model_validate(obj).model_dump(mode="json")
