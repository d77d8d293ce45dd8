"""What a provider's mapper tells the inbox processor: record these events, wait for that fact, or ignore."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pydantic

from partnerpay.events.schemas import EventIn
from partnerpay.kit.errors import ValidationError


@dataclass(frozen=True, slots=True)
class PaymentSeen:
    """A paying provider object, remembered so refunds and disputes can find the event they reverse."""

    provider: str
    payment_id: str
    charge_id: str | None
    payment_intent_id: str | None
    event_external_id: str
    gross: int
    net: int
    currency: str


@dataclass(frozen=True, slots=True)
class Facts:
    events: list[EventIn]
    payment: PaymentSeen | None = None
    wakes: list[str] = field(default_factory=list)  # keys items may be waiting for
    # The same fact can arrive as two provider events with different details (customer.created and
    # checkout.session.completed): an event already recorded under the external id is then kept as is.
    lenient: bool = False


@dataclass(frozen=True, slots=True)
class Wait:
    key: str  # the provider id of the fact this one needs first
    reason: str


@dataclass(frozen=True, slots=True)
class Ignore:
    note: str


Outcome = Facts | Wait | Ignore


def event_in(**values: Any) -> EventIn:
    """An EventIn from provider data; a value the event schema refuses becomes an error naming its field."""
    try:
        return EventIn.model_validate({k: v for k, v in values.items() if v is not None})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        name = ".".join(str(p) for p in first["loc"]) or None
        raise ValidationError(
            f"the provider's data makes an invalid event: {name}: {first['msg']}", field=name
        ) from None
