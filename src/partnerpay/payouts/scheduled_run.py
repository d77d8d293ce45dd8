"""Scheduled payout runs: the periodic due-check (jobs/scheduler.py) and the `payouts.scheduled_run` job.

The due-check finds programs whose next_run_at has come, returns one slot per program and run time, and
moves next_run_at on to the first run after now (a worker that was down for a week makes one catch-up run,
not seven). The job makes the run as of its slot's time, records the slot on the batches (scheduled_for),
and emails finance (staff with the finance or owner role) that batches wait for approval.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import ALL_SCOPES, Actor, ActorType
from partnerpay.auth.models import Role, StaffUser
from partnerpay.jobs.registry import JobContext, PermanentJobError
from partnerpay.jobs.scheduler import Due
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import enqueue_email
from partnerpay.payouts.models import PayoutSettings
from partnerpay.payouts.run import RunResult, create_payout_run
from partnerpay.payouts.schedules import ScheduleKind, next_run
from partnerpay.payouts.settings import settings_of
from partnerpay.programs.models import Program

SCHEDULED_RUN_JOB = "payouts.scheduled_run"
# The schedule acts on its own: audit rows name it, not a person.
SCHEDULE_ACTOR = Actor(ActorType.SYSTEM, "payout_schedule", ALL_SCOPES, label="payout schedule")


def payout_runs_due(session: Session, now: datetime) -> list[Due]:
    """One slot per program whose scheduled run time has come; next_run_at moves past now."""
    stmt = select(PayoutSettings).where(
        PayoutSettings.schedule != ScheduleKind.MANUAL.value, PayoutSettings.next_run_at <= now
    )
    if session.get_bind().dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)  # another worker is handling that program's slot
    due = []
    for row in session.scalars(stmt):
        slot_at = row.next_run_at
        assert slot_at is not None
        due.append(
            Due(
                slot=f"{row.program_id}@{slot_at.isoformat()}",
                kind=SCHEDULED_RUN_JOB,
                payload={"program_id": row.program_id, "scheduled_for": slot_at.isoformat()},
            )
        )
        row.next_run_at = next_run(settings_of(session, row.program_id).schedule, max(now, slot_at))
    session.flush()
    return due


def _finance_addresses(session: Session) -> list[str]:
    roles = [Role.FINANCE.value, Role.OWNER.value]
    return sorted(set(session.scalars(select(StaffUser.email).where(StaffUser.role.in_(roles)))))


def notify_finance(session: Session, program: Program, result: RunResult, now: datetime) -> int:
    """Email finance that the scheduled run made batches to approve (nothing when it made none)."""
    if not result.batches:
        return 0
    totals = ", ".join(format_money(total, currency) for currency, total in result.totals.items())
    skipped = ", ".join(f"{n} {reason}" for reason, n in result.skipped_by_reason.items()) or "none"
    lines = [
        f"The scheduled payout run of {program.name} made {len(result.payouts)} payout(s): {totals}.",
        *(f"Batch {b.id}: {b.payout_count} payout(s), {format_money(b.total, b.currency)}" for b in result.batches),
        f"Skipped: {skipped}.",
        "",
        "The batches are drafts: approve them in the console (Payouts) before they are sent.",
    ]
    addresses = _finance_addresses(session)
    for to in addresses:
        enqueue_email(session, to=to, subject=f"Payout batch to approve ({program.name})", text="\n".join(lines),
                      now=now)  # fmt: skip
    return len(addresses)


def scheduled_run_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Make the scheduled run of one program as of its slot time, then ask finance to approve."""
    program_id = payload.get("program_id")
    raw = payload.get("scheduled_for")
    if not isinstance(program_id, str) or not isinstance(raw, str):
        raise PermanentJobError(f"payload needs program_id and scheduled_for strings, got {payload!r}")
    try:
        scheduled_for = datetime.fromisoformat(raw)
    except ValueError:
        raise PermanentJobError(f"scheduled_for {raw!r} is not an ISO 8601 time") from None
    program = session.get(Program, program_id)
    if program is None:
        raise PermanentJobError(f"program {program_id} does not exist")
    # As of the slot: a job that ran late pays what was payable at the scheduled time, no more.
    result = create_payout_run(
        session,
        actor=SCHEDULE_ACTOR,
        program_id=program.id,
        now=context.now,
        as_of=min(scheduled_for, context.now),
        scheduled_for=scheduled_for,
    )
    notify_finance(session, program, result, context.now)
