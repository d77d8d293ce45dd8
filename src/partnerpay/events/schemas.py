"""Event input: strict types so that a float or a string never passes as money."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictInt, StrictStr


class EventType(StrEnum):
    SIGNUP = "signup"
    DEMO_BOOKED = "demo_booked"
    LEAD_QUALIFIED = "lead_qualified"
    DEAL_WON = "deal_won"
    INVOICE_PAID = "invoice_paid"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    SUBSCRIPTION_CANCELED = "subscription_canceled"


PAYING = frozenset({EventType.INVOICE_PAID})
REVERSING = frozenset({EventType.REFUND, EventType.CHARGEBACK})
NEEDS_AMOUNT = PAYING | REVERSING


class EventIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    program_id: StrictStr
    type: EventType
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
