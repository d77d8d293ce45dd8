"""API shapes of partner administration: lifecycle reasons, owners, notes, timeline, groups and prospects."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

PartnerIds = list[StrictStr]


class In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class ReasonIn(In):
    reason: StrictStr = Field(default="", max_length=2000, description="required to suspend or terminate")


class OwnerIn(In):
    owner_id: StrictStr | None = Field(description="a staff user id; null removes the owner")


class BulkOwnerIn(OwnerIn):
    partner_ids: PartnerIds = Field(min_length=1, max_length=5000)


class NoteIn(In):
    # No min_length: a field named "body" loses its name in request-validation errors, the service names it.
    body: StrictStr = Field(max_length=10_000)


class NoteOut(Out):
    id: str
    partner_id: str
    author_id: str
    body: str
    created_at: datetime


class ActivityOut(Out):
    id: str
    partner_id: str
    at: datetime
    kind: str
    text: str
    actor_id: str
    ref_type: str | None
    ref_id: str | None


class PartnerAdminOut(Out):
    """The partner as in `GET /partners/{id}`, plus what administration adds."""

    id: str
    program_id: str
    name: str
    email: str
    referral_code: str
    status: str
    group_id: str | None
    country: str | None
    created_at: datetime
    company: str | None
    owner_id: str | None
    status_reason: str | None
    status_changed_at: datetime | None
    recruited_by_id: str | None = None


class GroupFields(In):
    description: StrictStr = Field(default="", max_length=5000)
    percent_bp: StrictInt | None = Field(
        default=None, ge=0, le=10_000, description="commission override in basis points; null: program default"
    )
    is_pilot: StrictBool = False
    size_cap: StrictInt | None = Field(default=None, ge=1, description="most partners the group may hold")
    starts_on: date | None = None
    ends_on: date | None = Field(default=None, description="after starts_on")


class GroupIn(GroupFields):
    program_id: StrictStr
    name: StrictStr = Field(min_length=1, max_length=200)


class GroupPatch(In):
    """Only the fields sent change; null clears an optional one."""

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    description: StrictStr | None = Field(default=None, max_length=5000)
    percent_bp: StrictInt | None = Field(default=None, ge=0, le=10_000)
    is_pilot: StrictBool | None = None
    size_cap: StrictInt | None = Field(default=None, ge=1)
    starts_on: date | None = None
    ends_on: date | None = None


class GroupOut(Out):
    id: str
    program_id: str
    name: str
    description: str
    percent_bp: int | None
    is_pilot: bool
    size_cap: int | None
    starts_on: date | None
    ends_on: date | None
    created_at: datetime
    size: int = Field(description="partners in the group now")


class MembersIn(In):
    partner_ids: PartnerIds = Field(min_length=1, max_length=5000)


class ProspectFields(In):
    contact_name: StrictStr = Field(default="", max_length=200)
    email: StrictStr | None = Field(default=None, max_length=320)
    website: StrictStr | None = Field(default=None, max_length=500)
    source: StrictStr = Field(default="", max_length=64, examples=["conference", "linkedin", "referral"])
    stage: StrictStr = Field(default="prospect", description="prospect, contacted, invited, applied, active, dropped")
    next_step: StrictStr = Field(default="", max_length=2000)
    due_on: date | None = None
    owner_id: StrictStr | None = None


class ProspectIn(ProspectFields):
    program_id: StrictStr
    company: StrictStr = Field(min_length=1, max_length=200)


class ProspectPatch(In):
    company: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    contact_name: StrictStr | None = Field(default=None, max_length=200)
    email: StrictStr | None = Field(default=None, max_length=320)
    website: StrictStr | None = Field(default=None, max_length=500)
    source: StrictStr | None = Field(default=None, max_length=64)
    stage: StrictStr | None = None
    next_step: StrictStr | None = Field(default=None, max_length=2000)
    due_on: date | None = None
    owner_id: StrictStr | None = None


class ProspectOut(Out):
    id: str
    program_id: str
    company: str
    contact_name: str
    email: str | None
    website: str | None
    source: str
    stage: str
    next_step: str
    due_on: date | None
    owner_id: str | None
    partner_id: str | None
    created_at: datetime
    updated_at: datetime


class ConvertOut(Out):
    prospect: ProspectOut
    partner_id: str
    invitation_id: str
    expires_at: datetime
