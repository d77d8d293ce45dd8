"""Disputes as CSV (console > Disputes > Download CSV): the queue's filters, every matching dispute, each cell
formula-escaped by kit/csvsafe.py because partners write the description and the customer reference."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.disputes.models import Dispute
from partnerpay.disputes.queries import names_of, queue_stmt
from partnerpay.disputes.rules import is_overdue, sla_text
from partnerpay.kit.csvsafe import write_csv
from partnerpay.kit.money import to_major_string
from partnerpay.partners.models import Partner

EXPORT_HEADER = (
    "id", "program_id", "partner_id", "partner", "kind", "status", "overdue", "sla", "opened_at", "due_at",
    "owner", "line_id", "customer_ref", "event_date", "amount", "currency", "description", "resolved_at",
    "resolution_reason", "adjustment_line_id",
)  # fmt: skip


def _when(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def export_disputes(
    session: Session, actor: Actor, *, now: datetime, program_id: str | None = None, partner_id: str | None = None,
    status: str | None = None, overdue: bool | None = None, mine: bool = False,
) -> str:  # fmt: skip
    """Every dispute the queue's filters match (no limit), most urgent first, as CSV text."""
    stmt = queue_stmt(actor, now=now, program_id=program_id, partner_id=partner_id, status=status,
                      overdue=overdue, mine=mine)  # fmt: skip
    disputes: list[Dispute] = list(session.scalars(stmt.order_by(Dispute.due_at, Dispute.id)))
    names = names_of(session, Partner, Partner.name, {d.partner_id for d in disputes})
    owners = names_of(session, StaffUser, StaffUser.email, {d.owner_id for d in disputes if d.owner_id})
    rows = [_row(d, now, names.get(d.partner_id, ""), owners.get(d.owner_id or "", "")) for d in disputes]
    return write_csv(EXPORT_HEADER, rows)


def _row(d: Dispute, now: datetime, partner: str, owner: str) -> list[object]:
    overdue = "yes" if is_overdue(d.status, d.due_at, now) else "no"
    amount = to_major_string(d.amount, d.currency) if d.amount is not None else ""
    event_day = d.event_date.date().isoformat() if d.event_date else ""
    return [
        d.id, d.program_id, d.partner_id, partner, d.kind, d.status, overdue, sla_text(d.status, d.due_at, now),
        _when(d.created_at), _when(d.due_at), owner, d.line_id, d.customer_ref, event_day, amount, d.currency,
        d.description, _when(d.resolved_at), d.resolution_reason, d.adjustment_line_id,
    ]  # fmt: skip
