"""The write functions of the outbox that people call: retrying jobs that failed for good."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.db.chunks import in_chunks
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.queries import first_line
from partnerpay.jobs.worker import requeue_dead
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound


def _check_actor(actor: Actor) -> None:
    if not (actor.can("admin") or actor.can("payouts")):
        raise Forbidden("retrying failed background jobs needs the finance or owner role (scope 'payouts' or 'admin')")
    if actor.program_id is not None:
        raise Forbidden("background jobs serve every program; use a staff login or an API key without a program")


def requeue_dead_jobs(session: Session, *, actor: Actor, job_ids: Sequence[str], now: datetime) -> int:
    """Give dead jobs a fresh set of attempts, due now, all or none; one audit row per job. The caller commits."""
    _check_actor(actor)
    ids = sorted(set(job_ids))
    if not ids:
        return 0
    # Locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers) so the audit's
    # "before" is exactly what the requeue replaces.
    rows = {
        row.id: row
        for chunk in in_chunks(ids)
        for row in session.execute(
            select(OutboxJob.id, OutboxJob.status, OutboxJob.attempts, OutboxJob.last_error)
            .where(OutboxJob.id.in_(chunk))
            .with_for_update()
        ).all()
    }
    missing = [i for i in ids if i not in rows]
    if missing:
        raise NotFound(f"background job(s) not found: {', '.join(missing)}", field="job_ids", ids=missing)
    wrong = [rows[i] for i in ids if rows[i].status != JobStatus.DEAD.value]
    if wrong:
        raise InvalidTransition(
            "only failed (dead) jobs can be retried; nothing was retried: "
            + ", ".join(f"{row.id} is {row.status}" for row in wrong),
            field="job_ids",
            ids=[row.id for row in wrong],
        )
    moved = sum(requeue_dead(session, chunk, now=now) for chunk in in_chunks(ids))
    audit.record_many(
        session,
        actor=actor,
        action="job.requeue",
        now=now,
        items=[
            (
                "outbox_job",
                i,
                None,  # a job serves the whole installation, not one program
                {
                    "status": JobStatus.DEAD.value,
                    "attempts": rows[i].attempts,
                    "last_error": first_line(rows[i].last_error),
                },
                {"status": JobStatus.PENDING.value},
            )
            for i in ids
        ],
    )
    return moved
