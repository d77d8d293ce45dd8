"""Reading commission lines and partner balances."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, case, func, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.models import Partner
from partnerpay.plans.models import Plan, PlanVersion


def list_lines(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[CommissionLine]:
    stmt = select(CommissionLine)
    if actor.program_id is not None:
        stmt = stmt.where(CommissionLine.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(CommissionLine.partner_id == actor.partner_id)
    if program_id:
        stmt = stmt.where(CommissionLine.program_id == program_id)
    if partner_id:
        stmt = stmt.where(CommissionLine.partner_id == partner_id)
    if status:
        if status not in {s.value for s in LineStatus}:
            raise ValidationError(f"status must be one of {[s.value for s in LineStatus]}", field="status")
        stmt = stmt.where(CommissionLine.status == status)
    return paginate(session, stmt, CommissionLine.id, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class PlanCitation:
    plan_id: str
    plan_name: str
    version: int


def plan_citations(session: Session, version_ids: Iterable[str | None]) -> dict[str, PlanCitation]:
    """Plan id, name and version number of each plan version named, in one read (for a page of lines)."""
    wanted = sorted({v for v in version_ids if v})
    if not wanted:
        return {}
    rows = session.execute(
        select(PlanVersion.id, Plan.id, Plan.name, PlanVersion.version)
        .join(Plan, Plan.id == PlanVersion.plan_id)
        .where(PlanVersion.id.in_(wanted))
    )
    return {version_id: PlanCitation(plan_id, name, number) for version_id, plan_id, name, number in rows}


@dataclass(frozen=True)
class Balance:
    """Where a partner's money stands, in minor units of one currency."""

    currency: str
    pending: int  # awaiting approval
    approved: int  # approved, still on hold
    payable: int  # approved and past hold: goes into the next payout run
    in_batch: int
    paid: int
    clawback_carry: int  # negative: clawbacks waiting to be netted against future earnings


def partner_balance(session: Session, partner: Partner, currency: str, now: datetime) -> Balance:
    line = CommissionLine
    on_hold = line.hold_until > now
    approved = line.status == LineStatus.APPROVED.value

    def total(cond: ColumnElement[bool]) -> ColumnElement[int]:
        return func.coalesce(func.sum(case((cond, line.amount), else_=0)), 0)

    row = session.execute(
        select(
            total(line.status == LineStatus.PENDING.value),
            total(approved & on_hold),
            total(approved & ~on_hold & (line.amount > 0)),
            total(line.status == LineStatus.IN_BATCH.value),
            total(line.status == LineStatus.PAID.value),
            total(approved & ~on_hold & (line.amount < 0)),
        ).where(line.partner_id == partner.id, line.currency == currency)
    ).one()
    return Balance(currency, *(int(v) for v in row))
