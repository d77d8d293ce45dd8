"""Console home (work queues and totals per program) and the tie-out page."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.jobs.worker import queue_stats
from partnerpay.ledger.verify import verify
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, now, reading, render

router = APIRouter(route_class=PageRoute)


@router.get("/")
def dashboard(request: Request, me: Actor = Staff) -> Response:
    at = now(request)
    with reading(request) as session:
        summaries = queries.program_summaries(session, at)
        payable = queries.payable_now(session, at)
        recent = queries.batches(session, limit=8)
        names = queries.program_names(session)
        failed_jobs = queue_stats(session, now=at).counts.get("dead", 0)
    return render(
        request,
        "console/dashboard.html",
        {
            "area": "console",
            "me": me,
            "page": "home",
            "summaries": summaries,
            "payable": payable,
            "recent": recent,
            "program_names": names,
            "failed_jobs": failed_jobs,
        },
    )


@router.get("/verify")
def tie_out(request: Request, me: Actor = Staff) -> Response:
    with reading(request) as session:
        report = verify(session)
    return render(request, "console/verify.html", {"area": "console", "me": me, "page": "home", "report": report})
