"""Stripe webhooks: the `Stripe-Signature` check (PROVIDERS.md §1) and what each Stripe event means to
partnerpay. Mapping reads the database (earlier payments, coupons, partners) but never writes: the inbox
processor records the events it returns."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventType
from partnerpay.inbox.mapping import Facts, Ignore, Outcome, PaymentSeen, Wait, event_in
from partnerpay.inbox.models import InboxItem, ProviderPayment
from partnerpay.integrations.provider_facts import customer_of, email_of, net_share, ref_fields
from partnerpay.integrations.signing import SignatureRefused
from partnerpay.kit.errors import ValidationError
from partnerpay.tracking.coupons import CouponSource, coupon_for

PROVIDER = "stripe"
TOLERANCE_SECONDS = 300
# Objects fetched by the backfill (stripe_backfill.py) are stored as synthetic events under "backfill:…" ids.
BACKFILL_PREFIX = "backfill:"


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """The v1 value Stripe computes: lowercase hex HMAC-SHA256 of "{t}.{raw body}" keyed by the secret."""
    return hmac.new(secret.encode(), str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(header: str | None, body: bytes, secrets: list[str], *, now: datetime) -> None:
    """Accept when any v1 matches any current secret and t is within 5 minutes of now, either way."""
    if not secrets:
        raise SignatureRefused("this program has no Stripe webhook secret; set one first", field="webhook_secret")
    if not header:
        raise SignatureRefused("the Stripe-Signature header is missing", field="Stripe-Signature")
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t" and value.isdigit():
            timestamp = int(value)
        elif key == "v1" and value:
            signatures.append(value)  # v0 and other schemes are ignored: no downgrade
    if timestamp is None or not signatures:
        raise SignatureRefused("Stripe-Signature needs t=<unix seconds> and at least one v1=", field="Stripe-Signature")
    # Both ways: a timestamp far in the future is as suspicious as an old one (a replay signed ahead).
    if abs(int(now.timestamp()) - timestamp) > TOLERANCE_SECONDS:
        raise SignatureRefused(
            f"the signature's timestamp is more than {TOLERANCE_SECONDS} s from now", field="Stripe-Signature"
        )
    expected = [sign(body, secret, timestamp) for secret in secrets]
    if not any(hmac.compare_digest(e, given) for e in expected for given in signatures):
        raise SignatureRefused("no v1 signature matches this program's webhook secrets", field="Stripe-Signature")


def _id(value: Any) -> str | None:
    """A Stripe reference: the id string, or the id of an expanded object."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return str(value["id"])
    return None


def _int(obj: dict[str, Any], name: str) -> int | None:
    value = obj.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _time(value: Any, fallback: datetime) -> datetime:
    return datetime.fromtimestamp(value, UTC) if isinstance(value, int) and not isinstance(value, bool) else fallback


def _coupon(session: Session, program_id: str, invoice: dict[str, Any]) -> str | None:
    """The partner coupon behind the invoice's promotion code, if any is mapped (source stripe)."""
    candidates = [invoice.get("discount"), *(invoice.get("discounts") or [])]
    for line in (invoice.get("lines") or {}).get("data") or []:
        candidates += line.get("discounts") or []
    for discount in candidates:
        if not isinstance(discount, dict):
            continue
        promo = discount.get("promotion_code")
        code = promo.get("code") if isinstance(promo, dict) else None
        found = coupon_for(session, program_id, source=CouponSource.STRIPE.value, provider_id=_id(promo), code=code)
        if found is not None:
            return found.code
    return None


def _tax(invoice: dict[str, Any]) -> int:
    total, excluding = _int(invoice, "total"), _int(invoice, "total_excluding_tax")
    if total is not None and excluding is not None:
        return max(total - excluding, 0)
    if _int(invoice, "tax") is not None:
        return max(_int(invoice, "tax") or 0, 0)
    taxes = invoice.get("total_taxes") or invoice.get("total_tax_amounts") or []
    return sum(t["amount"] for t in taxes if isinstance(t, dict) and isinstance(t.get("amount"), int))


