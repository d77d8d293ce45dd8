"""The inbox: every incoming fact (webhook deliveries now; API calls, CSV rows and syncs later) with its
status; failed and waiting items are retried one by one or all at once."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.inbox import queries
from partnerpay.inbox.models import InboxStatus
from partnerpay.inbox.service import retry_items
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.web.console.access import Staff
from partnerpay.web.console.queries import programs
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
LIST_LIMIT = 200
Csrf = Annotated[str | None, Form()]


def _page(request: Request, me: Actor, *, error: str | None = None, status_code: int = 200) -> Response:
    status = request.query_params.get("status", "")
    program_id = request.query_params.get("program", "")
    with reading(request) as session:
        try:
            rows = queries.items(session, program_id=program_id or None, status=status or None, limit=LIST_LIMIT)
        except ValidationError as exc:
            rows, error, status = [], exc.message, ""
        counts = queries.counts(session, program_id=program_id or None)
        choices = [(p.id, p.name) for p in programs(session)]
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "inbox",
        "rows": rows,
        "counts": counts,
        "status": status,
        "program": program_id,
        "programs": choices,
        "statuses": queries.STATUSES,
        "can_retry": me.can("write"),
        "error": error,
    }
    return render(request, "console/inbox.html", context, status_code=status_code)


@router.get("/inbox")
def inbox(request: Request, me: Actor = Staff) -> Response:
    return _page(request, me)


@router.post("/inbox/retry")
def retry_all(request: Request, me: Actor = Staff, csrf_token: Csrf = None, program: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            retried = retry_items(
                session, actor=me, now=now(request), statuses=[InboxStatus.FAILED.value], program_id=program or None
            )
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status_code=exc.status)
    flash(request, f"Queued {len(retried)} failed item(s) to be processed again." if retried else "Nothing failed.")
    return redirect("/inbox?status=failed" + (f"&program={program}" if program else ""))


@router.post("/inbox/{item_id}/retry")
def retry_one(request: Request, item_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)
    try:
        with unit_of_work(factory(request)) as session:
            retry_items(session, actor=me, now=now(request), item_ids=[item_id])
    except PartnerpayError as exc:
        return _page(request, me, error=exc.message, status_code=exc.status)
    flash(request, f"Queued {item_id} to be processed again.")
    return redirect("/inbox")
