"""Program shapes: settings in and out, the application form's configuration, terms versions."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

StandardField = Literal["company", "website", "audience", "country"]
FieldMode = Literal["hidden", "optional", "required"]
STANDARD_FIELDS: tuple[StandardField, ...] = ("company", "website", "audience", "country")
FIELD_LABELS: dict[str, str] = {
    "company": "Company",
    "website": "Website",
    "audience": "Your audience (who you reach, how many)",
    "country": "Country",
}
# Always asked, whatever the configuration: the partner's name and the email of the portal login.
ALWAYS_ASKED = ("name", "email")
MAX_QUESTIONS = 20


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ApplicationQuestion(_Strict):
    """A custom question on the application form; its answer is kept under `key`."""

    key: StrictStr = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$", examples=["monthly_visitors"])
    label: StrictStr = Field(min_length=1, max_length=300, examples=["How many visitors a month?"])
    required: StrictBool = False


def _default_fields() -> dict[StandardField, FieldMode]:
    return {"company": "optional", "website": "optional", "audience": "optional", "country": "optional"}


class ApplicationFormConfig(_Strict):
    """Which standard fields the public form shows (and requires), plus custom questions."""

    fields: dict[StandardField, FieldMode] = Field(default_factory=_default_fields)
    questions: list[ApplicationQuestion] = Field(default_factory=list, max_length=MAX_QUESTIONS)

    @model_validator(mode="after")
    def _unique_keys(self) -> ApplicationFormConfig:
        seen: set[str] = set(STANDARD_FIELDS) | set(ALWAYS_ASKED)
        for question in self.questions:
            if question.key in seen:
                raise ValueError(f"question key {question.key!r} is used twice or names a standard field")
            seen.add(question.key)
        for name in STANDARD_FIELDS:  # a field not mentioned keeps its default: shown, optional
            self.fields.setdefault(name, "optional")
        return self

    def mode(self, name: StandardField) -> FieldMode:
        return self.fields.get(name, "optional")


class ProgramSettingsIn(_Strict):
    """PATCH /programs/{id}: only the fields sent change. The currency is fixed once money has moved."""

    name: StrictStr | None = Field(default=None, min_length=1, max_length=200)
    hold_days: StrictInt | None = None
    cookie_days: StrictInt | None = None
    default_percent_bp: StrictInt | None = None
    rounding: StrictStr | None = None
    slug: StrictStr | None = Field(default=None, examples=["acme-partners"])
    brand_color: StrictStr | None = Field(default=None, examples=["#1f2a44"])
    logo_url: StrictStr | None = Field(default=None, examples=["https://example.com/logo.png"])
    application_form: ApplicationFormConfig | None = None
    auto_approve: StrictBool | None = None
    applications_open: StrictBool | None = None
    default_owner_id: StrictStr | None = None
    payout_change_hold_days: StrictInt | None = None
    site_url: StrictStr | None = Field(default=None, examples=["https://acme.example"])
    fallback_url: StrictStr | None = Field(default=None, description="where /r/{code} sends an unknown code")
    allowed_domains: list[StrictStr] | None = Field(default=None, examples=[["acme.example", "shop.acme.example"]])
    attribution_model: Literal["last_click", "first_click"] | None = None
    coupon_overrides_link: StrictBool | None = None
    attribution_months: StrictInt | None = Field(
        default=None, description="null: a customer keeps its partner for ever"
    )
    lead_protection_days: StrictInt | None = None
    deal_stages: list[StrictStr] | None = None
    update_reminder_days: StrictInt | None = None
    hold_flagged_events: StrictBool | None = None
    custom_event_types: list[StrictStr] | None = Field(
        default=None, description="the program's own event types (snake_case), recorded by POST /events"
    )


class ProgramSettingsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    name: str
    currency: str
    hold_days: int
    default_percent_bp: int
    cookie_days: int
    rounding: str
    created_at: datetime
    slug: str | None
    brand_color: str
    logo_url: str | None
    application_form: ApplicationFormConfig | None
    auto_approve: bool
    applications_open: bool
    default_owner_id: str | None
    payout_change_hold_days: int
    site_url: str | None
    fallback_url: str | None
    allowed_domains: list[str] | None
    attribution_model: str
    coupon_overrides_link: bool
    attribution_months: int | None
    lead_protection_days: int
    deal_stages: list[str] | None
    update_reminder_days: int
    hold_flagged_events: bool
    custom_event_types: list[str] | None


class TermsIn(_Strict):
    title: StrictStr = Field(min_length=1, max_length=200, examples=["Partner agreement"])
    body_markdown: StrictStr = Field(min_length=1, max_length=100_000)


class TermsOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    program_id: str
    version: int
    title: str
    body_markdown: str
    published_at: datetime
    created_by: str
