"""Build valid objects with one call through the services; each test states only what matters to it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventIn, EventType
from partnerpay.events.service import record_event
from partnerpay.partners.models import Partner
from partnerpay.partners.service import create_partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import create_program


def program(session: Session, now: datetime, **kw: Any) -> Program:
    args: dict[str, Any] = {"name": "Program", "currency": "EUR", "hold_days": 0, "default_percent_bp": 2000, **kw}
    return create_program(session, actor=SYSTEM, now=now, **args)


def partner(session: Session, prog: Program, now: datetime, name: str = "Partner", **kw: Any) -> Partner:
    email = kw.pop("email", f"{name.lower().replace(' ', '.')}@example.com")
    return create_partner(session, actor=SYSTEM, program_id=prog.id, name=name, email=email, now=now, **kw)


def event(
    session: Session,
    prog: Program,
    now: datetime,
    *,
    external_id: str,
    customer: str,
    amount: int | None,
    type: EventType = EventType.INVOICE_PAID,
    partner_id: str | None = None,
    occurred_at: datetime | None = None,
    original_external_id: str | None = None,
) -> list[CommissionLine]:
    data = EventIn(
        program_id=prog.id,
        type=type,
        external_id=external_id,
        occurred_at=occurred_at or now,
        customer_external_id=customer,
        partner_id=partner_id,
        amount=amount,
        currency=prog.currency if amount is not None else None,
        original_external_id=original_external_id,
    )
    return record_event(session, actor=SYSTEM, data=data, now=now).commissions
