"""The periodic scheduler's memory: one row per (task, slot) it enqueued, so no slot is enqueued twice."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class SchedulerSlot(Base):
    """A slot ("payouts.scheduled_run" for program X at 2026-02-01T09:00Z) claimed by the worker that enqueued it.

    The primary key is the dedupe: two workers, or one restarted after a crash, that find the same slot due
    both try to insert it and only one succeeds, so only one job is ever enqueued for it.
    """

    __tablename__ = "scheduler_slots"

    task: Mapped[str] = mapped_column(String(64), primary_key=True)
    slot: Mapped[str] = mapped_column(String(200), primary_key=True)
    job_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
