"""Staff users, programs and lines for the approval policy tests."""

from __future__ import annotations

import secrets
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.approvals.policy import put_policy
from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor
from partnerpay.auth.models import StaffUser
from partnerpay.auth.service import staff_actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.kit.ids import new_id
from partnerpay.programs.models import Program
from tests import factories


def staff(session: Session, role: str, name: str, now: datetime) -> Actor:
    """A staff user without a real password hash (these tests never log in)."""
    user = StaffUser(id=new_id("usr"), email=f"{name}@example.com", role=role, password_hash="-", created_at=now)
    session.add(user)
    session.flush()
    return staff_actor(user)


def policy(session: Session, program: Program, now: datetime, **values: Any) -> None:
    put_policy(session, actor=SYSTEM, program_id=program.id, raw=values, now=now)


def line(session: Session, program: Program, now: datetime, amount: int, partner_name: str = "Acme") -> CommissionLine:
    """One pending commission line of `amount` (the program pays 20 % of a sale of 5 times amount)."""
    partner = factories.partner(session, program, now, f"{partner_name} {secrets.token_hex(3)}")
    made = factories.event(
        session,
        program,
        now,
        external_id=f"inv-{secrets.token_hex(6)}",
        customer=f"c-{secrets.token_hex(6)}",
        amount=amount * 5,
        partner_id=partner.id,
    )
    assert len(made) == 1 and made[0].amount == amount
    return made[0]


def audit_rows(session: Session, action: str, object_id: str) -> list[AuditEntry]:
    return list(
        session.scalars(
            select(AuditEntry)
            .where(AuditEntry.action == action, AuditEntry.object_id == object_id)
            .order_by(AuditEntry.seq)
        )
    )
