"""Read-side queries behind the console pages: dashboard totals, work queues, partner search, tie-outs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, true
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.queries import list_lines
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.models import Partner
from partnerpay.payouts.exporters.csv_file import control_sum_of, export_csv
from partnerpay.payouts.models import BatchStatus, Payout, PayoutBatch, PayoutLineRelease, PayoutStatus
from partnerpay.programs.models import Program

PENDING = LineStatus.PENDING.value
APPROVED = LineStatus.APPROVED.value


def programs(session: Session) -> list[Program]:
    return list(session.scalars(select(Program).order_by(Program.name, Program.id)))


def program_names(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Program.id, Program.name)).all())


def partner_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    return dict(session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(wanted))).all())


def owned_by(owner_id: str) -> ColumnElement[bool]:
    """Commission lines of the partners this staff user owns (the "mine" filter)."""
    return CommissionLine.partner_id.in_(select(Partner.id).where(Partner.owner_id == owner_id))


def partner_owners(session: Session, partner_ids: Iterable[str]) -> dict[str, str]:
    """Owner email per partner id; partners without an owner are left out."""
    wanted = sorted(set(partner_ids))
    if not wanted:
        return {}
    stmt = (
        select(Partner.id, StaffUser.email)
        .join(StaffUser, StaffUser.id == Partner.owner_id)
        .where(Partner.id.in_(wanted))
    )
    return dict(session.execute(stmt).all())


@dataclass(frozen=True)
class Buckets:
    """Where one program's commission money stands in one currency (minor units)."""

    currency: str
    pending: int
    on_hold: int  # approved, hold not over yet
    payable: int  # approved and past hold: the next payout run takes it (net of clawbacks)
    in_batch: int
    paid: int


@dataclass
class ProgramSummary:
    program: Program
    buckets: list[Buckets] = field(default_factory=list)
    pending_count: int = 0
    oldest_pending: datetime | None = None
    draft_batches: int = 0
    approved_batches: int = 0

    @property
    def needs_attention(self) -> bool:
        return bool(self.pending_count or self.draft_batches or self.approved_batches)


def _sum_where(cond: ColumnElement[bool]) -> Any:
    return func.coalesce(func.sum(case((cond, CommissionLine.amount), else_=0)), 0)


def program_summaries(session: Session, now: datetime, *, owner_id: str | None = None) -> list[ProgramSummary]:
    """One summary per program: line totals by state and currency, and what waits for a decision.

    With owner_id, line totals and pending counts cover only that staff user's partners; payout batches
    are program-wide and always counted."""
    line = CommissionLine
    summaries = {p.id: ProgramSummary(p) for p in programs(session)}
    held = line.hold_until > now
    is_approved = line.status == APPROVED
    mine = owned_by(owner_id) if owner_id else true()
    rows = session.execute(
        select(
            line.program_id,
            line.currency,
            _sum_where(line.status == PENDING),
            _sum_where(is_approved & held),
            _sum_where(is_approved & ~held),
            _sum_where(line.status == LineStatus.IN_BATCH.value),
            _sum_where(line.status == LineStatus.PAID.value),
        )
        .where(mine)
        .group_by(line.program_id, line.currency)
        .order_by(line.program_id, line.currency)
    ).all()
    for program_id, currency, *amounts in rows:
        if program_id in summaries:
            summaries[program_id].buckets.append(Buckets(currency, *(int(a) for a in amounts)))
    for program_id, count, oldest in session.execute(
        select(line.program_id, func.count(), func.min(line.created_at))
        .where(line.status == PENDING, mine)
        .group_by(line.program_id)
    ):
        if program_id in summaries:
            summaries[program_id].pending_count = int(count)
            summaries[program_id].oldest_pending = oldest
    for program_id, status, count in session.execute(
        select(PayoutBatch.program_id, PayoutBatch.status, func.count())
        .where(PayoutBatch.status.in_([BatchStatus.DRAFT.value, BatchStatus.APPROVED.value]))
        .group_by(PayoutBatch.program_id, PayoutBatch.status)
    ):
        if program_id in summaries:
            if status == BatchStatus.DRAFT.value:
                summaries[program_id].draft_batches = int(count)
            else:
                summaries[program_id].approved_batches = int(count)
    return list(summaries.values())


@dataclass(frozen=True)
class Payable:
    """Approved lines past their hold and not yet in a payout: what a run would gather."""

    currency: str
    total: int
    lines: int
    partners: int


def payable_now(session: Session, now: datetime, *, owner_id: str | None = None) -> dict[str, list[Payable]]:
    """Per program and currency; with owner_id, only the lines of that staff user's partners."""
    line = CommissionLine
    mine = owned_by(owner_id) if owner_id else true()
    result: dict[str, list[Payable]] = defaultdict(list)
    for program_id, currency, total, lines, partners in session.execute(
        select(
            line.program_id, line.currency, func.sum(line.amount), func.count(), func.count(line.partner_id.distinct())
        )
        .where(line.status == APPROVED, line.hold_until <= now, line.payout_id.is_(None), mine)
        .group_by(line.program_id, line.currency)
        .order_by(line.program_id, line.currency)
    ):
        result[program_id].append(Payable(currency, int(total), int(lines), int(partners)))
    return dict(result)


