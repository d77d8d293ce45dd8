"""Reading fraud flags for the console: each with its partner's name and its event's external id."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.events.models import Event
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.models import Partner
from partnerpay.tracking.attribution_models import FlagKind, FlagStatus, FraudFlag


@dataclass(frozen=True)
class FlagRow:
    flag: FraudFlag
    partner_name: str
    event_external_id: str | None
    event_type: str | None
    event_amount: int | None
    event_currency: str | None
    event_occurred_at: datetime | None


def flag_rows(
    session: Session,
    actor: Actor,
    *,
    status: str | None = FlagStatus.OPEN.value,
    kind: str | None = None,
    partner_id: str | None = None,
    limit: int = 200,
) -> list[FlagRow]:
    """Newest first; staff only (a partner user sees none)."""
    if actor.partner_id is not None:
        return []
    if status and status not in {s.value for s in FlagStatus}:
        raise ValidationError(f"status must be one of {[s.value for s in FlagStatus]}", field="status")
    if kind and kind not in {k.value for k in FlagKind}:
        raise ValidationError(f"kind must be one of {[k.value for k in FlagKind]}", field="kind")
    stmt = (
        select(FraudFlag, Partner.name, Event.external_id, Event.type, Event.amount, Event.currency, Event.occurred_at)
        .join(Partner, Partner.id == FraudFlag.partner_id)
        .outerjoin(Event, Event.id == FraudFlag.event_id)
        .order_by(FraudFlag.id.desc())
        .limit(limit)
    )
    if actor.program_id is not None:
        stmt = stmt.where(FraudFlag.program_id == actor.program_id)
    if status:
        stmt = stmt.where(FraudFlag.status == status)
    if kind:
        stmt = stmt.where(FraudFlag.kind == kind)
    if partner_id:
        stmt = stmt.where(FraudFlag.partner_id == partner_id)
    return [FlagRow(*row) for row in session.execute(stmt).all()]


def open_counts(session: Session, actor: Actor) -> dict[str, int]:
    """Open flags per kind: the work queue's size."""
    stmt = select(FraudFlag.kind, func.count()).where(FraudFlag.status == FlagStatus.OPEN.value)
    if actor.program_id is not None:
        stmt = stmt.where(FraudFlag.program_id == actor.program_id)
    return {kind: int(n) for kind, n in session.execute(stmt.group_by(FraudFlag.kind)).all()}


def list_flags(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = None,
    kind: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[FraudFlag]:
    if actor.partner_id is not None:
        raise Forbidden("fraud flags are for the program's staff")
    stmt = select(FraudFlag)
    if actor.program_id is not None:
        stmt = stmt.where(FraudFlag.program_id == actor.program_id)
    if program_id:
        stmt = stmt.where(FraudFlag.program_id == program_id)
    if partner_id:
        stmt = stmt.where(FraudFlag.partner_id == partner_id)
    if status:
        if status not in {s.value for s in FlagStatus}:
            raise ValidationError(f"status must be one of {[s.value for s in FlagStatus]}", field="status")
        stmt = stmt.where(FraudFlag.status == status)
    if kind:
        if kind not in {k.value for k in FlagKind}:
            raise ValidationError(f"kind must be one of {[k.value for k in FlagKind]}", field="kind")
        stmt = stmt.where(FraudFlag.kind == kind)
    return paginate(session, stmt, FraudFlag.id, cursor=cursor, limit=limit)
