"""The outbox worker: claim due jobs under a lease, then run each one together with its "done" mark.

A job's life: pending → running (claimed, leased to one worker) → done, or back to pending with a
backoff after a failure, or dead once its attempts are used up (dead jobs stay, visible, until a
person requeues them). A lease that runs out (the worker crashed) lets another worker reclaim the
job; the lost run counts as an attempt, so a job that kills its worker cannot loop forever.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import traceback
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.db.engine import is_postgres, unit_of_work
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.registry import External, Handler, JobContext, PermanentJobError, Registry
from partnerpay.jobs.scheduler import Scheduler, default_scheduler
from partnerpay.kit.clock import Clock
from partnerpay.kit.state import StateMachine

log = structlog.get_logger(__name__)

BACKOFF_BASE_SECONDS = 5
BACKOFF_CAP_SECONDS = 3600
MAX_ERROR_CHARS = 4000
DEFAULT_LEASE_SECONDS = 300
DEFAULT_BATCH_SIZE = 20

PENDING, RUNNING = JobStatus.PENDING.value, JobStatus.RUNNING.value
DONE, DEAD = JobStatus.DONE.value, JobStatus.DEAD.value

# The worker's own moves are compare-and-set updates on (status, lease) below; this machine
# documents them and guards the one move a person makes (dead → pending).
JOB_STATES = StateMachine(
    "job",
    {
        JobStatus.PENDING: {JobStatus.RUNNING},
        JobStatus.RUNNING: {JobStatus.DONE, JobStatus.PENDING, JobStatus.DEAD, JobStatus.RUNNING},
        JobStatus.DEAD: {JobStatus.PENDING},
    },
)


class JobOutcome(StrEnum):
    DONE = "done"
    RETRY = "retry"  # failed, back to pending after a backoff
    DEAD = "dead"  # failed for good: attempts used up or a permanent error
    LOST = "lost"  # our lease was gone (another worker reclaimed the job); nothing was written


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job leased to one worker; `attempts` counts the failed or lost runs before this one."""

    id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    locked_by: str
    locked_until: datetime


def backoff(attempts: int) -> timedelta:
    """Delay before the next try after `attempts` failures: 10 s, 20 s, 40 s, … capped at one hour."""
    exponent = min(max(attempts, 0), 20)
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2**exponent, BACKOFF_CAP_SECONDS))


def describe_error(exc: BaseException) -> str:
    """`Type: message` first (what the console shows), then the traceback, cut to MAX_ERROR_CHARS."""
    summary = "".join(traceback.format_exception_only(exc)).strip()
    detail = "".join(traceback.format_exception(exc)).strip()
    text = f"{summary}\n\n{detail}"
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 12] + "\n[truncated]"
    return text


