"""The demo's incoming facts: Stripe deliveries as the inbox stores them (one processed, one refund
waiting for an invoice that never came, one unreadable body), a custom event type, and a payment no
partner could be found for, so the inbox, customers and data-quality pages have something to show.

The deliveries are written as the webhook endpoint writes them after checking the signature (the demo
has no Stripe account to sign them), then processed by the same job code a worker runs.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.demo.onboarding import Cast, Extra
from partnerpay.events.schemas import EventIn
from partnerpay.inbox.ingest import ingest_event
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.processing import process_item
from partnerpay.inbox.service import receive
from partnerpay.partners.models import Partner
from partnerpay.programs.service import update_program_settings

DAY = timedelta(days=1)


def extras(now: datetime) -> list[Extra]:
    start = now.replace(hour=10, minute=0, second=0, microsecond=0)
    return [
        Extra(start - 9 * DAY, "custom event type", _custom_type),
        Extra(start - 8 * DAY, "Stripe invoice", _stripe_invoice),
        Extra(start - 5 * DAY, "Stripe refund waiting", _stripe_refund_waiting),
        Extra(start - 4 * DAY, "unreadable delivery", _malformed),
        Extra(start - 2 * DAY, "seat added", _seat_added),
        Extra(start - 1 * DAY, "unattributed payment", _unattributed),
    ]


def _envelope(event_id: str, kind: str, obj: dict[str, Any], at: datetime) -> str:
    body = {"id": event_id, "object": "event", "type": kind, "created": int(at.timestamp()), "data": {"object": obj}}
    return json.dumps(body)


def _deliver(session: Session, cast: Cast, at: datetime, event_id: str, kind: str, body: str) -> None:
    item, _ = receive(
        session, program_id=cast.program_id, provider="stripe", external_id=event_id, kind=kind, body=body,
        headers={"user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)"}, now=at,
    )  # fmt: skip
    process_item(session, item_id=item.id, now=at)


def _code(session: Session, cast: Cast, index: int) -> str:
    code = session.scalar(select(Partner.referral_code).where(Partner.id == cast.partner_ids[index]))
    assert code is not None
    return code


def _custom_type(session: Session, cast: Cast, at: datetime) -> None:
    update_program_settings(
        session, actor=cast.owner, program_id=cast.program_id, changes={"custom_event_types": ["seat_added"]}, now=at
    )


def _stripe_invoice(session: Session, cast: Cast, at: datetime) -> None:
    invoice = {
        "id": "in_demo_1042", "object": "invoice", "customer": "cus_demo_brightlane",
        "customer_email": "billing@brightlane.example", "currency": "eur", "amount_paid": 35_700,
        "total": 35_700, "total_excluding_tax": 30_000, "charge": "ch_demo_1042", "payment_intent": "pi_demo_1042",
        "metadata": {"partnerpay_ref": _code(session, cast, 1)},
        "status_transitions": {"paid_at": int(at.timestamp())},
    }  # fmt: skip
    _deliver(session, cast, at, "evt_demo_invoice_1042", "invoice.paid", _envelope("evt_demo_invoice_1042",
             "invoice.paid", invoice, at))  # fmt: skip


def _stripe_refund_waiting(session: Session, cast: Cast, at: datetime) -> None:
    charge = {
        "id": "ch_demo_0999", "object": "charge", "amount": 11_900, "amount_refunded": 11_900, "currency": "eur",
        "customer": "cus_demo_quillon", "invoice": "in_demo_0999", "payment_intent": "pi_demo_0999",
    }  # fmt: skip
    _deliver(session, cast, at, "evt_demo_refund_0999", "charge.refunded", _envelope("evt_demo_refund_0999",
             "charge.refunded", charge, at))  # fmt: skip


def _malformed(session: Session, cast: Cast, at: datetime) -> None:
    receive(
        session, program_id=cast.program_id, provider="stripe", external_id="malformed:demo", kind="malformed",
        body='{"id": "evt_demo_cut", "type": "invoice.pa', headers={}, now=at, status=InboxStatus.FAILED,
        error="the body is not JSON: Unterminated string starting at: line 1 column 30 (char 29)",
    )  # fmt: skip


def _seat_added(session: Session, cast: Cast, at: datetime) -> None:
    data = EventIn.model_validate(
        {"program_id": cast.program_id, "type": "seat_added", "external_id": "seat_demo_1", "occurred_at":
         at.isoformat(), "customer_external_id": "cus_demo_brightlane", "metadata": {"seats": 3}}
    )  # fmt: skip
    ingest_event(session, actor=cast.owner, data=data, now=at)


def _unattributed(session: Session, cast: Cast, at: datetime) -> None:
    data = EventIn.model_validate(
        {"program_id": cast.program_id, "type": "invoice_paid", "external_id": "inv_demo_orphan_77",
         "occurred_at": at.isoformat(), "customer_external_id": "cus_demo_hollowpine", "amount": 24_900,
         "currency": "EUR", "customer_email": "ap@hollowpine.example"}
    )  # fmt: skip
    ingest_event(session, actor=cast.owner, data=data, now=at)
