"""Console home (work queues and totals per program) and the tie-out page."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.disputes.queries import home_queues as dispute_queues
from partnerpay.jobs.worker import queue_stats
from partnerpay.ledger.verify import verify
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.console.tracking_queues import tracking_queues
from partnerpay.web.pages import PageRoute, now, reading, render

router = APIRouter(route_class=PageRoute)


@router.get("/")
def dashboard(request: Request, me: Actor = Staff, mine: str = "") -> Response:
    """`?mine=1`: line counts and payable figures only for the partners the logged-in user owns."""
    at = now(request)
    owner_id = me.id if mine == "1" else None
    with reading(request) as session:
        summaries = queries.program_summaries(session, at, owner_id=owner_id)
        payable = queries.payable_now(session, at, owner_id=owner_id)
        recent = queries.batches(session, limit=8)
        names = queries.program_names(session)
        failed_jobs = queue_stats(session, now=at).counts.get("dead", 0)
        tracking = tracking_queues(session, owner_id=owner_id)
        disputes = dispute_queues(session, now=at, owner_id=owner_id)  # disputes waiting for an answer (issue 8)
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
            "tracking": tracking,
            "disputes": disputes,
            "mine": owner_id is not None,
        },
    )


@router.get("/verify")
def tie_out(request: Request, me: Actor = Staff) -> Response:
    with reading(request) as session:
        report = verify(session)
    return render(request, "console/verify.html", {"area": "console", "me": me, "page": "home", "report": report})