def default_worker_id() -> str:
    """host:pid:random, so two workers never share a lease even on one machine."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(3)}"


def _claimable(now: datetime) -> ColumnElement[bool]:
    return or_(
        and_(OutboxJob.status == PENDING, OutboxJob.run_after <= now),
        and_(OutboxJob.status == RUNNING, OutboxJob.locked_until < now),
    )


_CLAIM_COLUMNS = (
    OutboxJob.id,
    OutboxJob.kind,
    OutboxJob.payload,
    OutboxJob.status,
    OutboxJob.attempts,
    OutboxJob.max_attempts,
    OutboxJob.locked_by,
    OutboxJob.locked_until,
)


def _held_by(job: ClaimedJob) -> ColumnElement[bool]:
    """The row is still running under exactly this lease."""
    return and_(
        OutboxJob.id == job.id,
        OutboxJob.status == RUNNING,
        OutboxJob.locked_by == job.locked_by,
        OutboxJob.locked_until == job.locked_until,
    )


def claim(
    session_factory: sessionmaker[Session], *, worker_id: str, now: datetime, limit: int, lease_seconds: int
) -> list[ClaimedJob]:
    """Lease up to `limit` due jobs (pending and due, or running with an expired lease) to `worker_id`.

    No two concurrent callers get the same job: PostgreSQL skips rows another claim has locked,
    SQLite serialises the whole claim behind BEGIN IMMEDIATE. Commits before returning.
    """
    if limit <= 0:
        return []
    until = now + timedelta(seconds=lease_seconds)
    with unit_of_work(session_factory) as session:
        stmt = select(*_CLAIM_COLUMNS).where(_claimable(now)).order_by(OutboxJob.run_after, OutboxJob.id)
        stmt = stmt.limit(limit)
        if is_postgres(session):
            stmt = stmt.with_for_update(skip_locked=True)
        rows = session.execute(stmt).all()
        lease = {"status": RUNNING, "locked_by": worker_id, "locked_until": until}

        fresh = [r.id for r in rows if r.status == PENDING]
        moved: set[str] = set()
        if fresh:
            # Compare-and-set even though the rows are locked: a claim never trusts its own read.
            cas = update(OutboxJob).where(
                OutboxJob.id.in_(fresh), OutboxJob.status == PENDING, OutboxJob.run_after <= now
            )
            moved.update(session.scalars(cas.values(**lease).returning(OutboxJob.id)).all())

        attempts: dict[str, int] = {}
        for row in rows:
            if row.status == RUNNING and _reclaim(session, row, now=now, lease=lease):
                moved.add(row.id)
                attempts[row.id] = row.attempts + 1

    return [
        ClaimedJob(
            id=r.id,
            kind=r.kind,
            payload=dict(r.payload or {}),
            attempts=attempts.get(r.id, r.attempts),
            max_attempts=r.max_attempts,
            locked_by=worker_id,
            locked_until=until,
        )
        for r in rows
        if r.id in moved
    ]


def _reclaim(session: Session, row: Any, *, now: datetime, lease: dict[str, Any]) -> bool:
    """Take over a job whose lease ran out; the lost run counts, and may be the last one allowed."""
    attempts = row.attempts + 1
    error = f"lease of worker {row.locked_by} expired at {row.locked_until.isoformat()} before the job finished"
    cas = update(OutboxJob).where(OutboxJob.id == row.id, OutboxJob.status == RUNNING, OutboxJob.locked_until < now)
    if attempts >= row.max_attempts:
        dead = {"status": DEAD, "locked_by": None, "locked_until": None, "finished_at": now}
        session.execute(cas.values(attempts=attempts, last_error=error, **dead))
        log.error("outbox job dead: lease expired", job_id=row.id, kind=row.kind, attempts=attempts)
        return False
    taken = session.scalars(cas.values(attempts=attempts, last_error=error, **lease).returning(OutboxJob.id)).all()
    if taken:
        log.warning("outbox job reclaimed after lease expiry", job_id=row.id, lost_worker=row.locked_by)
    return bool(taken)


def run_one(
    session_factory: sessionmaker[Session],
    registry: Registry,
    job: ClaimedJob,
    *,
    clock: Clock,
) -> JobOutcome:
    """Run one claimed job: its handler's writes and its "done" mark commit together, or neither does.

    On failure the handler's writes are rolled back and, in a new transaction, the job is set back
    to pending with a backoff, or to dead when its attempts are used up or the error is permanent.
    """
    try:
        handler = registry.get(job.kind)
    except PermanentJobError as exc:
        return _record_failure(session_factory, job, exc, now=clock.now(), permanent=True)

    now = clock.now()
    context = JobContext(job_id=job.id, attempt=job.attempts + 1, now=now)
    run: Handler | None = handler
    if isinstance(handler, External):
        # The side effect first, outside any transaction (see External); then done and its writes together.
        if not _still_held(session_factory, job):
            log.warning("outbox job lease lost before run", job_id=job.id, kind=job.kind)
            return JobOutcome.LOST
        try:
            handler.effect(dict(job.payload), context)
        except Exception as exc:
            permanent = isinstance(exc, PermanentJobError)
            return _record_failure(session_factory, job, exc, now=clock.now(), permanent=permanent)
        run = handler.record
    session = session_factory()
    try:
        # Mark done first: on PostgreSQL this row lock keeps the job from being reclaimed while
        # the handler runs, and if the lease is already gone we run nothing.
        done = update(OutboxJob).where(_held_by(job)).values(status=DONE, finished_at=now, locked_until=None)
        if not session.scalars(done.returning(OutboxJob.id)).all():
            session.rollback()
            log.warning("outbox job lease lost before run", job_id=job.id, kind=job.kind)
            return JobOutcome.LOST
        if run is not None:
            run(session, dict(job.payload), context)
        session.commit()
    except Exception as exc:
        session.rollback()
        permanent = isinstance(exc, PermanentJobError)
        return _record_failure(session_factory, job, exc, now=clock.now(), permanent=permanent)
    finally:
        session.close()
    return JobOutcome.DONE


def _still_held(session_factory: sessionmaker[Session], job: ClaimedJob) -> bool:
    with session_factory() as session:
        return session.scalar(select(OutboxJob.id).where(_held_by(job))) is not None


def _record_failure(
    session_factory: sessionmaker[Session],
    job: ClaimedJob,
    exc: BaseException,
    *,
    now: datetime,
    permanent: bool,
) -> JobOutcome:
    attempts = job.attempts + 1
    dead = permanent or attempts >= job.max_attempts
    values: dict[str, Any] = {"attempts": attempts, "last_error": describe_error(exc)}
    values.update(locked_by=None, locked_until=None)
    if dead:
        values.update(status=DEAD, finished_at=now)
    else:
        values.update(status=PENDING, run_after=now + backoff(attempts))
    with unit_of_work(session_factory) as session:
        stmt = update(OutboxJob).where(_held_by(job)).values(**values).returning(OutboxJob.id)
        recorded = bool(session.scalars(stmt).all())
    if not recorded:
        return JobOutcome.LOST
    event = "outbox job dead" if dead else "outbox job failed; will retry"
    (log.error if dead else log.warning)(
        event, job_id=job.id, kind=job.kind, attempts=attempts, error=f"{type(exc).__name__}: {exc}"[:300]
    )
    return JobOutcome.DEAD if dead else JobOutcome.RETRY


def release(session_factory: sessionmaker[Session], jobs: list[ClaimedJob]) -> int:
    """Hand claimed but unstarted jobs back (pending, no attempt counted), e.g. on shutdown."""
    released = 0
    with unit_of_work(session_factory) as session:
        for job in jobs:
            stmt = update(OutboxJob).where(_held_by(job)).values(status=PENDING, locked_by=None, locked_until=None)
            released += len(session.scalars(stmt.returning(OutboxJob.id)).all())
    return released


@dataclass(frozen=True, slots=True)
class WorkerThread:
    """A worker running in a daemon thread (the in-process worker of `partnerpay serve` on SQLite)."""

    thread: threading.Thread
    stop_event: threading.Event

    def stop(self, timeout: float | None = 10.0) -> None:
        self.stop_event.set()
        self.thread.join(timeout)


class Worker:
    """Claims and runs outbox jobs; one per process or thread, any number side by side."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        registry: Registry,
        *,
        clock: Clock,
        worker_id: str | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
        lease_seconds: int = DEFAULT_LEASE_SECONDS,
        scheduler: Scheduler | None = None,
    ) -> None:
        if batch_size < 1 or lease_seconds < 1:
            raise ValueError("batch_size and lease_seconds must be positive")
        self.session_factory = session_factory
        self.registry = registry
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        self.batch_size = batch_size
        self.lease_seconds = lease_seconds
        # Periodic tasks (jobs/scheduler.py) asked by run_forever; None: the default tasks, built on first use.
        self.scheduler = scheduler

    def run_pending(self, max_jobs: int | None = None) -> int:
        """Run what is due now, batch by batch, until nothing is or `max_jobs` ran; returns how many ran."""
        ran = 0
        while max_jobs is None or ran < max_jobs:
            want = self.batch_size if max_jobs is None else min(self.batch_size, max_jobs - ran)
            jobs = claim(
                self.session_factory,
                worker_id=self.worker_id,
                now=self.clock.now(),
                limit=want,
                lease_seconds=self.lease_seconds,
            )
            if not jobs:
                break
            for index, job in enumerate(jobs):
                try:
                    run_one(self.session_factory, self.registry, job, clock=self.clock)
                except BaseException:
                    # Shutdown or a lost database: give back what we hold instead of waiting out leases.
                    self._release_quietly(jobs[index:])
                    raise
            ran += len(jobs)
        return ran

    def run_forever(self, stop_event: threading.Event, poll_seconds: float = 1.0) -> None:
        """Run jobs until `stop_event` is set, sleeping `poll_seconds` whenever nothing is due."""
        log.info("outbox worker started", worker_id=self.worker_id)
        while not stop_event.is_set():
            try:
                self.run_periodic()
                ran = self.run_pending(max_jobs=self.batch_size)
            except Exception:
                log.exception("outbox worker loop failed; will retry", worker_id=self.worker_id)
                ran = 0
            if ran == 0:
                stop_event.wait(poll_seconds)
        log.info("outbox worker stopped", worker_id=self.worker_id)

    def run_periodic(self, *, force: bool = False) -> int:
        """Enqueue the jobs of periodic tasks that are due (each slot once, whatever other workers do)."""
        if self.scheduler is None:
            self.scheduler = default_scheduler()
        return len(self.scheduler.run_due(self.session_factory, now=self.clock.now(), force=force))

    def start_in_thread(self, *, poll_seconds: float = 1.0) -> WorkerThread:
        """Start run_forever in a daemon thread; call .stop() on the result to end it."""
        stop_event = threading.Event()
        thread = threading.Thread(
            target=self.run_forever,
            args=(stop_event, poll_seconds),
            name=f"outbox-worker-{self.worker_id}",
            daemon=True,
        )
        thread.start()
        return WorkerThread(thread=thread, stop_event=stop_event)

    def _release_quietly(self, jobs: list[ClaimedJob]) -> None:
        try:
            release(self.session_factory, jobs)
        except Exception:
            log.exception("could not release claimed jobs; their leases will expire", worker_id=self.worker_id)


