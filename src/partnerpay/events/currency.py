"""Which currencies an event may be in: the program's, or another one the program has a recorded rate for on
the event's day (lines are then made in the program currency, fx.service.to_program_currency); a refund or
chargeback is in the currency of the payments it takes back, because its clawback is the ratio of the two
amounts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import PAYING, REVERSING, EventIn
from partnerpay.fx.service import to_program_currency
from partnerpay.kit.errors import ValidationError
from partnerpay.programs.models import Program


def check_event_currency(
    session: Session, *, program: Program, data: EventIn, customer: Customer, original: Event | None
) -> None:
    """Refuse (422 naming the field) an amount that could not be turned into program-currency lines."""
    if data.amount is None or data.currency is None:
        return
    if data.type in REVERSING:
        _check_refund(session, data=data, customer=customer, original=original)
        return
    # Refused at once, not at the first commission: an event of a customer without a partner yet may earn
    # later, when an attribution adopts it, and could not be converted then either.
    to_program_currency(session, program, amount=data.amount, currency=data.currency, at=data.occurred_at)


def _check_refund(session: Session, *, data: EventIn, customer: Customer, original: Event | None) -> None:
    kind = str(data.type).replace("_", " ")
    if original is not None:
        if original.currency != data.currency:
            raise ValidationError(
                f"this {kind} is in {data.currency} but the payment it takes back ({original.external_id}) was in "
                f"{original.currency}; send it in {original.currency}",
                field="currency",
            )
        return
    paid_in = {
        currency
        for currency in session.scalars(
            select(Event.currency)
            .where(Event.customer_id == customer.id, Event.type.in_([t.value for t in PAYING]))
            .distinct()
        )
        if currency is not None
    }
    if not paid_in or paid_in == {data.currency}:
        return  # nothing paid: the allocation says how much is refundable
    if data.currency in paid_in:
        raise ValidationError(
            f"customer {customer.external_id} paid in {' and '.join(sorted(paid_in))}: name the payment this "
            f"{kind} takes back (original_external_id)",
            field="original_external_id",
        )
    raise ValidationError(
        f"this {kind} is in {data.currency} but customer {customer.external_id} paid in "
        f"{' and '.join(sorted(paid_in))}; send it in the currency of the payment it takes back",
        field="currency",
    )
