"""The outbox worker on a real database (SQLite, and PostgreSQL when configured)."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.jobs.handlers import NOTIFY_PARTNER, build_registry, notify_partner
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import JobContext, PermanentJobError, Registry
from partnerpay.jobs.worker import (
    JobOutcome,
    Worker,
    backoff,
    claim,
    queue_stats,
    requeue_dead,
    run_one,
)
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import InvalidTransition
from partnerpay.kit.ids import new_id
from partnerpay.messaging.models import Notification
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program

Factory = sessionmaker[Session]


class Boom(Exception):
    pass


def add_jobs(factory: Factory, kind: str, count: int, *, now: datetime, **options: Any) -> list[str]:
    with factory() as session:
        ids = enqueue(session, kind, [{"n": i} for i in range(count)], now=now, **options)
        session.commit()
    return ids


def load(factory: Factory, job_id: str) -> OutboxJob:
    with factory() as session:
        job = session.get(OutboxJob, job_id)
        assert job is not None
        return job


def add_partner(factory: Factory, now: datetime) -> str:
    program_id, partner_id = new_id("prg"), new_id("ptn")
    with factory() as session:
        session.execute(
            insert(Program).values(
                id=program_id,
                name="Acme partners",
                currency="EUR",
                hold_days=30,
                default_percent_bp=2000,
                cookie_days=30,
                rounding="half_even",
                created_at=now,
            )
        )
        session.execute(
            insert(Partner).values(
                id=partner_id,
                program_id=program_id,
                name="Jane Doe",
                email="jane@example.com",
                referral_code=f"jane-{partner_id[-6:]}",
                status="active",
                created_at=now,
            )
        )
        session.commit()
    return partner_id


def count_notifications(factory: Factory) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(Notification)) or 0)


def counting_registry(kind: str = "test.count", *, fail: bool = False) -> tuple[Registry, Counter[str]]:
    """A registry whose one handler counts its runs per job id (thread-safe) and optionally raises."""
    runs: Counter[str] = Counter()
    lock = threading.Lock()
    registry = Registry()

    @registry.register(kind)
    def handler(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        with lock:
            runs[context.job_id] += 1
        if fail:
            raise Boom(f"provider said no (attempt {context.attempt})")

    return registry, runs


def make_worker(factory: Factory, registry: Registry, clock: FixedClock, **options: Any) -> Worker:
    return Worker(factory, registry, clock=clock, **options)


class TestWorkerRunPending:
    def test_a_job_runs_once_and_is_marked_done(self, session_factory: Factory, clock: FixedClock) -> None:
        registry, runs = counting_registry()
        [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now())
        worker = make_worker(session_factory, registry, clock)

        assert worker.run_pending() == 1
        assert worker.run_pending() == 0

        job = load(session_factory, job_id)
        assert runs == {job_id: 1}
        assert job.status == JobStatus.DONE
        assert job.finished_at == clock.now()
        assert job.attempts == 0
        assert job.last_error is None

    def test_a_failing_job_retries_with_backoff_then_goes_dead_and_stays_visible(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        registry, runs = counting_registry(fail=True)
        [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now(), max_attempts=3)
        worker = make_worker(session_factory, registry, clock)

        assert worker.run_pending() == 1
        job = load(session_factory, job_id)
        assert (job.status, job.attempts) == (JobStatus.PENDING, 1)
        assert job.run_after == clock.now() + backoff(1) == clock.now() + timedelta(seconds=10)
        assert job.locked_by is None
        assert (job.last_error or "").splitlines()[0].endswith("Boom: provider said no (attempt 1)")

        assert worker.run_pending() == 0, "not due again before the backoff has passed"
        clock.advance(backoff(1))
        assert worker.run_pending() == 1
        job = load(session_factory, job_id)
        assert (job.status, job.attempts) == (JobStatus.PENDING, 2)
        assert job.run_after == clock.now() + timedelta(seconds=20)

        clock.advance(backoff(2))
        assert worker.run_pending() == 1
        clock.advance(timedelta(days=1))
        assert worker.run_pending() == 0

        job = load(session_factory, job_id)
        assert (job.status, job.attempts) == (JobStatus.DEAD, 3)
        assert "provider said no (attempt 3)" in (job.last_error or "")
        assert runs[job_id] == 3

    def test_an_unknown_kind_goes_dead_at_once_with_a_clear_error(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        registry, _ = counting_registry()
        [job_id] = add_jobs(session_factory, "no.such.kind", 1, now=clock.now())

        make_worker(session_factory, registry, clock).run_pending()

        job = load(session_factory, job_id)
        assert (job.status, job.attempts) == (JobStatus.DEAD, 1)
        assert "no handler registered for job kind 'no.such.kind'" in (job.last_error or "")

    def test_a_permanent_error_goes_dead_without_retrying(self, session_factory: Factory, clock: FixedClock) -> None:
        registry = Registry()

        @registry.register("test.permanent")
        def handler(session: Session, payload: dict[str, Any], context: JobContext) -> None:
            raise PermanentJobError("payload names a partner that never existed")

        [job_id] = add_jobs(session_factory, "test.permanent", 1, now=clock.now())
        make_worker(session_factory, registry, clock).run_pending()

        job = load(session_factory, job_id)
        assert (job.status, job.attempts, job.max_attempts) == (JobStatus.DEAD, 1, 8)

    def test_max_jobs_bounds_one_call(self, session_factory: Factory, clock: FixedClock) -> None:
        registry, runs = counting_registry()
        add_jobs(session_factory, "test.count", 7, now=clock.now())
        worker = make_worker(session_factory, registry, clock, batch_size=3)

        assert worker.run_pending(max_jobs=5) == 5
        assert worker.run_pending() == 2
        assert sum(runs.values()) == 7


class TestClaim:
    def test_a_job_not_due_yet_is_not_claimed(self, session_factory: Factory, clock: FixedClock) -> None:
        later = clock.now() + timedelta(minutes=5)
        [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now(), run_after=later)

        assert claim(session_factory, worker_id="w1", now=clock.now(), limit=10, lease_seconds=60) == []
        claimed = claim(session_factory, worker_id="w1", now=later, limit=10, lease_seconds=60)

        assert [j.id for j in claimed] == [job_id]
        job = load(session_factory, job_id)
        assert (job.status, job.locked_by) == (JobStatus.RUNNING, "w1")
        assert job.locked_until == later + timedelta(seconds=60)

    def test_a_live_lease_is_not_claimed_by_another_worker(self, session_factory: Factory, clock: FixedClock) -> None:
        add_jobs(session_factory, "test.count", 1, now=clock.now())
        assert len(claim(session_factory, worker_id="w1", now=clock.now(), limit=10, lease_seconds=60)) == 1

        soon = clock.now() + timedelta(seconds=59)
        assert claim(session_factory, worker_id="w2", now=soon, limit=10, lease_seconds=60) == []

    def test_an_expired_lease_is_reclaimed_and_the_lost_run_counts_as_an_attempt(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        registry, runs = counting_registry()
        [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now())
        [crashed] = claim(session_factory, worker_id="w1", now=clock.now(), limit=10, lease_seconds=60)

        clock.advance(timedelta(seconds=61))
        [taken] = claim(session_factory, worker_id="w2", now=clock.now(), limit=10, lease_seconds=60)
        assert (taken.id, taken.attempts, taken.locked_by) == (job_id, 1, "w2")
        assert "lease of worker w1 expired" in (load(session_factory, job_id).last_error or "")

        assert run_one(session_factory, registry, crashed, clock=clock) == JobOutcome.LOST
        assert run_one(session_factory, registry, taken, clock=clock) == JobOutcome.DONE
        assert runs == {job_id: 1}
        assert load(session_factory, job_id).status == JobStatus.DONE

    def test_an_expired_lease_on_the_last_attempt_makes_the_job_dead(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now(), max_attempts=1)
        claim(session_factory, worker_id="w1", now=clock.now(), limit=10, lease_seconds=60)

        clock.advance(timedelta(minutes=5))
        assert claim(session_factory, worker_id="w2", now=clock.now(), limit=10, lease_seconds=60) == []

        job = load(session_factory, job_id)
        assert (job.status, job.attempts, job.locked_by) == (JobStatus.DEAD, 1, None)

    def test_concurrent_claims_never_hand_out_the_same_job(self, session_factory: Factory, clock: FixedClock) -> None:
        ids = add_jobs(session_factory, "test.count", 200, now=clock.now())
        claimed: dict[str, list[str]] = {f"w{i}": [] for i in range(4)}
        start = threading.Barrier(4)

        def claim_all(worker_id: str) -> None:
            start.wait()
            while batch := claim(session_factory, worker_id=worker_id, now=clock.now(), limit=7, lease_seconds=600):
                claimed[worker_id].extend(j.id for j in batch)

        run_in_threads(claim_all, list(claimed))

        every = [job_id for got in claimed.values() for job_id in got]
        assert sorted(every) == sorted(ids)


class TestRunOne:
    def test_a_handlers_writes_and_the_done_mark_commit_together(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        partner_id = add_partner(session_factory, clock.now())
        registry = Registry()

        @registry.register("test.write_then_fail")
        def handler(session: Session, payload: dict[str, Any], context: JobContext) -> None:
            notify_partner(session, payload, context)
            raise Boom("mail server down after the notification was written")

        with session_factory() as session:
            payload = {"partner_id": partner_id, "kind": "payout.sent", "text": "Paid"}
            [job_id] = enqueue(session, "test.write_then_fail", [payload], now=clock.now())
            session.commit()
        [job] = claim(session_factory, worker_id="w1", now=clock.now(), limit=1, lease_seconds=60)

        assert run_one(session_factory, registry, job, clock=clock) == JobOutcome.RETRY

        assert count_notifications(session_factory) == 0
        stored = load(session_factory, job_id)
        assert (stored.status, stored.attempts, stored.finished_at) == (JobStatus.PENDING, 1, None)


class TestConcurrentWorkers:
    def test_four_threads_run_each_of_200_jobs_exactly_once(self, session_factory: Factory, clock: FixedClock) -> None:
        registry, runs = counting_registry()
        ids = add_jobs(session_factory, "test.count", 200, now=clock.now())
        workers = [make_worker(session_factory, registry, clock, worker_id=f"w{i}", batch_size=5) for i in range(4)]
        done: dict[str, int] = {}
        start = threading.Barrier(len(workers))

        def drain(worker: Worker) -> None:
            start.wait()
            done[worker.worker_id] = worker.run_pending()

        run_in_threads(drain, workers)

        assert sum(done.values()) == 200
        assert set(runs) == set(ids)
        assert set(runs.values()) == {1}
        with session_factory() as session:
            statuses = session.scalars(select(OutboxJob.status).distinct()).all()
        assert statuses == [JobStatus.DONE]


class TestWorkerThread:
    def test_the_in_process_worker_runs_jobs_until_stopped(self, session_factory: Factory, clock: FixedClock) -> None:
        registry, runs = counting_registry()
        worker = make_worker(session_factory, registry, clock)
        handle = worker.start_in_thread(poll_seconds=0.01)
        try:
            [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now())
            for _ in range(500):
                if runs:
                    break
                threading.Event().wait(0.01)
        finally:
            handle.stop()

        assert not handle.thread.is_alive()
        assert runs == {job_id: 1}


class TestRequeueDead:
    def test_a_dead_job_gets_fresh_attempts_and_runs_again(self, session_factory: Factory, clock: FixedClock) -> None:
        failing, _ = counting_registry(fail=True)
        [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now(), max_attempts=1)
        make_worker(session_factory, failing, clock).run_pending()
        assert load(session_factory, job_id).status == JobStatus.DEAD

        clock.advance(timedelta(hours=2))
        with session_factory() as session:
            assert requeue_dead(session, [job_id, job_id], now=clock.now()) == 1
            session.commit()
        job = load(session_factory, job_id)
        assert (job.status, job.attempts, job.run_after, job.finished_at) == (
            JobStatus.PENDING,
            0,
            clock.now(),
            None,
        )
        assert job.last_error is not None, "why it died stays visible"

        working, runs = counting_registry()
        make_worker(session_factory, working, clock).run_pending()
        assert load(session_factory, job_id).status == JobStatus.DONE
        assert runs == {job_id: 1}

    def test_requeueing_a_job_that_is_not_dead_is_refused(self, session_factory: Factory, clock: FixedClock) -> None:
        [job_id] = add_jobs(session_factory, "test.count", 1, now=clock.now())

        with session_factory() as session, pytest.raises(InvalidTransition):
            requeue_dead(session, [job_id], now=clock.now())


class TestQueueStats:
    def test_counts_every_status_and_how_late_the_oldest_due_job_is(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        start = clock.now()
        add_jobs(session_factory, "test.count", 2, now=start)
        add_jobs(session_factory, "test.count", 1, now=start, run_after=start + timedelta(hours=1))
        claim(session_factory, worker_id="w1", now=start, limit=1, lease_seconds=60)
        clock.advance(timedelta(minutes=3))

        with session_factory() as session:
            stats = queue_stats(session, now=clock.now())

        assert stats.counts == {"pending": 2, "running": 1, "done": 0, "dead": 0}
        assert stats.due == 1
        assert stats.oldest_pending_age == timedelta(minutes=3)

    def test_an_empty_queue_has_no_oldest_age(self, session_factory: Factory, clock: FixedClock) -> None:
        with session_factory() as session:
            stats = queue_stats(session, now=clock.now())

        assert (stats.due, stats.oldest_pending_age) == (0, None)
        assert set(stats.counts.values()) == {0}


class TestNotifyPartner:
    def test_running_twice_for_the_same_job_writes_one_notification(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        partner_id = add_partner(session_factory, clock.now())
        payload = {"partner_id": partner_id, "kind": "commission.approved", "text": "EUR 12.50 approved"}
        context = JobContext(job_id=new_id("job"), attempt=1, now=clock.now())

        for _ in range(2):
            with session_factory() as session:
                notify_partner(session, payload, context)
                session.commit()

        with session_factory() as session:
            [note] = session.scalars(select(Notification)).all()
        assert (note.partner_id, note.kind, note.text, note.job_id) == (
            partner_id,
            "commission.approved",
            "EUR 12.50 approved",
            context.job_id,
        )
        assert note.id.startswith("ntf_")

    def test_the_worker_writes_the_notification_from_an_outbox_job(
        self, session_factory: Factory, clock: FixedClock
    ) -> None:
        partner_id = add_partner(session_factory, clock.now())
        with session_factory() as session:
            payload = {"partner_id": partner_id, "kind": "payout.sent", "text": "Your payout is on its way"}
            [job_id] = enqueue(session, NOTIFY_PARTNER, [payload], now=clock.now())
            session.commit()

        make_worker(session_factory, build_registry(), clock).run_pending()

        assert load(session_factory, job_id).status == JobStatus.DONE
        with session_factory() as session:
            assert session.scalar(select(Notification.job_id)) == job_id

    def test_an_unknown_partner_is_a_permanent_failure(self, session_factory: Factory, clock: FixedClock) -> None:
        with session_factory() as session:
            payload = {"partner_id": "ptn_missing", "kind": "payout.sent", "text": "x"}
            [job_id] = enqueue(session, NOTIFY_PARTNER, [payload], now=clock.now())
            session.commit()

        make_worker(session_factory, build_registry(), clock).run_pending()

        job = load(session_factory, job_id)
        assert job.status == JobStatus.DEAD
        assert "partner ptn_missing does not exist" in (job.last_error or "")


class TestRegistry:
    def test_a_kind_registered_twice_is_refused(self) -> None:
        registry = build_registry()

        with pytest.raises(ValueError, match="already registered"):
            registry.register(NOTIFY_PARTNER)(notify_partner)

    def test_build_registry_knows_notify_partner(self) -> None:
        assert NOTIFY_PARTNER in build_registry().kinds()


def run_in_threads(target: Callable[[Any], None], args: list[Any]) -> None:
    """Run target(arg) in one thread per arg and re-raise the first error any of them hit."""
    errors: list[BaseException] = []

    def guarded(arg: Any) -> None:
        try:
            target(arg)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]