def requeue_dead(session: Session, job_ids: list[str], *, now: datetime) -> int:
    """Give dead jobs a fresh set of attempts, due now; refuses (changing nothing) if any is not dead.

    last_error is kept so the console still shows why the job died. The caller commits.
    """
    ids = sorted(set(job_ids))
    return JOB_STATES.transition(
        session,
        OutboxJob,
        ids,
        src=JobStatus.DEAD,
        dst=JobStatus.PENDING,
        values={"attempts": 0, "run_after": now, "locked_by": None, "locked_until": None, "finished_at": None},
    )


@dataclass(frozen=True, slots=True)
class QueueStats:
    """The outbox at a glance for the console."""

    counts: dict[str, int]  # every status, zero included
    due: int  # pending jobs whose run_after has passed
    oldest_pending_age: timedelta | None  # how long the longest-waiting due job is overdue; None if none


def queue_stats(session: Session, *, now: datetime) -> QueueStats:
    """Counts by status, jobs due now, and how far behind the oldest due job is."""
    counts = {status.value: 0 for status in JobStatus}
    by_status = select(OutboxJob.status, func.count()).group_by(OutboxJob.status)
    for status, count in session.execute(by_status).all():
        counts[status] = int(count)
    due_row = session.execute(
        select(func.count(), func.min(OutboxJob.run_after)).where(
            OutboxJob.status == PENDING, OutboxJob.run_after <= now
        )
    ).one()
    oldest: datetime | None = due_row[1]
    return QueueStats(
        counts=counts,
        due=int(due_row[0]),
        oldest_pending_age=None if oldest is None else now - oldest,
    )
