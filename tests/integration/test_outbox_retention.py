"""Retention of done outbox jobs: after the period their payload (a weekly report's charts) is cleared in one
statement, the rows stay (the audit log and other tables name them), and jobs a person may retry keep theirs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, update
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import JobContext, PermanentJobError, Registry
from partnerpay.jobs.retention import RETENTION_JOB, clear_done_payloads, retention_due
from partnerpay.jobs.scheduler import PeriodicTask, Scheduler
from partnerpay.jobs.service import requeue_dead_jobs
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.email import enqueue_email
from partnerpay.settings import Settings

DAY = timedelta(days=1)
CHART = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 200  # about 50 KB, as a weekly report's chart


def weekly_report_email(session: Session, clock: FixedClock) -> str:
    return enqueue_email(session, to="ana@example.com", subject="Acme: your week", text="Clicks 120",
                         html='<img src="cid:clicks">', images={"clicks": CHART}, now=clock.now())  # fmt: skip


def payload_of(session: Session, job_id: str) -> dict[str, Any]:
    session.expire_all()
    job = session.get(OutboxJob, job_id)
    assert job is not None
    payload = dict(job.payload)
    session.rollback()  # end the read: on SQLite it holds the lock the worker needs
    return payload


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


class TestClearDonePayloads:
    def test_done_jobs_past_the_period_lose_their_payload_and_nothing_else(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        old_email = weekly_report_email(session, clock)
        [dead] = enqueue(session, "no.such.kind", [{"why": "kept for a retry"}], now=clock.now())
        [later] = enqueue(
            session, "no.such.kind", [{"due": "in 60 days"}], now=clock.now(), run_after=clock.now() + 60 * DAY
        )
        session.commit()
        Worker(session_factory, build_registry(), clock=clock).run_pending()  # sends the email; the unknown kind dies
        clock.advance(20 * DAY)
        recent_email = weekly_report_email(session, clock)
        session.commit()
        Worker(session_factory, build_registry(), clock=clock).run_pending()
        before = {j: payload_of(session, j) for j in (old_email, dead, later, recent_email)}
        assert before[old_email]["images"][0]["cid"] == "clicks"
        done = session.get(OutboxJob, old_email)
        assert done is not None and done.status == JobStatus.DONE
        finished, attempts = done.finished_at, done.attempts

        clock.advance(11 * DAY)  # the first email finished 31 days ago, the second 11
        assert clear_done_payloads(session, now=clock.now(), retention_days=30) == 1
        session.commit()

        assert payload_of(session, old_email) == {}
        kept = session.get(OutboxJob, old_email)
        assert kept is not None and (kept.status, kept.kind, kept.finished_at, kept.attempts) == (
            JobStatus.DONE,
            "email.send",
            finished,
            attempts,
        )
        for job_id in (dead, later, recent_email):
            assert payload_of(session, job_id) == before[job_id]
        assert clear_done_payloads(session, now=clock.now(), retention_days=30) == 0  # nothing is written twice
        assert clear_done_payloads(session, now=clock.now(), retention_days=10) == 1  # the recent one, now

    def test_one_statement_clears_any_number_of_jobs(
        self, session: Session, clock: FixedClock, statements: list[str]
    ) -> None:
        ids = enqueue(session, "email.send", [{"to": f"p{n}@example.com", "html": "x" * 500} for n in range(300)],
                      now=clock.now())  # fmt: skip
        session.execute(
            update(OutboxJob).where(OutboxJob.id.in_(ids)).values(status=JobStatus.DONE.value, finished_at=clock.now())
        )
        session.commit()
        session.scalar(select(OutboxJob.id).limit(1))  # the transaction is open before counting
        statements.clear()
        assert clear_done_payloads(session, now=clock.now() + 31 * DAY, retention_days=30) == 300
        touching = [s for s in statements if "outbox_jobs" in s]
        assert len(touching) == 1 and touching[0].lstrip().upper().startswith("UPDATE")

    def test_a_job_the_audit_log_names_keeps_its_row(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        runs: list[str] = []

        def flaky(session: Session, payload: dict[str, Any], context: JobContext) -> None:
            runs.append(context.job_id)
            if len(runs) == 1:
                raise PermanentJobError("the first run fails for good")

        registry = Registry()
        registry.add("test.flaky", flaky)
        [job_id] = enqueue(session, "test.flaky", [{"big": "y" * 1000}], now=clock.now())
        session.commit()
        worker = Worker(session_factory, registry, clock=clock)
        worker.run_pending()
        requeue_dead_jobs(session, actor=SYSTEM, job_ids=[job_id], now=clock.now())
        session.commit()
        worker.run_pending()
        assert runs == [job_id, job_id]
        clock.advance(40 * DAY)
        assert clear_done_payloads(session, now=clock.now(), retention_days=30) == 1
        session.commit()
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.action == "job.requeue")).all()
        job = session.get(OutboxJob, entry.object_id)
        assert job is not None and job.status == JobStatus.DONE and job.payload == {}

    def test_a_period_under_one_day_is_refused(self, session: Session, clock: FixedClock) -> None:
        with pytest.raises(ValueError, match="at least 1"):
            clear_done_payloads(session, now=clock.now(), retention_days=0)


class TestDailyJob:
    def test_the_worker_clears_payloads_once_a_day_with_the_settings_period(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        email = weekly_report_email(session, clock)
        session.commit()
        settings = Settings(secret_key="r" * 40, outbox_retention_days=7)
        scheduler = Scheduler([PeriodicTask("outbox.retention", retention_due)])
        worker = Worker(session_factory, build_registry(settings), clock=clock, scheduler=scheduler)
        worker.run_pending()  # sends the email
        clock.advance(6 * DAY)
        assert worker.run_periodic(force=True) == 1
        worker.run_pending()
        assert payload_of(session, email)["images"]  # six days: kept
        assert worker.run_periodic(force=True) == 0  # today's slot is taken
        clock.advance(2 * DAY)
        assert worker.run_periodic(force=True) == 1
        worker.run_pending()
        assert payload_of(session, email) == {}
        kinds = session.scalars(select(OutboxJob.status).where(OutboxJob.kind == RETENTION_JOB)).all()
        assert kinds == [JobStatus.DONE, JobStatus.DONE]
