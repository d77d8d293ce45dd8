"""Reading the inbox for the console and the CLI: items by status, newest first, and counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.inbox.models import InboxItem, InboxStatus
from partnerpay.kit.errors import ValidationError

STATUSES = tuple(s.value for s in InboxStatus)


@dataclass(frozen=True, slots=True)
class ItemRow:
    id: str
    program_id: str
    provider: str
    external_id: str
    kind: str
    status: str
    attempts: int
    received_at: datetime
    processed_at: datetime | None
    last_error: str | None
    note: str | None
    waiting_for: str | None
    event_ids: list[str]


def check_status(status: str | None) -> str | None:
    if status and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}, not {status!r}", field="status")
    return status or None


def items(
    session: Session,
    *,
    program_id: str | None = None,
    status: str | None = None,
    provider: str | None = None,
    limit: int = 200,
) -> list[ItemRow]:
    """Up to `limit` items, the most recently received first; the raw body is left out."""
    stmt = select(InboxItem)
    if program_id:
        stmt = stmt.where(InboxItem.program_id == program_id)
    if check_status(status):
        stmt = stmt.where(InboxItem.status == status)
    if provider:
        stmt = stmt.where(InboxItem.provider == provider)
    stmt = stmt.order_by(InboxItem.received_at.desc(), InboxItem.id.desc()).limit(limit)
    return [
        ItemRow(
            id=i.id,
            program_id=i.program_id,
            provider=i.provider,
            external_id=i.external_id,
            kind=i.kind,
            status=i.status,
            attempts=i.attempts,
            received_at=i.received_at,
            processed_at=i.processed_at,
            last_error=i.last_error,
            note=i.note,
            waiting_for=i.waiting_for,
            event_ids=list(i.event_ids or []),
        )
        for i in session.scalars(stmt)
    ]


def counts(session: Session, *, program_id: str | None = None) -> dict[str, int]:
    """Items per status, every status included."""
    found = {s: 0 for s in STATUSES}
    stmt = select(InboxItem.status, func.count()).group_by(InboxItem.status)
    if program_id:
        stmt = stmt.where(InboxItem.program_id == program_id)
    for status, count in session.execute(stmt).all():
        found[status] = int(count)
    return found
