"""The background jobs page: failed jobs listed with why, counted on the dashboard, retried with an audit row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.audit.service import verify_chain
from partnerpay.auth.actor import ROLE_SCOPES, SYSTEM, Actor, ActorType
from partnerpay.auth.models import StaffUser
from partnerpay.auth.service import create_staff_user
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import JobContext, Registry
from partnerpay.jobs.service import requeue_dead_jobs
from partnerpay.jobs.worker import Worker
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound
from partnerpay.kit.ids import new_id
from tests.api import test_pages
from tests.api.test_pages import PASSWORD, World, csrf_of, staff

world = test_pages.world  # the page tests' fixture: a program, two partners, staff of every role

ROLE_ERROR = "retrying failed background jobs needs the finance or owner role"
TRACEBACK = 'Traceback (most recent call last):\n  File "mail.py", line 12, in send\nConnectionRefusedError'


def dead_job(world: World, *, kind: str = "mail.send", error: str | None = None, attempts: int = 8) -> str:
    """A job that used up its attempts, as the worker leaves it."""
    job_id = new_id("job")
    at = world.clock.now()
    with world.factory() as s:
        s.add(
            OutboxJob(
                id=job_id,
                kind=kind,
                payload={"to": "acme@example.com"},
                status=JobStatus.DEAD.value,
                attempts=attempts,
                max_attempts=8,
                run_after=at - timedelta(minutes=30),
                last_error=error if error is not None else f"ConnectionRefusedError: smtp down\n\n{TRACEBACK}",
                created_at=at - timedelta(hours=2),
                finished_at=at - timedelta(minutes=30),
            )
        )
        s.commit()
    return job_id


def job(world: World, job_id: str) -> OutboxJob:
    with world.factory() as s:
        found = s.get(OutboxJob, job_id)
        assert found is not None
        return found


def requeue_audit(world: World) -> list[AuditEntry]:
    with world.factory() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "job.requeue").order_by(AuditEntry.seq)))


def staff_id(world: World, email: str) -> str:
    with world.factory() as s:
        user_id = s.scalar(select(StaffUser.id).where(StaffUser.email == email))
        assert user_id is not None
        return user_id


class TestJobsPage:
    def test_the_page_needs_a_staff_login(self, world: World) -> None:
        response = world.client().get("/jobs", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fjobs"

    def test_failed_jobs_are_listed_with_the_first_line_of_their_error_and_the_rest_folded(self, world: World) -> None:
        job_id = dead_job(world, kind="mail.send")
        page = staff(world, "viewer").get("/jobs")
        assert page.status_code == 200
        assert "mail.send" in page.text and job_id in page.text
        assert "8 / 8" in page.text
        assert '<span class="bad">ConnectionRefusedError: smtp down</span>' in page.text
        assert "<details>" in page.text and "File &#34;mail.py&#34;, line 12" in page.text
        assert f'action="/jobs/{job_id}/requeue"' in page.text
        assert "Retry all failed (1)" in page.text
        assert 'href="/jobs" aria-current="page">Jobs' in page.text
        assert "retrying them needs the finance or owner role" in page.text  # a viewer is told up front

    def test_queue_stats_show_counts_due_jobs_and_how_long_the_oldest_waits(self, world: World) -> None:
        with world.factory() as s:
            enqueue(s, "mail.send", [{"n": 1}, {"n": 2}], now=world.clock.now() - timedelta(hours=3, minutes=5))
            s.commit()
        dead_job(world)
        page = staff(world, "finance").get("/jobs").text
        assert "<dt>Pending</dt><dd>2</dd>" in page and "<dt>Due now</dt><dd>2</dd>" in page
        assert "<dt>Oldest due waits</dt><dd>3 h 5 min</dd>" in page
        assert '<dt>Failed</dt><dd><a href="#failed-h">1</a></dd>' in page

    def test_with_nothing_failed_the_page_says_so_and_what_runs_here(self, world: World) -> None:
        page = staff(world, "finance").get("/jobs").text
        assert "No failed jobs. Side effects (emails, notifications, provider calls) run here" in page
        assert "Retry all failed" not in page

    def test_a_job_that_keeps_failing_in_the_worker_is_listed_then_recovers_after_a_retry(self, world: World) -> None:
        outage = {"on": True}
        registry = Registry()

        @registry.register("crm.sync")
        def sync(session: Session, payload: dict[str, Any], context: JobContext) -> None:
            if outage["on"]:
                raise TimeoutError("crm.example did not answer in 10 s")

        with world.factory() as s:
            [job_id] = enqueue(s, "crm.sync", [{"deal": "d1"}], now=world.clock.now(), max_attempts=2)
            s.commit()
        worker = Worker(world.factory, registry, clock=world.clock)
        worker.run_pending()
        world.clock.advance(timedelta(minutes=5))
        worker.run_pending()
        assert job(world, job_id).status == JobStatus.DEAD

        client = staff(world, "finance")
        assert "TimeoutError: crm.example did not answer in 10 s" in client.get("/jobs").text
        client.post(f"/jobs/{job_id}/requeue", data={"csrf_token": csrf_of(client, "/jobs")})
        outage["on"] = False
        assert worker.run_pending() == 1
        assert job(world, job_id).status == JobStatus.DONE
        assert "No failed jobs" in client.get("/jobs").text


class TestDashboard:
    def test_failed_jobs_are_a_queue_item_linking_to_the_jobs_page(self, world: World) -> None:
        dead_job(world)
        dead_job(world)
        page = staff(world, "viewer").get("/").text
        assert '<a href="/jobs"><strong>2</strong> background jobs failed permanently' in page

    def test_no_item_when_nothing_failed(self, world: World) -> None:
        assert "failed permanently" not in staff(world, "viewer").get("/").text


class TestRetryOne:
    def test_finance_retries_a_job_which_is_pending_with_fresh_attempts_and_audited(self, world: World) -> None:
        job_id, other = dead_job(world, attempts=8), dead_job(world)
        client = staff(world, "finance")
        response = client.post(
            f"/jobs/{job_id}/requeue", data={"csrf_token": csrf_of(client, "/jobs")}, follow_redirects=False
        )
        assert response.status_code == 303 and response.headers["location"] == "/jobs"
        assert f"Retried job {job_id}: queued to run now" in client.get("/jobs").text

        retried = job(world, job_id)
        assert retried.status == JobStatus.PENDING and retried.attempts == 0
        assert retried.run_after == world.clock.now() and retried.finished_at is None
        assert retried.last_error and retried.last_error.startswith("ConnectionRefusedError")  # why it died stays
        assert job(world, other).status == JobStatus.DEAD

        [entry] = requeue_audit(world)
        assert (entry.object_type, entry.object_id, entry.actor_type) == ("outbox_job", job_id, "staff")
        assert entry.actor_id == staff_id(world, "finance@example.com")
        assert entry.before == {"status": "dead", "attempts": 8, "last_error": "ConnectionRefusedError: smtp down"}
        assert entry.after == {"status": "pending"}
        with world.factory() as s:
            assert verify_chain(s)[1] == []

    @pytest.mark.parametrize("role", ["viewer", "manager"])
    def test_a_role_without_payouts_is_refused_on_the_page_and_the_job_stays_dead(
        self, world: World, role: str
    ) -> None:
        job_id = dead_job(world)
        client = staff(world, role)
        response = client.post(f"/jobs/{job_id}/requeue", data={"csrf_token": csrf_of(client, "/jobs")})
        assert response.status_code == 403
        assert ROLE_ERROR in response.text
        assert 'id="dead-jobs"' in response.text, "the error is shown on the jobs page, not a bare error page"
        assert job(world, job_id).status == JobStatus.DEAD
        assert requeue_audit(world) == []

    def test_a_post_without_csrf_token_is_refused_and_the_job_stays_dead(self, world: World) -> None:
        job_id = dead_job(world)
        client = staff(world, "finance")
        client.get("/jobs")
        response = client.post(f"/jobs/{job_id}/requeue", data={})
        assert response.status_code == 403 and "reload the page" in response.text
        assert job(world, job_id).status == JobStatus.DEAD

    def test_retrying_a_job_someone_already_retried_says_so(self, world: World) -> None:
        job_id = dead_job(world)
        client = staff(world, "finance")
        token = csrf_of(client, "/jobs")
        client.post(f"/jobs/{job_id}/requeue", data={"csrf_token": token})
        again = client.post(f"/jobs/{job_id}/requeue", data={"csrf_token": token})
        assert again.status_code == 409
        assert f"only failed (dead) jobs can be retried; nothing was retried: {job_id} is pending" in again.text
        assert len(requeue_audit(world)) == 1

    def test_an_unknown_job_is_a_clear_404_on_the_page(self, world: World) -> None:
        client = staff(world, "finance")
        response = client.post("/jobs/job_nope/requeue", data={"csrf_token": csrf_of(client, "/jobs")})
        assert response.status_code == 404 and "background job(s) not found: job_nope" in response.text


class TestRetryAll:
    def test_finance_retries_every_dead_job_with_one_audit_row_each(self, world: World) -> None:
        ids = {dead_job(world), dead_job(world, kind="crm.sync", error=""), dead_job(world)}
        client = staff(world, "finance")
        page = client.post("/jobs/requeue", data={"csrf_token": csrf_of(client, "/jobs")})
        assert "Retried 3 failed jobs: queued to run now" in page.text
        assert "No failed jobs" in page.text
        assert {job(world, i).status for i in ids} == {JobStatus.PENDING}
        entries = requeue_audit(world)
        assert {e.object_id for e in entries} == ids
        assert {e.before["last_error"] for e in entries if e.before} == {"ConnectionRefusedError: smtp down", ""}

    def test_with_nothing_dead_it_says_there_is_nothing_to_retry(self, world: World) -> None:
        client = staff(world, "finance")
        page = client.post("/jobs/requeue", data={"csrf_token": csrf_of(client, "/jobs")})
        assert page.status_code == 200 and "Nothing to retry: no background job has failed." in page.text

    def test_a_manager_is_refused_and_every_job_stays_dead(self, world: World) -> None:
        ids = [dead_job(world), dead_job(world)]
        client = staff(world, "manager")
        response = client.post("/jobs/requeue", data={"csrf_token": csrf_of(client, "/jobs")})
        assert response.status_code == 403 and ROLE_ERROR in response.text
        assert {job(world, i).status for i in ids} == {JobStatus.DEAD}

    def test_without_csrf_token_nothing_is_retried(self, world: World) -> None:
        job_id = dead_job(world)
        client = staff(world, "finance")
        client.get("/jobs")
        assert client.post("/jobs/requeue", data={}).status_code == 403
        assert job(world, job_id).status == JobStatus.DEAD


class TestRequeueDeadJobs:
    """The service itself, for callers other than the console (CLI, API keys)."""

    def test_an_owner_may_retry(self, world: World) -> None:
        with world.factory() as s:
            owner = create_staff_user(
                s, actor=SYSTEM, email="owner@example.com", role="owner", password=PASSWORD, now=world.clock.now()
            )
            s.commit()
        job_id = dead_job(world)
        client = staff(world, "owner")
        client.post(f"/jobs/{job_id}/requeue", data={"csrf_token": csrf_of(client, "/jobs")})
        assert job(world, job_id).status == JobStatus.PENDING
        assert requeue_audit(world)[0].actor_id == owner.id

    def test_a_key_of_one_program_is_refused_because_jobs_serve_every_program(self, world: World) -> None:
        job_id = dead_job(world)
        key = Actor(ActorType.API_KEY, "key_1", ROLE_SCOPES["owner"], program_id=world.program_id)
        with world.factory() as s, pytest.raises(Forbidden, match="background jobs serve every program"):
            requeue_dead_jobs(s, actor=key, job_ids=[job_id], now=world.clock.now())

    def test_a_mix_of_dead_and_other_jobs_changes_nothing(self, world: World) -> None:
        dead = dead_job(world)
        with world.factory() as s:
            [pending] = enqueue(s, "mail.send", [{}], now=world.clock.now())
            s.commit()
        finance = Actor(ActorType.STAFF, "usr_f", ROLE_SCOPES["finance"])
        with world.factory() as s, pytest.raises(InvalidTransition, match=f"{pending} is pending"):
            requeue_dead_jobs(s, actor=finance, job_ids=[dead, pending], now=world.clock.now())
        with world.factory() as s, pytest.raises(NotFound):
            requeue_dead_jobs(s, actor=finance, job_ids=[dead, "job_missing"], now=world.clock.now())
        assert job(world, dead).status == JobStatus.DEAD

    def test_no_ids_retries_nothing_but_still_checks_the_role(self, world: World) -> None:
        viewer = Actor(ActorType.STAFF, "usr_v", ROLE_SCOPES["viewer"])
        finance = Actor(ActorType.STAFF, "usr_f", ROLE_SCOPES["finance"])
        with world.factory() as s:
            assert requeue_dead_jobs(s, actor=finance, job_ids=[], now=world.clock.now()) == 0
            with pytest.raises(Forbidden, match=ROLE_ERROR):
                requeue_dead_jobs(s, actor=viewer, job_ids=[], now=world.clock.now())
