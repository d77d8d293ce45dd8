"""Outbox jobs and periodic due-checks of the reports: the rollup every five minutes, the weekly report."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from partnerpay.jobs.registry import JobContext
from partnerpay.jobs.scheduler import Due
from partnerpay.reports.rollups import roll_up

ROLLUP_JOB = "reports.rollup"
ROLLUP_MINUTES = 5


def rollup_due(session: Session, now: datetime) -> list[Due]:
    """One rollup per five-minute slot (the slot keeps two workers from running it twice)."""
    slot = now.replace(minute=now.minute - now.minute % ROLLUP_MINUTES, second=0, microsecond=0)
    return [Due(slot=slot.isoformat(), kind=ROLLUP_JOB, payload={})]


def rollup_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Re-roll the days that changed since the last run (reports/rollups.py), in the job's transaction."""
    roll_up(session, now=context.now)
