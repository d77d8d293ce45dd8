"""Shopify webhooks: the `X-Shopify-Hmac-Sha256` check (PROVIDERS.md §3) and what each Shopify topic means
to partnerpay. Mapping reads the database (earlier orders, coupons, partners) but never writes: the inbox
processor records the events it returns.

Only the body is signed, not the headers: every event's external id therefore comes from the body (order,
refund, app subscription ids), so a signed body sent again under another webhook id makes no new event.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.events.models import Event
from partnerpay.events.schemas import EventType
from partnerpay.inbox.mapping import Facts, Ignore, Outcome, PaymentSeen, Wait, event_in
from partnerpay.inbox.models import InboxItem, ProviderPayment
from partnerpay.integrations.provider_facts import REF_KEY, customer_of, email_of, net_share, ref_fields
from partnerpay.integrations.signing import SignatureRefused
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import Money, check_currency
from partnerpay.tracking.coupons import CouponSource, coupon_for

PROVIDER = "shopify"
SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
# App subscription statuses after which the shop no longer pays (FROZEN: the shop's own bill is unpaid).
ENDED = frozenset({"CANCELLED", "EXPIRED", "DECLINED", "FROZEN"})


def header(headers: Mapping[str, Any], name: str) -> str | None:
    """A Shopify header by its short name ("topic"): webhooks send X-Shopify-Topic, the newer Events
    delivery the same name without X-. `headers` is the request's or the item's stored (lower-case) ones."""
    for key in (f"x-shopify-{name}", f"shopify-{name}"):
        value = headers.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return None


def sign(body: bytes, secret: str) -> str:
    """What Shopify sends: base64 of HMAC-SHA256 over the raw body, keyed by the app's client secret."""
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def verify_signature(signature: str | None, body: bytes, secrets: list[str]) -> None:
    """Accept when the header matches the body signed with any current secret (old and new during a rotation)."""
    if not secrets:
        raise SignatureRefused(
            "this program has no Shopify client secret; set webhook_secret first", field="webhook_secret"
        )
    if not signature:
        raise SignatureRefused(f"the {SIGNATURE_HEADER} header is missing", field=SIGNATURE_HEADER)
    given = signature.strip().encode()  # bytes: compare_digest refuses non-ASCII str
    if not any(hmac.compare_digest(sign(body, secret).encode(), given) for secret in secrets):
        raise SignatureRefused(
            f"{SIGNATURE_HEADER} matches none of this program's client secrets", field=SIGNATURE_HEADER
        )


def _id(value: Any) -> str | None:
    """A Shopify REST id (an integer, sometimes sent as a string)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() if isinstance(value, str) and value.strip() else None


def _time(obj: Mapping[str, Any], *names: str, fallback: datetime) -> datetime:
    """The first of the named ISO-8601 times that parses with an offset (Shopify sends shop-local offsets)."""
    for name in names:
        value = obj.get(name)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
            except ValueError:
                continue
            if parsed.tzinfo is not None:
                return parsed
    return fallback


def _currency(value: Any, field: str) -> str:
    return check_currency(value.strip().upper() if isinstance(value, str) else value, field=field)


def _money(obj: Mapping[str, Any], name: str, currency: str, *, where: str = "") -> int:
    """A decimal-string money field in minor units, exactly: never through a float, and a value with more
    decimals than the currency has (JPY "1.5") is an error naming the field."""
    value = obj.get(name)
    field = f"{where}{name}"
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise ValidationError(f"{field} must be a decimal string such as '119.00', got {value!r}", field=field)
    try:
        amount = Money.parse(value, currency).amount
    except ValidationError as exc:
        raise ValidationError(f"{field}: {exc.message}", field=field) from None
    if amount < 0:
        raise ValidationError(f"{field} must not be negative, got {value}", field=field)
    return amount


def _order_key(order_id: str) -> str:
    """The paid order's event external id; also what its refunds wait for."""
    return f"shopify-order:{order_id}"