def batches(session: Session, *, limit: int = 100) -> list[PayoutBatch]:
    """Newest first; ids are time-sortable."""
    return list(session.scalars(select(PayoutBatch).order_by(PayoutBatch.id.desc()).limit(limit)))


def search_partners(
    session: Session, *, status: str | None, q: str | None, cursor: str | None, limit: int = 50
) -> Page[Partner]:
    stmt = select(Partner)
    if status:
        stmt = stmt.where(Partner.status == status)
    if q and q.strip():
        needle = q.strip().lower()
        stmt = stmt.where(
            or_(
                func.lower(Partner.name).contains(needle, autoescape=True),
                func.lower(Partner.email).contains(needle, autoescape=True),
                func.lower(Partner.referral_code).contains(needle, autoescape=True),
            )
        )
    return paginate(session, stmt, Partner.id, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class LineTotal:
    currency: str
    count: int
    total: int


def line_totals(
    session: Session, *, status: str | None, program_id: str | None, owner_id: str | None = None
) -> list[LineTotal]:
    """Count and sum of the lines matching a filter, one row per currency (never mixed)."""
    line = CommissionLine
    stmt = select(line.currency, func.count(), func.sum(line.amount)).group_by(line.currency).order_by(line.currency)
    if status:
        stmt = stmt.where(line.status == status)
    if program_id:
        stmt = stmt.where(line.program_id == program_id)
    if owner_id:
        stmt = stmt.where(owned_by(owner_id))
    return [LineTotal(c, int(n), int(s)) for c, n, s in session.execute(stmt)]


def lines_page(
    session: Session,
    actor: Actor,
    *,
    status: str | None,
    program_id: str | None,
    owner_id: str | None,
    cursor: str | None,
    limit: int = 50,
) -> Page[CommissionLine]:
    """The commissions table: list_lines, narrowed to one owner's partners when owner_id is given."""
    if not owner_id:
        return list_lines(session, actor, program_id=program_id, status=status, cursor=cursor, limit=limit)
    line = CommissionLine
    stmt = select(line).where(owned_by(owner_id))
    if actor.program_id is not None:
        stmt = stmt.where(line.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(line.partner_id == actor.partner_id)
    if program_id:
        stmt = stmt.where(line.program_id == program_id)
    if status:
        stmt = stmt.where(line.status == status)
    return paginate(session, stmt, line.id, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class TieOutRow:
    label: str
    total: int
    count: int
    unit: str  # what count counts: payouts, rows or lines
    ok: bool


@dataclass(frozen=True)
class TieOut:
    currency: str
    rows: list[TieOutRow]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.rows)


def batch_payouts(session: Session, batch_id: str) -> list[tuple[Payout, str]]:
    return [
        (payout, name)
        for payout, name in session.execute(
            select(Payout, Partner.name)
            .join(Partner, Partner.id == Payout.partner_id)
            .where(Payout.batch_id == batch_id)
            .order_by(Partner.name, Payout.id)
        )
    ]


def tie_out(session: Session, batch: PayoutBatch) -> TieOut:
    """Batch header = sum of its payouts = export file control sum = its commission lines."""
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == batch.id)))
    payout_sum = sum(p.amount for p in payouts)
    line_count_expected = sum(p.line_count for p in payouts)
    file_sum, file_rows = control_sum_of(export_csv(session, batch).content)
    line_sum, line_count = session.execute(
        select(func.coalesce(func.sum(CommissionLine.amount), 0), func.count()).where(
            CommissionLine.payout_id.in_([p.id for p in payouts])
        )
    ).one()
    line_sum, line_count = int(line_sum), int(line_count)
    # A failed or returned payout's lines went back to approved (payouts/reconcile.py); it still counts the
    # lines it carried, kept in payout_line_releases.
    released_sum, released_count = session.execute(
        select(func.coalesce(func.sum(PayoutLineRelease.amount), 0), func.count()).where(
            PayoutLineRelease.payout_id.in_(
                [p.id for p in payouts if p.status in (PayoutStatus.FAILED.value, PayoutStatus.RETURNED.value)]
            )
        )
    ).one()
    line_sum, line_count = line_sum + int(released_sum), line_count + int(released_count)
    total, count = batch.total, batch.payout_count
    return TieOut(
        batch.currency,
        [
            TieOutRow("Batch total", total, count, "payouts", True),
            TieOutRow(
                "Sum of payouts", payout_sum, len(payouts), "payouts", (payout_sum, len(payouts)) == (total, count)
            ),
            TieOutRow("Export file control sum", file_sum, file_rows, "rows", (file_sum, file_rows) == (total, count)),
            TieOutRow(
                "Commission lines",
                line_sum,
                line_count,
                "lines",
                line_sum == total and line_count == line_count_expected,
            ),
        ],
    )
