"""Periodic tasks: a small registry of due-checks the worker loop runs, each enqueueing outbox jobs once per slot.

A task is a name, a due-check and how often to ask it. The due-check looks at the database and returns the
slots that are due now (a slot is one occurrence: "program X's payout run of 1 Feb 09:00"), each with the
outbox job to enqueue. The scheduler claims each slot by inserting (task, slot) into scheduler_slots in the
same transaction as the job: a second worker, or this one restarted after a crash, that finds the same slot
due inserts nothing and enqueues nothing. The work itself runs as an ordinary outbox job (retries, dead
jobs and the console's "retry" included).

Adding a task (e.g. approvals.sweep):

    def sweep_due(session: Session, now: datetime) -> list[Due]:
        day = now.date().isoformat()
        return [Due(slot=day, kind="approvals.sweep", payload={"day": day})]

and one line in `default_tasks()`: `PeriodicTask("approvals.sweep", sweep_due, every_seconds=300)`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.db.engine import unit_of_work
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.scheduler_models import SchedulerSlot

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Due:
    """One due occurrence of a task: its slot (unique within the task) and the job that does the work."""

    slot: str
    kind: str
    payload: dict[str, Any]


DueCheck = Callable[[Session, datetime], list[Due]]


@dataclass(frozen=True, slots=True)
class PeriodicTask:
    name: str
    due: DueCheck
    every_seconds: float = 60.0  # how often the worker asks; slots make asking twice harmless


def claim_slot(session: Session, task: str, slot: str, now: datetime) -> bool:
    """Insert (task, slot) unless it exists; True if this call inserted it (and so must enqueue the job)."""
    table = SchedulerSlot.__table__
    dialect = session.get_bind().dialect.name
    make = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        make(table)  # type: ignore[arg-type]
        .values(task=task, slot=slot, job_id="", created_at=now)
        .on_conflict_do_nothing(index_elements=["task", "slot"])
        .returning(table.c.slot)
    )
    return session.execute(stmt).first() is not None


@dataclass
class Scheduler:
    tasks: list[PeriodicTask] = field(default_factory=list)
    _last_asked: dict[str, float] = field(default_factory=dict)

    def add(self, task: PeriodicTask) -> None:
        if any(t.name == task.name for t in self.tasks):
            raise ValueError(f"periodic task {task.name!r} is already registered")
        self.tasks.append(task)

    def run_due(
        self, session_factory: sessionmaker[Session], *, now: datetime, force: bool = False
    ) -> list[tuple[str, str, str]]:
        """Ask each task whose interval has passed (every task with `force`); returns (task, slot, job id) enqueued.

        One transaction per task: a failing due-check is logged and leaves the other tasks running.
        """
        enqueued: list[tuple[str, str, str]] = []
        clock = time.monotonic()
        for task in self.tasks:
            last = self._last_asked.get(task.name)
            if not force and last is not None and clock - last < task.every_seconds:
                continue
            self._last_asked[task.name] = clock
            try:
                with unit_of_work(session_factory) as session:
                    enqueued += enqueue_due(session, task.name, task.due(session, now), now=now)
            except Exception:
                log.exception("periodic task failed; will ask again", task=task.name)
        return enqueued


def enqueue_due(session: Session, task: str, due: Iterable[Due], *, now: datetime) -> list[tuple[str, str, str]]:
    """Claim each slot and enqueue its job, in the caller's transaction; slots already claimed are skipped."""
    out = []
    for item in due:
        if not claim_slot(session, task, item.slot, now):
            continue
        job_id = enqueue(session, item.kind, [item.payload], now=now)[0]
        session.execute(
            update(SchedulerSlot)
            .where(SchedulerSlot.task == task, SchedulerSlot.slot == item.slot)
            .values(job_id=job_id)
            .execution_options(synchronize_session=False)
        )
        log.info("periodic job enqueued", task=task, slot=item.slot, job_id=job_id, kind=item.kind)
        out.append((task, item.slot, job_id))
    return out


def default_tasks() -> list[PeriodicTask]:
    """Every periodic task partnerpay has (imported here, lazily: the domains import the jobs package)."""
    from partnerpay.alerts.raising import evaluate_due
    from partnerpay.approvals.auto import sweep_due
    from partnerpay.calendars.google_sync import syncs_due
    from partnerpay.jobs.retention import retention_due
    from partnerpay.messaging.attachment_prune import prune_due
    from partnerpay.messaging.line_notices import hold_notices_due
    from partnerpay.payouts.scheduled_run import payout_runs_due

    return [
        PeriodicTask("payouts.schedule", payout_runs_due, every_seconds=60),
        PeriodicTask("approvals.sweep", sweep_due, every_seconds=300),  # hourly slot (approvals/auto.py)
        PeriodicTask("messaging.hold_notices", hold_notices_due, every_seconds=60),  # 5-minute slots (messaging)
        PeriodicTask("alerts.evaluate", evaluate_due, every_seconds=300),  # hourly slot (alerts/raising.py)
        PeriodicTask("google_calendar.sync", syncs_due, every_seconds=300),  # quarter-hour slots (calendars)
        PeriodicTask("reports.rollup", _reports_jobs().rollup_due, every_seconds=60),  # 5-minute slots (reports)
        PeriodicTask("reports.weekly", _reports_weekly().weekly_due, every_seconds=300),  # a slot per program-week
        PeriodicTask("attachments.prune", prune_due, every_seconds=3600),  # a slot per day (messaging)
        PeriodicTask("outbox.retention", retention_due, every_seconds=3600),  # a slot per day (jobs/retention.py)
    ]


def _reports_jobs() -> Any:
    from partnerpay.reports import jobs  # lazily, as above: reports import the jobs package

    return jobs


def _reports_weekly() -> Any:
    from partnerpay.reports import weekly

    return weekly


def default_scheduler() -> Scheduler:
    return Scheduler(default_tasks())
