"""What every provider mapper reads the same way: the `partnerpay_ref` attribution hint, a customer's
email, the tax-free share of a refunded payment, and the customer of an event a reversal names.

Reads only: mappers never write (the inbox processor records what they return)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import CLICK_ID, EMAIL
from partnerpay.inbox.models import ProviderPayment
from partnerpay.kit.errors import ValidationError
from partnerpay.partners.models import Partner

REF_KEY = "partnerpay_ref"


def ref_fields(session: Session, program_id: str, *metadata_sources: Any) -> dict[str, Any]:
    """partnerpay_ref as a click id (clk_…) or a partner's referral code; an unknown code is kept as a note.

    Sources are tried in order: dicts holding REF_KEY, or a bare string (Stripe checkout's client_reference_id).
    """
    for source in metadata_sources:
        if isinstance(source, dict) and isinstance(source.get(REF_KEY), str) and source[REF_KEY].strip():
            ref = source[REF_KEY].strip()
            if CLICK_ID.match(ref):
                return {"click_id": ref}
            known = session.scalar(
                select(Partner.id).where(Partner.program_id == program_id, Partner.referral_code == ref)
            )
            return {"referral_code": ref} if known else {"metadata": {"unknown_partnerpay_ref": ref[:100]}}
        if isinstance(source, str) and source.strip():
            return ref_fields(session, program_id, {REF_KEY: source})
    return {}


def email_of(value: Any) -> str | None:
    """A well-formed email, lower-cased; anything else is no email at all (never an error)."""
    return value.strip().lower() if isinstance(value, str) and EMAIL.match(value.strip()) else None


def net_share(amount: int, payment: ProviderPayment) -> int:
    """The tax-free share of a gross amount, rounded half up; the whole gross maps to exactly `net`."""
    if payment.gross <= 0 or amount >= payment.gross:
        return payment.net if amount >= payment.gross else 0
    return (2 * amount * payment.net + payment.gross) // (2 * payment.gross)


def customer_of(session: Session, program_id: str, external_id: str) -> str:
    """The customer external id of a recorded event (the one a refund or chargeback reverses)."""
    found = session.scalar(
        select(Customer.external_id)
        .join(Event, Event.customer_id == Customer.id)
        .where(Event.program_id == program_id, Event.external_id == external_id)
    )
    if found is None:
        raise ValidationError(f"no recorded event {external_id}", field="original_external_id")
    return str(found)
