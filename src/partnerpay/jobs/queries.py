"""Reading the outbox for the console: failed (dead) jobs, newest first."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.jobs.models import JobStatus, OutboxJob

FIRST_LINE_CHARS = 300


def first_line(error: str | None) -> str:
    """The `Type: message` line the worker puts first in last_error, cut to fit a table cell."""
    line = next((part.strip() for part in (error or "").splitlines() if part.strip()), "")
    return line if len(line) <= FIRST_LINE_CHARS else line[: FIRST_LINE_CHARS - 1] + "…"


@dataclass(frozen=True, slots=True)
class DeadJob:
    """A job that failed for good, as the console lists it."""

    id: str
    kind: str
    attempts: int
    max_attempts: int
    summary: str  # first line of last_error
    error: str  # the whole last_error, traceback included
    created_at: datetime
    finished_at: datetime | None


def dead_jobs(session: Session, limit: int = 200) -> list[DeadJob]:
    """Up to `limit` dead jobs, the most recently failed first."""
    # A dead job always has finished_at; the fallback keeps a hand-made row from sorting oddly.
    failed_at = func.coalesce(OutboxJob.finished_at, OutboxJob.created_at)
    stmt = select(OutboxJob).where(OutboxJob.status == JobStatus.DEAD.value)
    stmt = stmt.order_by(failed_at.desc(), OutboxJob.id.desc()).limit(limit)
    return [
        DeadJob(
            id=job.id,
            kind=job.kind,
            attempts=job.attempts,
            max_attempts=job.max_attempts,
            summary=first_line(job.last_error) or "no error was recorded",
            error=job.last_error or "",
            created_at=job.created_at,
            finished_at=job.finished_at,
        )
        for job in session.scalars(stmt)
    ]


def dead_job_ids(session: Session) -> list[str]:
    """The id of every dead job (for "retry all")."""
    return list(session.scalars(select(OutboxJob.id).where(OutboxJob.status == JobStatus.DEAD.value)).all())
