"""Retention of finished outbox jobs: a done job's payload is cleared once it is older than the retention
period (PARTNERPAY_OUTBOX_RETENTION_DAYS, 30 by default). Weekly report emails carry their PNG charts in the
payload, so without this the outbox keeps every chart ever mailed.

The payload is cleared, not the row deleted. Nothing dedupes against old job rows (a done job never runs
again: only dead ones are requeued, and handlers dedupe on their own rows, e.g. notifications.job_id), but
job ids are referred to from elsewhere: the audit log's `job.requeue` rows name the job they retried,
scheduler_slots and notifications keep the job that made them, and the API answered 202 with a job id (a
calendar sync, a HubSpot push). A cleared row still says what ran, when, after how many attempts, in a few
hundred bytes. Dead and pending jobs keep their payload: a person may retry them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Text, cast, update
from sqlalchemy.orm import Session

from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.registry import Handler, JobContext
from partnerpay.jobs.scheduler import Due

log = structlog.get_logger(__name__)

RETENTION_JOB = "outbox.retention"
CLEARED: dict[str, Any] = {}  # what a cleared payload holds; jobs with nothing to say ({}) are left as they are


def clear_done_payloads(session: Session, *, now: datetime, retention_days: int) -> int:
    """Clear the payload of every done job that finished more than `retention_days` ago, in one UPDATE;
    returns how many rows changed. Already cleared rows are not written again. The caller commits."""
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    cutoff = now - timedelta(days=retention_days)
    stmt = (
        update(OutboxJob)
        .where(
            OutboxJob.status == JobStatus.DONE.value,
            # A done job ran after it was due, so run_after < cutoff holds for every row wanted: it adds
            # nothing to the answer but lets both databases walk the (status, run_after) claim index.
            OutboxJob.run_after < cutoff,
            OutboxJob.finished_at < cutoff,
            # As text: PostgreSQL's json type has no equality operator.
            cast(OutboxJob.payload, Text) != "{}",
        )
        .values(payload=CLEARED)
        .execution_options(synchronize_session=False)
    )
    cleared = int(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
    log.info("outbox payloads cleared", jobs=cleared, retention_days=retention_days, cutoff=cutoff.isoformat())
    return cleared


def retention_due(session: Session, now: datetime) -> list[Due]:
    """The scheduler's due-check: once a day."""
    return [Due(slot=f"{now:%Y-%m-%d}", kind=RETENTION_JOB, payload={})]


def retention_handler(retention_days: int) -> Handler:
    """Job `outbox.retention` {}: the period comes from the worker's settings."""

    def run(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        clear_done_payloads(session, now=context.now, retention_days=retention_days)

    return run
