"""Read side of disputes: the API list, the console queue with SLA age and owner, the home queue counts,
a partner's disputes and each dispute's evidence and history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.disputes.models import WAITING, Dispute, DisputeEvidence, DisputeStatus
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.models import Partner

STATUSES = tuple(s.value for s in DisputeStatus)
ANY_STATUS = "any"  # the queue's and the export's "every status" (no status means waiting ones)
QUEUE_LIMIT = 200
PARTNER_LIMIT = 50


def check_status(status: str | None) -> str | None:
    if status and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}, not {status!r}", field="status")
    return status or None


def _scoped(actor: Actor) -> Select[Any]:
    stmt = select(Dispute)
    if actor.program_id is not None:
        stmt = stmt.where(Dispute.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(Dispute.partner_id == actor.partner_id)
    return stmt


def _filtered(
    actor: Actor, *, now: datetime, program_id: str | None, partner_id: str | None, status: str | None,
    overdue: bool | None,
) -> Select[Any]:  # fmt: skip
    stmt = _scoped(actor)
    if program_id:
        stmt = stmt.where(Dispute.program_id == program_id)
    if partner_id:
        stmt = stmt.where(Dispute.partner_id == partner_id)
    if check_status(status):
        stmt = stmt.where(Dispute.status == status)
    if overdue is True:
        stmt = stmt.where(Dispute.status.in_(WAITING), Dispute.due_at < now)
    elif overdue is False:
        stmt = stmt.where((Dispute.status.not_in(WAITING)) | (Dispute.due_at >= now))
    return stmt


def list_disputes(
    session: Session, actor: Actor, *, now: datetime, program_id: str | None = None, partner_id: str | None = None,
    status: str | None = None, overdue: bool | None = None, cursor: str | None = None, limit: int = 50,
) -> Page[Dispute]:  # fmt: skip
    """Oldest first by id; a partner sees only its own."""
    stmt = _filtered(actor, now=now, program_id=program_id, partner_id=partner_id, status=status, overdue=overdue)
    return paginate(session, stmt, Dispute.id, cursor=cursor, limit=limit)


@dataclass(frozen=True, slots=True)
class QueueRow:
    dispute: Dispute
    partner_name: str
    owner_email: str | None


def queue_stmt(
    actor: Actor, *, now: datetime, program_id: str | None = None, partner_id: str | None = None,
    status: str | None = None, overdue: bool | None = None, mine: bool = False,
) -> Select[Any]:  # fmt: skip
    """The console queue's filters (the queue and its CSV export): waiting disputes unless a status, or
    ANY_STATUS, is chosen."""
    chosen = None if status == ANY_STATUS else status
    stmt = _filtered(actor, now=now, program_id=program_id, partner_id=partner_id, status=chosen, overdue=overdue)
    if not status:
        stmt = stmt.where(Dispute.status.in_(WAITING))
    if mine:
        stmt = stmt.where(Dispute.owner_id == actor.id)
    return stmt


def queue(
    session: Session, actor: Actor, *, now: datetime, program_id: str | None = None, status: str | None = None,
    overdue: bool | None = None, mine: bool = False,
) -> list[QueueRow]:  # fmt: skip
    """The console queue: the most urgent first (earliest due date), waiting ones unless a status is chosen."""
    stmt = queue_stmt(actor, now=now, program_id=program_id, status=status, overdue=overdue, mine=mine)
    rows = list(session.scalars(stmt.order_by(Dispute.due_at, Dispute.id).limit(QUEUE_LIMIT)))
    names = names_of(session, Partner, Partner.name, {d.partner_id for d in rows})
    owners = names_of(session, StaffUser, StaffUser.email, {d.owner_id for d in rows if d.owner_id})
    return [QueueRow(d, names.get(d.partner_id, d.partner_id), owners.get(d.owner_id or "")) for d in rows]


def for_partner(
    session: Session, actor: Actor, partner_id: str, *, limit: int = PARTNER_LIMIT
) -> tuple[list[Dispute], int]:
    """A partner's disputes of every status, newest first (the partner page's section), and how many in all."""
    stmt = _scoped(actor).where(Dispute.partner_id == partner_id)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    rows = list(session.scalars(stmt.order_by(Dispute.created_at.desc(), Dispute.id.desc()).limit(limit)))
    return rows, int(total)


def names_of(session: Session, model: Any, column: Any, ids: set[str]) -> dict[str, str]:
    """Id → one column (a partner's name, a staff user's email) for the rows a list shows."""
    if not ids:
        return {}
    return dict(session.execute(select(model.id, column).where(model.id.in_(sorted(ids)))).all())


@dataclass
class HomeQueue:
    waiting: int = 0
    overdue: int = 0
    oldest: datetime | None = None
    unowned: int = 0


def home_queues(session: Session, *, now: datetime, owner_id: str | None = None) -> dict[str, HomeQueue]:
    """Program id → waiting disputes, how many overdue, the oldest, how many nobody took yet (one query)."""
    stmt = (
        select(Dispute.program_id, func.count(), func.count().filter(Dispute.due_at < now),
               func.min(Dispute.created_at), func.count().filter(Dispute.owner_id.is_(None)))
        .where(Dispute.status.in_(WAITING))
        .group_by(Dispute.program_id)
    )  # fmt: skip
    if owner_id is not None:
        stmt = stmt.where(Dispute.partner_id.in_(select(Partner.id).where(Partner.owner_id == owner_id)))
    return {
        program_id: HomeQueue(int(n), int(late), oldest, int(unowned))
        for program_id, n, late, oldest, unowned in session.execute(stmt)
    }


def for_line_ids(session: Session, partner_id: str, line_ids: list[str]) -> dict[str, Dispute]:
    """The latest dispute of each of these lines (the portal's Earnings marks disputed lines)."""
    if not line_ids:
        return {}
    found: dict[str, Dispute] = {}
    stmt = select(Dispute).where(Dispute.partner_id == partner_id, Dispute.line_id.in_(line_ids)).order_by(Dispute.id)
    for d in session.scalars(stmt):
        assert d.line_id is not None
        found[d.line_id] = d
    return found


def evidence(session: Session, dispute_id: str) -> list[DisputeEvidence]:
    stmt = select(DisputeEvidence).where(DisputeEvidence.dispute_id == dispute_id).order_by(DisputeEvidence.id)
    return list(session.scalars(stmt))


def history(session: Session, dispute_id: str) -> list[AuditEntry]:
    """Every audited step of the dispute, oldest first (its timeline)."""
    stmt = select(AuditEntry).where(AuditEntry.object_type == "dispute", AuditEntry.object_id == dispute_id)
    return list(session.scalars(stmt.order_by(AuditEntry.seq)))
