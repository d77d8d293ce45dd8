"""Lines chosen by a filter (bulk approve/reject "all matching"), and what the API and console show about a
line's approval: pending since, overdue, first approval."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from partnerpay.approvals.models import LineFirstApproval
from partnerpay.approvals.policy import Policy, policies_for
from partnerpay.approvals.sla import due_at, is_overdue, overdue_clause, pending_since
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.paging import Page, paginate
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program

# The same cap as a list of ids: one request decides at most this many lines (all or none).
MAX_MATCHING = 5000
DECIDABLE = (LineStatus.PENDING.value, LineStatus.APPROVED.value)


@dataclass(frozen=True)
class LineFilter:
    """Which lines "all matching" means. program_id is required: a policy is per program."""

    program_id: str
    partner_id: str | None = None
    status: str = LineStatus.PENDING.value
    overdue: bool | None = None
    awaiting_second_approval: bool | None = None
    min_amount: int | None = None
    max_amount: int | None = None
    kind: str | None = None


def _int_or_none(value: Any, name: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(
            f"filter.{name} must be a whole number of minor units, got {value!r}", field=f"filter.{name}"
        )
    return value


def _bool_or_none(value: Any, name: str) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValidationError(f"filter.{name} must be true, false or null, got {value!r}", field=f"filter.{name}")


def parse_filter(raw: dict[str, Any]) -> LineFilter:
    """A filter as JSON carries it; errors name the field (filter.<name>)."""
    known = set(LineFilter.__dataclass_fields__)
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValidationError(
            f"unknown filter field {unknown[0]!r}; known: {', '.join(sorted(known))}", field=f"filter.{unknown[0]}"
        )
    program_id = raw.get("program_id")
    if not isinstance(program_id, str) or not program_id:
        raise ValidationError(
            "filter.program_id is required: an approval policy is per program", field="filter.program_id"
        )
    status = raw.get("status", LineStatus.PENDING.value)
    if status not in DECIDABLE:
        raise ValidationError(
            f"filter.status must be one of {', '.join(DECIDABLE)}, got {status!r}", field="filter.status"
        )
    for name in ("partner_id", "kind"):
        if raw.get(name) is not None and not isinstance(raw[name], str):
            raise ValidationError(f"filter.{name} must be a string", field=f"filter.{name}")
    flt = LineFilter(
        program_id=program_id,
        partner_id=raw.get("partner_id"),
        status=status,
        overdue=_bool_or_none(raw.get("overdue"), "overdue"),
        awaiting_second_approval=_bool_or_none(raw.get("awaiting_second_approval"), "awaiting_second_approval"),
        min_amount=_int_or_none(raw.get("min_amount"), "min_amount"),
        max_amount=_int_or_none(raw.get("max_amount"), "max_amount"),
        kind=raw.get("kind"),
    )
    if flt.min_amount is not None and flt.max_amount is not None and flt.min_amount > flt.max_amount:
        raise ValidationError("filter.min_amount must not exceed filter.max_amount", field="filter.min_amount")
    return flt


def _conditions(flt: LineFilter, policy: Policy, now: datetime) -> list[ColumnElement[bool]]:
    line = CommissionLine
    conds = [line.program_id == flt.program_id, line.status == flt.status]
    if flt.partner_id:
        conds.append(line.partner_id == flt.partner_id)
    if flt.kind:
        conds.append(line.kind == flt.kind)
    if flt.min_amount is not None:
        conds.append(line.amount >= flt.min_amount)
    if flt.max_amount is not None:
        conds.append(line.amount <= flt.max_amount)
    if flt.overdue is not None:
        clause = overdue_clause([policy], now)
        conds.append(clause if flt.overdue else ~clause)
    if flt.awaiting_second_approval is not None:
        first = select(LineFirstApproval.line_id)
        conds.append(line.id.in_(first) if flt.awaiting_second_approval else line.id.not_in(first))
    return conds


def matching(session: Session, actor: Actor, flt: LineFilter, now: datetime) -> list[str]:
    """Ids of the lines the filter matches, in id order, without clawbacks whose pending original is not among
    them (those follow their original's decision anyway). More than MAX_MATCHING → an error, nothing chosen."""
    program = get_program(session, actor, flt.program_id)
    policy = policies_for(session, [program.id])[program.id]
    rows = session.execute(
        select(CommissionLine.id, CommissionLine.reverses_line_id)
        .where(*_conditions(flt, policy, now))
        .order_by(CommissionLine.id)
        .limit(MAX_MATCHING + 1)
    ).all()
    if len(rows) > MAX_MATCHING:
        raise ValidationError(
            f"more than {MAX_MATCHING} lines match; narrow the filter (partner_id, max_amount, …) and repeat",
            field="filter",
        )
    chosen = {line_id for line_id, _ in rows}
    originals = {orig for _, orig in rows if orig is not None and orig not in chosen}
    pending = set(
        session.scalars(
            select(CommissionLine.id).where(
                CommissionLine.id.in_(originals), CommissionLine.status.in_(DECIDABLE)
            )
        )
    ) if originals else set()  # fmt: skip
    return [line_id for line_id, orig in rows if orig not in pending]


@dataclass(frozen=True)
class MatchSummary:
    count: int
    totals: dict[str, int]  # per currency, never mixed


def summary(session: Session, actor: Actor, flt: LineFilter, now: datetime) -> MatchSummary:
    """Count and total per currency of what "all matching" would decide (the console's confirmation)."""
    program = get_program(session, actor, flt.program_id)
    policy = policies_for(session, [program.id])[program.id]
    rows = session.execute(
        select(CommissionLine.currency, func.count(), func.sum(CommissionLine.amount))
        .where(*_conditions(flt, policy, now))
        .group_by(CommissionLine.currency)
    ).all()
    return MatchSummary(sum(int(n) for _, n, _ in rows), {c: int(t) for c, _, t in rows})


def approval_fields(session: Session, lines: Sequence[CommissionLine], now: datetime) -> dict[str, dict[str, Any]]:
    """Per line: pending_since, due_at, overdue and its first approval (who, when) if it awaits a second one."""
    if not lines:
        return {}
    policies = policies_for(session, {line.program_id for line in lines})
    firsts = {
        f.line_id: f
        for f in session.scalars(
            select(LineFirstApproval).where(LineFirstApproval.line_id.in_([line.id for line in lines]))
        ).all()
    }
    who = {f.approved_by for f in firsts.values()}
    emails: dict[str, str] = {
        user_id: email
        for user_id, email in session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(who)))
    }
    out: dict[str, dict[str, Any]] = {}
    for line in lines:
        policy = policies[line.program_id]
        first = firsts.get(line.id)
        due = due_at(policy, line)
        since = pending_since(line)
        out[line.id] = {
            "pending_since": since.isoformat() if since else None,
            "due_at": due.isoformat() if due else None,
            "overdue": is_overdue(policy, line, now),
            "awaiting_second_approval": first is not None and line.status == LineStatus.PENDING.value,
            "first_approved_by": first.approved_by if first else None,
            "first_approved_at": first.approved_at.isoformat() if first else None,
            "first_approver": emails.get(first.approved_by, first.approved_by) if first else None,
        }
    return out


