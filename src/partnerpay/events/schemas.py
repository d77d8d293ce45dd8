"""Event input: strict types so that a float or a string never passes as money."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr, field_validator
from pydantic_core import PydanticCustomError

from partnerpay.programs.tracking_settings import HOSTNAME, normalise_host


class EventType(StrEnum):
    SIGNUP = "signup"
    DEMO_BOOKED = "demo_booked"
    LEAD_QUALIFIED = "lead_qualified"
    DEAL_WON = "deal_won"
    INVOICE_PAID = "invoice_paid"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    SUBSCRIPTION_CANCELED = "subscription_canceled"
    # A subscription's status changed (metadata.status: trialing, active, past_due, unpaid, canceled):
    # moves the customer's lifecycle status (events/lifecycle.py); no commission of its own.
    SUBSCRIPTION_UPDATED = "subscription_updated"
    # A chargeback the merchant won (original_external_id names the chargeback): the money counts as paid
    # again and the chargeback's clawbacks are reinstated (commissions/reversal.py).
    CHARGEBACK_REVERSED = "chargeback_reversed"


CORE_TYPES = frozenset(t.value for t in EventType)
CUSTOM_TYPE = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
PAYING = frozenset({EventType.INVOICE_PAID})
REVERSING = frozenset({EventType.REFUND, EventType.CHARGEBACK})
REINSTATING = frozenset({EventType.CHARGEBACK_REVERSED})
NEEDS_AMOUNT = PAYING | REVERSING | REINSTATING
CLICK_ID = re.compile(r"^clk_[0-9a-z]{1,36}$")
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Added after events were first hashed: left out of the content hash when absent, so an event sent
# again exactly as before still matches its stored hash (see events.service.content_hash).
LATER_FIELDS = ("click_id", "customer_email", "customer_domain")


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    program_id: StrictStr
    # A core EventType, or the name of one of the program's custom_event_types (checked when recorded).
    type: EventType | str = Field(description="a core type or one of the program's custom_event_types")
    external_id: StrictStr = Field(min_length=1, max_length=200)
    occurred_at: AwareDatetime
    customer_external_id: StrictStr = Field(min_length=1, max_length=200)
    partner_id: StrictStr | None = None
    referral_code: StrictStr | None = None
    coupon: StrictStr | None = None
    amount: StrictInt | None = Field(default=None, ge=0, description="minor units; a float is refused")
    currency: StrictStr | None = Field(default=None, min_length=3, max_length=3)
    product: StrictStr | None = Field(default=None, max_length=200)
    original_external_id: StrictStr | None = None
    metadata: dict[str, Any] | None = None
    click_id: StrictStr | None = Field(default=None, description="the `ref` the redirect passed to the site")
    customer_email: StrictStr | None = Field(default=None, max_length=320)
    customer_domain: StrictStr | None = Field(default=None, max_length=253, description="the customer's company domain")

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> EventType | str:
        if not isinstance(value, str):
            raise PydanticCustomError("event_type", "must be an event type name, got {got}", {"got": repr(value)[:60]})
        name = value.strip()
        if name in CORE_TYPES:
            return EventType(name)
        if not CUSTOM_TYPE.match(name):
            raise PydanticCustomError(
                "event_type",
                "not a core event type ({core}) or a custom type name (snake_case): {got}",
                {"core": ", ".join(sorted(CORE_TYPES)), "got": name[:60]},
            )
        return name

    @field_validator("click_id")
    @classmethod
    def _click_id(cls, value: str | None) -> str | None:
        if value is not None and not CLICK_ID.match(value):
            raise PydanticCustomError(
                "click_id", "not a click id from the referral redirect (clk_…): {got}", {"got": value[:60]}
            )
        return value

    @field_validator("customer_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        if value is not None and not EMAIL.match(value):
            raise PydanticCustomError(
                "email", "not an email address such as ana@example.com: {got}", {"got": value[:60]}
            )
        return value.lower() if value is not None else None

    @field_validator("customer_domain")
    @classmethod
    def _domain(cls, value: str | None) -> str | None:
        if value is None:
            return None
        host = normalise_host(value)
        if not HOSTNAME.match(host):
            raise PydanticCustomError("domain", "not a domain such as example.com: {got}", {"got": value[:60]})
        return host
