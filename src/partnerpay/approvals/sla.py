"""Approval SLAs: a line pending longer than its program's `sla_days` is overdue; approvers hear about it once a
day per line, by email through the outbox."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import Session

from partnerpay.approvals.models import OverdueNotice
from partnerpay.approvals.policy import Policy
from partnerpay.auth.models import StaffUser
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.bulk import bulk_insert
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import enqueue_email
from partnerpay.programs.models import Program

# One email lists at most this many lines by id; the rest are counted (the console shows them all).
LISTED = 50


def pending_since(line: CommissionLine) -> datetime | None:
    """A line waits for approval from its creation; None once decided."""
    return line.created_at if line.status == LineStatus.PENDING.value else None


def due_at(policy: Policy, line: CommissionLine) -> datetime | None:
    if policy.sla_days is None or line.status != LineStatus.PENDING.value:
        return None
    return line.created_at + timedelta(days=policy.sla_days)


def is_overdue(policy: Policy, line: CommissionLine, now: datetime) -> bool:
    due = due_at(policy, line)
    return due is not None and due < now


def overdue_clause(policies: Iterable[Policy], now: datetime) -> ColumnElement[bool]:
    """SQL: pending lines of a program with an SLA, created before its cut-off (computed here, so the same
    statement runs on SQLite and PostgreSQL without date arithmetic in SQL)."""
    line = CommissionLine
    parts = [
        and_(line.program_id == p.program_id, line.created_at < now - timedelta(days=p.sla_days))
        for p in policies
        if p.sla_days is not None
    ]
    if not parts:
        return false()
    return and_(line.status == LineStatus.PENDING.value, or_(*parts))


@dataclass(frozen=True)
class Reminder:
    program_id: str
    lines: int
    recipients: int


def remind_overdue(session: Session, policies: Mapping[str, Policy], now: datetime) -> list[Reminder]:
    """Email the program's approvers about overdue lines not yet mentioned today: once per line per day
    (overdue_notices' key), so a sweep run twice the same day sends nothing new."""
    today = now.date()
    reminders: list[Reminder] = []
    for policy in policies.values():
        if policy.sla_days is None:
            continue
        told = select(OverdueNotice.line_id).where(OverdueNotice.day == today)
        due = session.execute(
            select(CommissionLine.id, CommissionLine.amount, CommissionLine.currency, CommissionLine.created_at)
            .where(overdue_clause([policy], now), CommissionLine.id.not_in(told))
            .order_by(CommissionLine.created_at, CommissionLine.id)
        ).all()
        if not due:
            continue
        bulk_insert(
            session,
            "overdue_notices",
            ("line_id", "day", "program_id", "sent_at"),
            [(line_id, today, policy.program_id, now) for line_id, *_ in due],
        )
        recipients = sorted(
            session.scalars(select(StaffUser.email).where(StaffUser.role.in_(policy.approver_roles))).all()
        )
        program = session.get(Program, policy.program_id)
        name = program.name if program else policy.program_id
        totals: dict[str, int] = {}
        for _, amount, currency, _ in due:
            totals[currency] = totals.get(currency, 0) + amount
        listed = "\n".join(
            f"- {line_id}: {format_money(amount, currency)}, pending since {created:%Y-%m-%d}"
            for line_id, amount, currency, created in due[:LISTED]
        )
        more = f"\n… and {len(due) - LISTED} more." if len(due) > LISTED else ""
        text = (
            f"{len(due)} commission line(s) of {name} wait for approval longer than the program's SLA of "
            f"{policy.sla_days} day(s): {', '.join(format_money(t, c) for c, t in sorted(totals.items()))}.\n\n"
            f"{listed}{more}\n\nReview them: {{base_url}}/commissions?status=pending&overdue=1"
            f"&program_id={policy.program_id}\n"
        )
        for email in recipients:
            enqueue_email(
                session,
                to=email,
                subject=f"{name}: {len(due)} commission line(s) overdue for approval",
                text=text,
                now=now,
            )
        reminders.append(Reminder(policy.program_id, len(due), len(recipients)))
    return reminders
