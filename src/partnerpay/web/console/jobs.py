"""Background jobs: the outbox at a glance, and failed (dead) jobs to retry one by one or all at once."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.jobs.queries import dead_job_ids, dead_jobs
from partnerpay.jobs.service import requeue_dead_jobs
from partnerpay.jobs.worker import queue_stats
from partnerpay.kit.errors import PartnerpayError
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render, role_of
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
LIST_LIMIT = 200


def wait_text(age: timedelta | None) -> str:
    """How long the oldest due job has waited, in words: "under a minute", "12 min", "3 h 5 min", "2 days 4 h"."""
    if age is None:
        return "nothing waiting"
    minutes = max(int(age.total_seconds()) // 60, 0)
    if minutes < 1:
        return "under a minute"
    hours, mins = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {mins} min" if mins else "")
    return f"{mins} min"


def _page(request: Request, me: Actor, *, error: str | None = None, status_code: int = 200) -> Response:
    with reading(request) as session:
        stats = queue_stats(session, now=now(request))
        dead = dead_jobs(session, limit=LIST_LIMIT)
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "role": role_of(me),
        "page": "jobs",
        "stats": stats,
        "oldest_wait": wait_text(stats.oldest_pending_age),
        "dead": dead,
        "dead_total": stats.counts.get("dead", 0),
        "can_retry": me.can("admin") or me.can("payouts"),
        "error": error,
    }
    return render(request, "console/jobs.html", context, status_code=status_code)


@router.get("/jobs")
def jobs(request: Request, me: Actor = Staff) -> Response:
    return _page(request, me)


@router.post("/jobs/requeue")
def requeue_all(request: Request, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            # Every job dead at the moment of the click, including any that died after the page was shown.
            retried = requeue_dead_jobs(session, actor=me, job_ids=dead_job_ids(session), now=now(request))
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status_code=exc.status)
    if not retried:
        flash(request, "Nothing to retry: no background job has failed.")
    else:
        noun = "job" if retried == 1 else "jobs"
        flash(request, f"Retried {retried} failed {noun}: queued to run now, each with a fresh set of attempts.")
    return redirect("/jobs")


@router.post("/jobs/{job_id}/requeue")
def requeue_one(
    request: Request, job_id: str, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None
) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            requeue_dead_jobs(session, actor=me, job_ids=[job_id], now=now(request))
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status_code=exc.status)
    flash(request, f"Retried job {job_id}: queued to run now with a fresh set of attempts.")
    return redirect("/jobs")
