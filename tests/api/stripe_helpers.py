"""Real Stripe deliveries for tests: event bodies shaped as Stripe sends them, signed exactly as Stripe signs."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock

SECRET = "whsec_test_5f2b9c8e1d7a4f3b"
OTHER_SECRET = "whsec_test_other_0a1b2c3d4e"


def signature(body: bytes, secret: str, t: int) -> str:
    # Stripe's scheme (PROVIDERS.md §1), written out here independently of partnerpay's verifier.
    return hmac.new(secret.encode("utf-8"), f"{t}.".encode() + body, hashlib.sha256).hexdigest()


def header(body: bytes, t: int, *secrets: str) -> str:
    return f"t={t}," + ",".join(f"v1={signature(body, s, t)}" for s in secrets or (SECRET,))


def event(evt_id: str, kind: str, obj: dict[str, Any], created: int = 1768478400, **extra: Any) -> dict[str, Any]:
    return {
        "id": evt_id,
        "object": "event",
        "api_version": "2024-06-20",
        "created": created,
        "data": {"object": obj, **extra},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def invoice(
    invoice_id: str = "in_1",
    *,
    customer: str | dict[str, Any] = "cus_A",
    amount_paid: int = 12_000,
    tax: int = 2_000,
    currency: str = "eur",
    charge: str | None = "ch_1",
    metadata: dict[str, str] | None = None,
    discount: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": invoice_id,
        "object": "invoice",
        "customer": customer,
        "customer_email": "buyer@shop.example",
        "currency": currency,
        "amount_due": amount_paid,
        "amount_paid": amount_paid,
        "total": amount_paid,
        "subtotal": amount_paid - tax,
        "total_excluding_tax": amount_paid - tax,
        "charge": charge,
        "payment_intent": "pi_" + invoice_id,
        "discount": discount,
        "discounts": [],
        "lines": {"object": "list", "data": [{"amount": amount_paid - tax, "currency": currency, "discounts": []}]},
        "metadata": metadata or {},
        "status_transitions": {"paid_at": 1768478400},
    }


def charge(
    charge_id: str = "ch_1", *, invoice_id: str | None = "in_1", amount: int = 12_000, refunded: int = 0
) -> dict[str, Any]:
    return {
        "id": charge_id,
        "object": "charge",
        "amount": amount,
        "amount_refunded": refunded,
        "refunded": refunded == amount,
        "currency": "eur",
        "customer": "cus_A",
        "invoice": invoice_id,
        "payment_intent": "pi_" + (invoice_id or charge_id),
    }


def body_of(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ": ")).encode()


def run_jobs(factory: sessionmaker[Session], clock: FixedClock) -> int:
    return Worker(factory, build_registry(), clock=clock).run_pending()
