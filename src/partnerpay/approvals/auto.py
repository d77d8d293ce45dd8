"""The approvals sweep: approve what a program's policy lets the system approve, and remind approvers of
overdue lines (approvals/sla.py). Run by the job `approvals.sweep`, the CLI and the periodic scheduler."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, aliased

from partnerpay.approvals.policy import Policy, policies_for
from partnerpay.approvals.sla import Reminder, remind_overdue
from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions import decisions
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.jobs.registry import JobContext, PermanentJobError
from partnerpay.jobs.scheduler import Due
from partnerpay.kit.money import format_money
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs.models import Program
from partnerpay.tracking.attribution_models import FlagStatus, FraudFlag

SWEEP_JOB = "approvals.sweep"
# One sweep approves at most this many lines per program (one all-or-none approval); the next sweep goes on.
AUTO_BATCH = 5000


@dataclass
class SweepResult:
    auto_approved: dict[str, list[str]] = field(default_factory=dict)  # program id → line ids
    reminders: list[Reminder] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "auto_approved": {p: len(ids) for p, ids in self.auto_approved.items()},
            "reminders": [
                {"program_id": r.program_id, "lines": r.lines, "recipients": r.recipients} for r in self.reminders
            ],
        }


def auto_approvable(session: Session, policy: Policy, now: datetime) -> list[str]:
    """Pending lines the policy approves without a person: |amount| below the limit in the program currency,
    past their hold, of an active partner with no open fraud flag; never a manual adjustment (a person
    decided that money, so a person approves it) and never a clawback of a line that is still pending."""
    if policy.auto_approve_below is None:
        return []
    line, original = CommissionLine, aliased(CommissionLine)
    limit = policy.auto_approve_below
    flagged = exists().where(FraudFlag.partner_id == line.partner_id, FraudFlag.status == FlagStatus.OPEN.value)
    pending_original = exists().where(original.id == line.reverses_line_id, original.status == LineStatus.PENDING.value)
    stmt = (
        select(line.id)
        .join(Partner, Partner.id == line.partner_id)
        .where(
            line.program_id == policy.program_id,
            line.status == LineStatus.PENDING.value,
            line.currency == policy.currency,
            line.amount < limit,
            line.amount > -limit,
            line.hold_until <= now,
            line.kind != "adjustment",
            Partner.status == PartnerStatus.ACTIVE.value,
            ~flagged,
            ~pending_original,
        )
        .order_by(line.id)
        .limit(AUTO_BATCH)
    )
    return list(session.scalars(stmt))


def _auto_approve(session: Session, policy: Policy, now: datetime) -> list[str]:
    ids = auto_approvable(session, policy, now)
    if not ids:
        return []
    limit = format_money(policy.auto_approve_below or 0, policy.currency)
    rule = (
        f"auto-approved by the approval policy: |amount| below {limit}, past hold, "
        "partner active with no open fraud flag"
    )
    decisions.approve(session, actor=SYSTEM, ids=ids, now=now, reason=rule)
    return ids


def sweep(session: Session, now: datetime, *, program_ids: Sequence[str] | None = None) -> SweepResult:
    """Auto-approve, then remind of what is overdue, for every program (or those named). Idempotent within a
    day: approved lines are no longer pending, and reminders are once per line per day."""
    ids = list(program_ids) if program_ids else list(session.scalars(select(Program.id).order_by(Program.id)))
    policies = policies_for(session, ids)
    result = SweepResult()
    for program_id in sorted(policies):
        approved = _auto_approve(session, policies[program_id], now)
        if approved:
            result.auto_approved[program_id] = approved
    result.reminders = remind_overdue(session, policies, now)
    return result


def sweep_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Job `approvals.sweep` {program_id?}: a sweep in the worker's transaction (reminders go out after it)."""
    program_id = payload.get("program_id")
    if program_id is not None and not isinstance(program_id, str):
        raise PermanentJobError(f"payload field 'program_id' must be a string or absent, got {program_id!r}")
    if program_id is not None and session.scalar(select(func.count()).where(Program.id == program_id)) == 0:
        raise PermanentJobError(f"program {program_id} does not exist")
    sweep(session, context.now, program_ids=[program_id] if program_id else None)


def sweep_due(session: Session, now: datetime) -> list[Due]:
    """The periodic scheduler's due-check (jobs/scheduler.py): one sweep per hour; reminders stay once a day."""
    return [Due(slot=f"{now:%Y-%m-%dT%H}", kind=SWEEP_JOB, payload={})]