def _ref_sources(order: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Where a storefront leaves partnerpay's ref, most explicit first: a cart attribute named partnerpay_ref,
    then the landing page's ?partnerpay_ref= or ?ref= (what the referral redirect appends), then Shopify's own
    parse of ?ref= (landing_site_ref)."""
    sources: list[dict[str, Any]] = []
    for attribute in order.get("note_attributes") or []:
        if isinstance(attribute, dict) and attribute.get("name") == REF_KEY:
            sources.append({REF_KEY: attribute.get("value")})
    landing = order.get("landing_site")
    if isinstance(landing, str):
        query = parse_qs(urlsplit(landing).query)
        sources += [{REF_KEY: query[key][0]} for key in (REF_KEY, "ref") if query.get(key)]
    sources.append({REF_KEY: order.get("landing_site_ref")})
    return sources


def _coupon(session: Session, program_id: str, order: Mapping[str, Any]) -> str | None:
    """The first discount code of the order that is a partner's coupon."""
    for discount in order.get("discount_codes") or []:
        code = discount.get("code") if isinstance(discount, dict) else None
        if isinstance(code, str) and code.strip():
            found = coupon_for(session, program_id, code=code, source=CouponSource.SHOPIFY.value)
            if found is not None:
                return found.code
    return None


def _order_paid(session: Session, item: InboxItem, order: dict[str, Any], config: dict[str, Any]) -> Outcome:
    order_id = _id(order.get("id"))
    if order_id is None:
        raise ValidationError("the order has no id", field="id")
    currency = _currency(order.get("currency"), "currency")
    gross = _money(order, "total_price", currency)
    if gross == 0:
        return Ignore(f"nothing was paid for order {order_id} (total_price 0)")
    tax = _money(order, "total_tax", currency) if config.get("net_of_tax", True) and order.get("total_tax") else 0
    net = max(gross - tax, 0)
    given = order.get("customer")
    customer: dict[str, Any] = given if isinstance(given, dict) else {}
    email = email_of(order.get("email")) or email_of(order.get("contact_email")) or email_of(customer.get("email"))
    customer_id = _id(customer.get("id")) or email  # a guest checkout is known by its email
    if customer_id is None:
        raise ValidationError("the order has neither a customer nor an email", field="customer.id")
    fields = ref_fields(session, item.program_id, *_ref_sources(order))
    meta = {"shopify_order": order_id, "gross": gross, "tax": tax, **fields.pop("metadata", {})}
    if isinstance(order.get("name"), str):
        meta["order_name"] = order["name"][:100]
    key = _order_key(order_id)
    data = event_in(
        program_id=item.program_id,
        type=EventType.INVOICE_PAID,
        external_id=key,
        # From the signed body, so that a second delivery of the order makes the very same event.
        occurred_at=_time(order, "processed_at", "created_at", fallback=item.received_at),
        customer_external_id=customer_id,
        amount=net,
        currency=currency,
        coupon=_coupon(session, item.program_id, order),
        customer_email=email,
        metadata=meta,
        **fields,
    )
    payment = PaymentSeen(PROVIDER, order_id, None, None, key, gross, net, currency)
    return Facts([data], payment=payment, wakes=[key])


def _refunded(refund: Mapping[str, Any], currency: str) -> int:
    """The money that went back: successful refund transactions (a restock-only refund has none)."""
    total = 0
    for n, transaction in enumerate(refund.get("transactions") or []):
        if not isinstance(transaction, dict) or transaction.get("kind") != "refund":
            continue
        if transaction.get("status") != "success":
            continue
        where = f"transactions[{n}]."
        given = transaction.get("currency")
        if given is not None and _currency(given, f"{where}currency") != currency:
            raise ValidationError(
                f"{where}currency is {given}, but the order was paid in {currency}", field=f"{where}currency"
            )
        total += _money(transaction, "amount", currency, where=where)
    return total


def _refund_created(session: Session, item: InboxItem, refund: dict[str, Any], config: dict[str, Any]) -> Outcome:
    refund_id, order_id = _id(refund.get("id")), _id(refund.get("order_id"))
    if refund_id is None or order_id is None:
        raise ValidationError("the refund has no id or no order_id", field="order_id")
    key = _order_key(order_id)
    # Locked: two refunds of one order processed at once must not both count from the same base.
    payment = session.scalar(
        select(ProviderPayment)
        .where(
            ProviderPayment.program_id == item.program_id,
            ProviderPayment.provider == PROVIDER,
            ProviderPayment.payment_id == order_id,
        )
        .with_for_update()
    )
    if payment is None:
        return Wait(key, f"the refund waits for its order {order_id} (orders/paid) to arrive and be processed")
    gross = _refunded(refund, payment.currency)
    if gross == 0:
        return Ignore(f"refund {refund_id} moved no money (no successful refund transaction)")
    external_id = f"shopify-refund:{refund_id}"
    # Shopify refunds are separate amounts. Their tax-free shares are taken of the running total, so that
    # refunds adding up to the whole order take back exactly its net, in whichever order they are processed.
    original = session.scalar(
        select(Event.id).where(Event.program_id == item.program_id, Event.external_id == payment.event_external_id)
    )
    earlier = session.scalars(
        select(Event).where(
            Event.original_event_id == original,
            Event.type == EventType.REFUND.value,
            Event.external_id != external_id,
        )
    ).all()
    before_gross = sum(int((e.metadata_json or {}).get("refund_gross", 0)) for e in earlier)
    before_net = sum(e.amount or 0 for e in earlier)
    new = net_share(before_gross + gross, payment) - before_net
    if new <= 0:
        return Ignore(f"refund {refund_id} takes back nothing more: the order's net is already refunded")
    data = event_in(
        program_id=item.program_id,
        type=EventType.REFUND,
        external_id=external_id,
        occurred_at=_time(refund, "processed_at", "created_at", fallback=item.received_at),
        customer_external_id=customer_of(session, item.program_id, payment.event_external_id),
        amount=new,
        currency=payment.currency,
        original_external_id=payment.event_external_id,
        metadata={"shopify_refund": refund_id, "shopify_order": order_id, "refund_gross": gross},
    )
    return Facts([data])


def _app_subscription(session: Session, item: InboxItem, body: dict[str, Any], config: dict[str, Any]) -> Outcome:
    """Shopify app partners: the paying customer is the shop that installed the app."""
    sub = body.get("app_subscription")
    if not isinstance(sub, dict):
        raise ValidationError("the delivery has no app_subscription object", field="app_subscription")
    status = str(sub.get("status") or "").upper()
    domain = header(item.headers or {}, "shop-domain")
    # The body's shop id first: it is signed, the X-Shopify-Shop-Domain header is not.
    shop = _id(sub.get("admin_graphql_api_shop_id")) or domain
    sub_id = _id(sub.get("admin_graphql_api_id"))
    if shop is None or sub_id is None:
        raise ValidationError(
            "the app subscription names no shop (admin_graphql_api_shop_id or X-Shopify-Shop-Domain) or has no id",
            field="app_subscription.admin_graphql_api_shop_id",
        )
    when = _time(sub, "updated_at", "created_at", fallback=item.received_at)
    meta = {"shopify_app_subscription": sub_id, "status": status[:40]}
    if domain:
        meta["shop_domain"] = domain[:200]
    if status in ENDED:
        kind, external_id = EventType.SUBSCRIPTION_CANCELED, f"shopify-app-subscription:{sub_id}"
    elif status == "ACTIVE":
        kind, external_id = EventType.SIGNUP, f"signup:{shop}"
    else:
        return Ignore(
            f"app subscription {status or 'without a status'}: partnerpay acts on ACTIVE (signup) and "
            f"{', '.join(sorted(ENDED))} (cancellation) only"
        )
    data = event_in(
        program_id=item.program_id,
        type=kind,
        external_id=external_id,
        occurred_at=when,
        customer_external_id=shop,
        metadata=meta,
    )
    # A subscription ends once and a shop signs up once: a later delivery (EXPIRED after CANCELLED, ACTIVE
    # again after FROZEN) keeps the first recorded event as is.
    return Facts([data], lenient=True)


Mapper = Callable[[Session, InboxItem, dict[str, Any], dict[str, Any]], Outcome]

MAPPERS: dict[str, Mapper] = {
    "orders/paid": _order_paid,
    "refunds/create": _refund_created,
    "app_subscriptions/update": _app_subscription,
}


def handles(topic: str) -> bool:
    return topic in MAPPERS


def map_event(session: Session, item: InboxItem, body: dict[str, Any], config: dict[str, Any]) -> Outcome:
    """What one stored Shopify delivery (topic = item.kind, body = the REST resource) means to partnerpay."""
    mapper = MAPPERS.get(item.kind)
    if mapper is None:
        return Ignore(f"partnerpay does not use Shopify {item.kind} deliveries")
    return mapper(session, item, body, config)