def overdue_filter(session: Session, actor: Actor, program_id: str | None, now: datetime) -> ColumnElement[bool]:
    """The `overdue=true` condition of a line list, for the programs the actor sees (or the one named)."""
    ids = [program_id] if program_id else list(session.scalars(select(Program.id)))
    visible = [i for i in ids if actor.sees_program(i)]
    return overdue_clause(policies_for(session, visible).values(), now)


def list_by_overdue(
    session: Session,
    actor: Actor,
    *,
    overdue: bool,
    program_id: str | None,
    partner_id: str | None,
    status: str | None,
    cursor: str | None,
    limit: int,
    now: datetime,
    extra: Sequence[ColumnElement[bool]] = (),
) -> Page[CommissionLine]:
    """GET /commissions?overdue=…: the same filters and scoping as list_lines, plus the SLA condition (and any
    `extra` condition, such as the console's "partners I own")."""
    line = CommissionLine
    clause = overdue_filter(session, actor, program_id, now)
    stmt = select(line).where(clause if overdue else ~clause, *extra)
    if actor.program_id is not None:
        stmt = stmt.where(line.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(line.partner_id == actor.partner_id)
    if program_id:
        stmt = stmt.where(line.program_id == program_id)
    if partner_id:
        stmt = stmt.where(line.partner_id == partner_id)
    if status:
        if status not in {s.value for s in LineStatus}:
            raise ValidationError(f"status must be one of {[s.value for s in LineStatus]}", field="status")
        stmt = stmt.where(line.status == status)
    return paginate(session, stmt, line.id, cursor=cursor, limit=limit)


@dataclass(frozen=True)
class OverdueTotal:
    currency: str
    count: int
    total: int


def overdue_totals(
    session: Session,
    actor: Actor,
    program_id: str | None,
    now: datetime,
    *,
    extra: Sequence[ColumnElement[bool]] = (),
) -> list[OverdueTotal]:
    """Count and sum of overdue lines per currency (the console's summary above an overdue list)."""
    line = CommissionLine
    stmt = select(line.currency, func.count(), func.sum(line.amount)).where(
        overdue_filter(session, actor, program_id, now), *extra
    )
    if program_id:
        stmt = stmt.where(line.program_id == program_id)
    if actor.program_id is not None:
        stmt = stmt.where(line.program_id == actor.program_id)
    rows = session.execute(stmt.group_by(line.currency).order_by(line.currency)).all()
    return [OverdueTotal(c, int(n), int(t)) for c, n, t in rows]
