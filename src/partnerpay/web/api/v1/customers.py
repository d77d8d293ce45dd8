"""Customers (list, one with its timeline), attributing one to a partner by hand, and the data-quality figures."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.events import customers as queries
from partnerpay.events.customers import CustomerRow, CustomerView
from partnerpay.events.data_quality import DataQuality, data_quality
from partnerpay.events.manual_attribution import REASON_MAX, attribute_customer
from partnerpay.events.models import Customer
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import EventOut, In, LineOut, Out, dump
from partnerpay.web.api.v1.common import CursorParam, Limit, need, now, reader
from partnerpay.web.api.v1.deals import Caller

router = APIRouter(tags=["customers"])


class CustomerOut(Out):
    id: str
    program_id: str
    external_id: str
    partner_id: str | None
    status: str = Field(description="lead, trial, active, past_due, canceled or refunded")
    lifetime_revenue: int = Field(description="paid minus refunded and charged back, minor units of `currency`")
    first_paid_at: datetime | None
    last_event_at: datetime | None
    status_changed_at: datetime | None
    created_at: datetime
    attribution_id: str | None
    attributed_until: datetime | None
    attribution: str | None = Field(description="why the customer is its partner's, or why it has none")
    email: str | None
    domain: str | None


class AttributionOut(Out):
    id: str
    partner_id: str
    rule: str
    reason: str
    decided_at: datetime
    expires_at: datetime | None
    event_id: str
    self_referral: bool


class AttributeIn(In):
    partner_id: StrictStr = Field(min_length=1, max_length=40)
    reason: StrictStr = Field(min_length=1, max_length=REASON_MAX)


def _money(by_currency: dict[str, int]) -> list[dict[str, Any]]:
    return [{"currency": c, "amount": a} for c, a in sorted(by_currency.items())]


def customer_out(actor: Actor, customer: Customer, *, partner_name: str | None, currency: str) -> dict[str, Any]:
    out = {**dump(CustomerOut, customer), "partner_name": partner_name, "currency": currency}
    if actor.partner_id is not None:
        # A partner sees its customers' lifecycle, not their contact details.
        out["email"] = out["domain"] = None
    return out


def _row(actor: Actor, row: CustomerRow) -> dict[str, Any]:
    return customer_out(actor, row.customer, partner_name=row.partner_name, currency=row.currency)


def view_out(actor: Actor, view: CustomerView) -> dict[str, Any]:
    return {
        "customer": customer_out(
            actor,
            view.customer,
            partner_name=view.partner.name if view.partner else None,
            currency=view.program.currency,
        ),
        "attribution": dump(AttributionOut, view.decision) if view.decision else None,
        "history": [dump(AttributionOut, a) for a in view.history],
        "timeline": [
            {
                "event": dump(EventOut, entry.event),
                "partner_name": entry.partner_name,
                "attribution_reason": entry.decision.reason if entry.decision else None,
                "commissions": [dump(LineOut, line) for line in entry.lines],
            }
            for entry in view.timeline
        ],
        "totals": {
            "events": view.totals.events,
            "paid": _money(view.totals.paid),
            "reversed": _money(view.totals.reversed),
            "commissions": _money(view.totals.commissions),
        },
    }


def data_quality_out(dq: DataQuality) -> dict[str, Any]:
    u = dq.unattributed
    return {
        "program_id": dq.program.id,
        "at": dq.at.isoformat(),
        "unattributed": {
            "since": u.since.isoformat(),
            "count": u.count,
            "totals": _money(u.totals),
            "events": [{**dump(EventOut, r.event), "customer_external_id": r.customer_external_id} for r in u.rows],
        },
        "inbox": {
            "failed": dq.inbox.failed,
            "waiting": dq.inbox.waiting,
            "newest_failed": [
                {
                    "id": i.id,
                    "provider": i.provider,
                    "kind": i.kind,
                    "external_id": i.external_id,
                    "received_at": i.received_at.isoformat(),
                    "attempts": i.attempts,
                    "last_error": i.last_error,
                }
                for i in dq.inbox.newest_failed
            ],
        },
        "integrations": [
            {
                "provider": p.provider,
                "connected": p.connected,
                "last_delivery_at": p.last_delivery_at.isoformat() if p.last_delivery_at else None,
                "deliveries_7d": p.deliveries,
                "failed_7d": p.failed,
                "error_rate": p.error_rate,
                "bad_signatures": p.bad_signatures,
                "last_bad_signature_at": p.last_bad_signature_at.isoformat() if p.last_bad_signature_at else None,
            }
            for p in dq.providers
        ],
    }


@router.get("/customers")
def list_customers(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    status: str | None = Query(None, description="lead, trial, active, past_due, canceled or refunded"),
    partner_id: str | None = Query(None, description="a partner id, or `none` for customers without a partner"),
    q: str | None = Query(None, description="part of the customer's external id or email"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    """Customers by id (oldest first); a partner sees only the customers attributed to it."""
    with reader(request, actor) as s:
        page = queries.list_customers(
            s, actor, program_id=program_id, status=status, partner_id=partner_id, q=q, cursor=cursor, limit=limit
        )
        return {"data": [_row(actor, r) for r in page.data], "next_cursor": page.next_cursor}


@router.get("/customers/{customer_id}")
def get_customer(request: Request, customer_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """The customer with its attribution decisions and its events newest first, each with its commission lines."""
    with reader(request, actor) as s:
        return view_out(actor, queries.customer_view(s, actor, customer_id))


@router.post("/customers/{customer_id}/attribute")
def attribute(request: Request, customer_id: str, body: AttributeIn, actor: Actor = Caller) -> JSONResponse:
    """Attribute a customer without a partner by hand (rule `manual`, audited); its paying events that had no
    partner earn now. A customer that already has a partner is refused (409)."""
    need(actor, "write")

    def work(s: Session) -> tuple[int, Any]:
        done = attribute_customer(
            s, actor=actor, customer_id=customer_id, partner_id=body.partner_id, reason=body.reason, now=now(request)
        )
        return 200, {
            **view_out(actor, queries.customer_view(s, actor, done.customer.id)),
            "attributed_events": [e.id for e in done.events],
            "commissions_created": [dump(LineOut, line) for line in done.commissions],
        }

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.get("/programs/{program_id}/data-quality")
def program_data_quality(request: Request, program_id: str, actor: Actor = Caller) -> dict[str, Any]:
    """Unattributed revenue (90 days), failed and waiting inbox items, and each integration's health (7 days)."""
    with reader(request, actor) as s:
        return data_quality_out(data_quality(s, actor, program_id=program_id, now=now(request)))