def backfill_invoice_id(invoice_id: str) -> str:
    """The inbox external id of an invoice the backfill fetched."""
    return f"{BACKFILL_PREFIX}invoice:{invoice_id}"


def _backfill_involved(session: Session, item: InboxItem, invoice_id: str) -> bool:
    """A webhook and the backfill announce one payment, but the invoice the backfill lists today can differ
    from the one the webhook carried (metadata edited since, a partner or coupon created meanwhile): then the
    first one recorded stands instead of the other failing as a conflict. Two webhooks that disagree still
    fail: that is worth a person's look."""
    if item.external_id.startswith(BACKFILL_PREFIX):
        return True
    backfilled = select(InboxItem.id).where(
        InboxItem.source == item.source, InboxItem.external_id == backfill_invoice_id(invoice_id)
    )
    return session.scalar(backfilled) is not None


def _invoice_paid(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    invoice = event["data"]["object"]
    invoice_id = _id(invoice)
    customer = invoice.get("customer")
    if invoice_id is None or _id(customer) is None:
        raise ValidationError("the invoice has no id or no customer", field="data.object.customer")
    gross = _int(invoice, "amount_paid")
    currency = invoice.get("currency")
    if gross is None or not isinstance(currency, str):
        raise ValidationError("the invoice has no integer amount_paid or no currency", field="data.object.amount_paid")
    if gross == 0:
        return Ignore("nothing was paid on this invoice (amount_paid 0, e.g. a trial)")
    tax = _tax(invoice) if config.get("net_of_tax", True) else 0
    net = max(gross - tax, 0)
    parent = (invoice.get("parent") or {}).get("subscription_details") or invoice.get("subscription_details") or {}
    customer_meta = customer.get("metadata") if isinstance(customer, dict) else None
    email = email_of(invoice.get("customer_email"))
    fields = ref_fields(session, item.program_id, invoice.get("metadata"), customer_meta, parent.get("metadata"))
    meta = {"stripe_invoice": invoice_id, "gross": gross, "tax": tax, **fields.pop("metadata", {})}
    paid_at = (invoice.get("status_transitions") or {}).get("paid_at")
    charge = _id(invoice.get("charge"))
    intent = _id(invoice.get("payment_intent"))
    data = event_in(
        program_id=item.program_id,
        type=EventType.INVOICE_PAID,
        external_id=invoice_id,
        occurred_at=_time(paid_at, _time(event.get("created"), item.received_at)),
        customer_external_id=_id(customer),
        amount=net,
        currency=currency.upper(),
        coupon=_coupon(session, item.program_id, invoice),
        customer_email=email,
        metadata=meta,
        **fields,
    )
    payment = PaymentSeen(PROVIDER, invoice_id, charge, intent, invoice_id, gross, net, currency.upper())
    wakes = [k for k in (invoice_id, charge, intent) if k]
    return Facts([data], payment=payment, wakes=wakes, lenient=_backfill_involved(session, item, invoice_id))


def _payment(
    session: Session, program_id: str, *, invoice: str | None, charge: str | None, intent: str | None
) -> ProviderPayment | None:
    keys = [
        ProviderPayment.payment_id == invoice if invoice else None,
        ProviderPayment.charge_id == charge if charge else None,
        ProviderPayment.payment_intent_id == intent if intent else None,
    ]
    wanted = [k for k in keys if k is not None]
    if not wanted:
        return None
    stmt = select(ProviderPayment).where(
        ProviderPayment.program_id == program_id, ProviderPayment.provider == PROVIDER, or_(*wanted)
    )
    # Locked: two refunds of one charge processed at once must not both count from the same base.
    return session.scalar(stmt.with_for_update().limit(1))


def _charge_refunded(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    charge = event["data"]["object"]
    invoice, charge_id, intent = _id(charge.get("invoice")), _id(charge), _id(charge.get("payment_intent"))
    refunded = _int(charge, "amount_refunded")
    if refunded is None:
        raise ValidationError("the charge has no integer amount_refunded", field="data.object.amount_refunded")
    payment = _payment(session, item.program_id, invoice=invoice, charge=charge_id, intent=intent)
    if payment is None:
        key = invoice or intent or charge_id or "unknown"
        return Wait(key, f"the refund waits for its invoice ({key}) to arrive and be processed")
    original = session.scalar(
        select(Event.id).where(Event.program_id == item.program_id, Event.external_id == payment.event_external_id)
    )
    recorded = session.scalar(
        select(func.coalesce(func.sum(Event.amount), 0)).where(
            Event.original_event_id == original, Event.type == EventType.REFUND.value
        )
    )
    # Stripe sends the cumulative amount refunded: what is new is that, net of tax, minus what is recorded.
    new = net_share(refunded, payment) - int(recorded or 0)
    if new <= 0:
        return Ignore("this refund was already recorded (a later refund of the same charge counted it)")
    data = event_in(
        program_id=item.program_id,
        type=EventType.REFUND,
        external_id=item.external_id,
        occurred_at=_time(event.get("created"), item.received_at),
        customer_external_id=customer_of(session, item.program_id, payment.event_external_id),
        amount=new,
        currency=payment.currency,
        original_external_id=payment.event_external_id,
        metadata={"stripe_charge": charge_id, "amount_refunded": refunded},
    )
    return Facts([data])


def _dispute(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    dispute = event["data"]["object"]
    status = dispute.get("status")
    if event.get("type") == "charge.dispute.closed" and status != "lost":
        if status == "won":
            return _dispute_won(session, item, event)
        return Ignore(f"dispute closed as {status}: nothing changes")
    charge_id, intent = _id(dispute.get("charge")), _id(dispute.get("payment_intent"))
    amount = _int(dispute, "amount")
    if _id(dispute) is None or amount is None:
        raise ValidationError("the dispute has no id or no integer amount", field="data.object.amount")
    payment = _payment(session, item.program_id, invoice=None, charge=charge_id, intent=intent)
    if payment is None:
        key = charge_id or intent or "unknown"
        return Wait(key, f"the dispute waits for the invoice of charge {key} to arrive and be processed")
    # One chargeback per dispute (its id is the external id): created and a closed-as-lost give the same fact.
    data = event_in(
        program_id=item.program_id,
        type=EventType.CHARGEBACK,
        external_id=str(_id(dispute)),
        occurred_at=_time(dispute.get("created"), item.received_at),
        customer_external_id=customer_of(session, item.program_id, payment.event_external_id),
        amount=net_share(amount, payment),
        currency=payment.currency,
        original_external_id=payment.event_external_id,
        metadata={"stripe_charge": charge_id, "reason": str(dispute.get("reason"))[:100]},
    )
    return Facts([data], wakes=[str(_id(dispute))])  # a won dispute that arrived first waits for this


def _dispute_won(session: Session, item: InboxItem, event: dict[str, Any]) -> Outcome:
    """charge.dispute.closed as won: a chargeback_reversed of the dispute's chargeback gives the commission back."""
    dispute_id = _id(event["data"]["object"])
    if dispute_id is None:
        raise ValidationError("the dispute has no id", field="data.object.id")
    chargeback = session.scalar(
        select(Event).where(
            Event.program_id == item.program_id,
            Event.external_id == dispute_id,
            Event.type == EventType.CHARGEBACK.value,
        )
    )
    if chargeback is None:
        return Wait(dispute_id, f"the won dispute waits for its chargeback {dispute_id} (charge.dispute.created)")
    customer = session.get(Customer, chargeback.customer_id)
    assert customer is not None
    data = event_in(
        program_id=item.program_id,
        type=EventType.CHARGEBACK_REVERSED,
        external_id=f"{dispute_id}:won",
        occurred_at=_time(event.get("created"), item.received_at),
        customer_external_id=customer.external_id,
        amount=chargeback.amount,
        currency=chargeback.currency,
        original_external_id=dispute_id,
        metadata={"stripe_dispute": dispute_id},
    )
    return Facts([data])


def _subscription(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    sub = event["data"]["object"]
    if _id(sub) is None or _id(sub.get("customer")) is None:
        raise ValidationError("the subscription has no id or no customer", field="data.object.customer")
    status = sub.get("status")
    if event.get("type") in ("customer.subscription.updated", "customer.subscription.created"):
        before = (event["data"].get("previous_attributes") or {}).get("status")
        if event.get("type") == "customer.subscription.updated" and before is None:
            return Ignore("subscription updated without a status change: nothing for partnerpay")
        if status != "canceled":
            # The customer's lifecycle follows the status (trial, active, past_due); keyed by the Stripe
            # event id, since one subscription changes status many times.
            data = event_in(
                program_id=item.program_id,
                type=EventType.SUBSCRIPTION_UPDATED,
                external_id=f"{_id(sub)}:{event.get('id')}",
                occurred_at=_time(event.get("created"), item.received_at),
                customer_external_id=_id(sub.get("customer")),
                metadata={"status": str(status)[:40], "previous_status": before, "stripe_subscription": _id(sub)},
            )
            return Facts([data])
    ended = sub.get("canceled_at") or sub.get("ended_at")
    data = event_in(
        program_id=item.program_id,
        type=EventType.SUBSCRIPTION_CANCELED,
        external_id=str(_id(sub)),
        occurred_at=_time(ended, _time(event.get("created"), item.received_at)),
        customer_external_id=_id(sub.get("customer")),
    )
    return Facts([data], lenient=True)


def _signup(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    obj = event["data"]["object"]
    if event.get("type") == "customer.created":
        customer, email, created = _id(obj), obj.get("email"), obj.get("created")
        fields = ref_fields(session, item.program_id, obj.get("metadata"))
    else:
        customer = _id(obj.get("customer"))
        email = (obj.get("customer_details") or {}).get("email") or obj.get("customer_email")
        created = obj.get("created")
        fields = ref_fields(session, item.program_id, obj.get("metadata"), obj.get("client_reference_id"))
    if customer is None:
        return Ignore("a checkout without a Stripe customer (guest): there is no customer to attach a signup to")
    data = event_in(
        program_id=item.program_id,
        type=EventType.SIGNUP,
        external_id=f"signup:{customer}",
        occurred_at=_time(created, _time(event.get("created"), item.received_at)),
        customer_external_id=customer,
        customer_email=email_of(email),
        **fields,
    )
    # customer.created and checkout.session.completed both announce the one signup: the first recorded wins.
    return Facts([data], lenient=True)


Mapper = Callable[[Session, InboxItem, dict[str, Any], dict[str, Any]], Outcome]

MAPPERS: dict[str, Mapper] = {
    "invoice.paid": _invoice_paid,
    "charge.refunded": _charge_refunded,
    "charge.dispute.created": _dispute,
    "charge.dispute.closed": _dispute,
    "customer.subscription.deleted": _subscription,
    "customer.subscription.updated": _subscription,
    "customer.subscription.created": _subscription,
    "customer.created": _signup,
    "checkout.session.completed": _signup,
}


def handles(kind: str) -> bool:
    return kind in MAPPERS


def map_event(session: Session, item: InboxItem, event: dict[str, Any], config: dict[str, Any]) -> Outcome:
    """What one stored Stripe event means: events to record, a fact to wait for, or nothing (and why)."""
    mapper = MAPPERS.get(item.kind)
    if mapper is None:
        return Ignore(f"partnerpay does not use Stripe {item.kind} events")
    data = event.get("data")
    if not isinstance(data, dict) or not isinstance(data.get("object"), dict):
        raise ValidationError("the event has no data.object", field="data.object")
    return mapper(session, item, event, config)
