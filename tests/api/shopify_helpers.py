"""Real Shopify deliveries for tests: REST resources shaped as Shopify sends them (money as decimal strings),
signed exactly as Shopify signs (PROVIDERS.md §3), with Shopify's delivery headers."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock

SECRET = "shpss_test_0f9e8d7c6b5a4f3e"
OTHER_SECRET = "shpss_test_rotated_1a2b3c4d"
SHOP_DOMAIN = "acme-store.myshopify.com"


def signature(body: bytes, secret: str = SECRET) -> str:
    # Shopify's scheme, written out here independently of partnerpay's verifier: base64(HMAC-SHA256(raw body)).
    return base64.b64encode(hmac.new(secret.encode("utf-8"), body, hashlib.sha256).digest()).decode("ascii")


def headers(
    topic: str, webhook_id: str | None, body: bytes, secret: str | None = SECRET, **extra: str
) -> dict[str, str]:
    sent = {
        "Content-Type": "application/json",
        "X-Shopify-Topic": topic,
        "X-Shopify-Shop-Domain": SHOP_DOMAIN,
        "X-Shopify-API-Version": "2024-10",
        "X-Shopify-Triggered-At": "2026-01-15T12:00:00.000000Z",
        "X-Shopify-Event-Id": "98880550-7158-44d4-b7cd-2c97c8a091b5",
        **extra,
    }
    if webhook_id is not None:
        sent["X-Shopify-Webhook-Id"] = webhook_id
    if secret is not None:
        sent["X-Shopify-Hmac-Sha256"] = signature(body, secret)
    return sent


def order(
    order_id: int = 450789469,
    *,
    total_price: str = "119.00",
    total_tax: str = "19.00",
    currency: str = "EUR",
    customer_id: int | None = 207119551,
    email: str = "Bob.Norman@mail.example.com",
    discount_codes: list[str] | None = None,
    note_attributes: dict[str, str] | None = None,
    landing_site: str | None = "/products/mug",
) -> dict[str, Any]:
    return {
        "id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Order/{order_id}",
        "name": "#1001",
        "email": email,
        "created_at": "2026-01-15T06:59:00-05:00",
        "processed_at": "2026-01-15T07:00:00-05:00",
        "currency": currency,
        "presentment_currency": currency,
        "financial_status": "paid",
        "total_price": total_price,
        "current_total_price": total_price,
        "subtotal_price": total_price,
        "total_tax": total_tax,
        "taxes_included": True,
        "total_discounts": "0.00",
        "total_price_set": {
            "shop_money": {"amount": total_price, "currency_code": currency},
            "presentment_money": {"amount": total_price, "currency_code": currency},
        },
        "discount_codes": [{"code": c, "amount": "10.00", "type": "fixed_amount"} for c in discount_codes or []],
        "note_attributes": [{"name": k, "value": v} for k, v in (note_attributes or {}).items()],
        "landing_site": landing_site,
        "landing_site_ref": None,
        "referring_site": "",
        "customer": None
        if customer_id is None
        else {"id": customer_id, "email": email, "admin_graphql_api_id": f"gid://shopify/Customer/{customer_id}"},
        "line_items": [{"id": 466157049, "title": "Mug", "quantity": 1, "price": total_price}],
    }


def refund(
    refund_id: int = 509562969,
    *,
    order_id: int = 450789469,
    amounts: tuple[str, ...] = ("59.50",),
    currency: str = "EUR",
    status: str = "success",
) -> dict[str, Any]:
    return {
        "id": refund_id,
        "order_id": order_id,
        "admin_graphql_api_id": f"gid://shopify/Refund/{refund_id}",
        "created_at": "2026-01-20T10:00:00-05:00",
        "processed_at": "2026-01-20T10:00:00-05:00",
        "note": "it broke",
        "restock": False,
        "refund_line_items": [],
        "transactions": [
            {
                "id": refund_id * 10 + n,
                "order_id": order_id,
                "kind": "refund",
                "gateway": "bogus",
                "status": status,
                "amount": amount,
                "currency": currency,
            }
            for n, amount in enumerate(amounts)
        ],
    }


def app_subscription(status: str, *, sub_id: int = 1029266952, shop_id: int | None = 548380009) -> dict[str, Any]:
    sub: dict[str, Any] = {
        "admin_graphql_api_id": f"gid://shopify/AppSubscription/{sub_id}",
        "name": "Pro plan",
        "status": status,
        "created_at": "2026-01-10T09:00:00-05:00",
        "updated_at": "2026-01-16T09:00:00-05:00",
        "currency": "USD",
        "capped_amount": "20.0",
    }
    if shop_id is not None:
        sub["admin_graphql_api_shop_id"] = f"gid://shopify/Shop/{shop_id}"
    return {"app_subscription": sub}


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":")).encode()


def run_jobs(factory: sessionmaker[Session], clock: FixedClock) -> int:
    return Worker(factory, build_registry(), clock=clock).run_pending()
