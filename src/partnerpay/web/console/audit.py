"""Audit: the searchable, hash-chained log for staff, and the History panel of one object (loaded by HTMX).

Partners never reach these pages (staff login only); an API key cannot log in to the console.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select

from partnerpay.audit.models import AuditEntry
from partnerpay.audit.queries import AuditFilter, diff, history, search
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden, PartnerpayError
from partnerpay.programs.models import Program
from partnerpay.web.api.v1.audit import FILTERS, chain_monitor, filter_of
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render

router = APIRouter(route_class=PageRoute)
PAGE_SIZE = 50

# Where an object lives in the console, for links from the log (objects without a page are shown as text).
OBJECT_PAGES = {
    "partner": "/partners/{id}",
    "deal": "/deals/{id}",
    "lead": "/deals/leads/{id}",
    "payout_batch": "/payouts/batches/{id}",
    "plan": "/plans/{id}",
    "program": "/settings/program/{id}",
    "customer": "/customers/{id}",
}


OBJECT_TYPES = (
    "partner", "commission_line", "payout", "payout_batch", "payout_run", "deal", "lead", "update_request", "plan",
    "program", "program_integration", "customer", "event", "dispute", "staff_user", "partner_user", "api_key",
    "payout_method", "tax_profile", "referral_link", "coupon", "group", "calendar_feed",
)  # fmt: skip


def object_href(entry: AuditEntry) -> str | None:
    pattern = OBJECT_PAGES.get(entry.object_type)
    return pattern.format(id=entry.object_id) if pattern else None


def rows_of(entries: list[AuditEntry]) -> list[dict[str, Any]]:
    return [{"entry": e, "changes": diff(e.before, e.after), "href": object_href(e)} for e in entries]


def _page(request: Request, me: Actor, *, status_code: int = 200) -> Response:
    error = None
    f = AuditFilter()
    try:
        f = filter_of(request)
    except PartnerpayError as exc:
        error, status_code = exc.message, exc.status
    cursor = request.query_params.get("cursor")
    chain = chain_monitor(request).check(now(request))
    with reading(request) as session:
        try:
            page = search(session, me, f, cursor=cursor, limit=PAGE_SIZE)
        except PartnerpayError as exc:
            error, status_code = exc.message, exc.status
            page = search(session, me, AuditFilter(), cursor=None, limit=PAGE_SIZE)
        programs = list(session.scalars(select(Program).order_by(Program.name)))
    query = f.as_query()
    context: dict[str, Any] = {
        "area": "console",
        "me": me,
        "page": "audit",
        "filters": {name: request.query_params.get(name, "") for name in FILTERS},
        "rows": rows_of(page.entries),
        "actors": page.actors,
        "next_href": f"/audit?{urlencode({**query, 'cursor': page.next_cursor})}" if page.next_cursor else None,
        "first_href": f"/audit?{urlencode(query)}" if cursor else None,
        "export_query": urlencode(query),
        "chain": chain,
        "programs": programs,
        # A fixed list, not SELECT DISTINCT: that would read the whole log on every view. Others can be typed.
        "object_types": OBJECT_TYPES,
        "can_reverify": me.can("admin"),
        "error": error,
    }
    return render(request, "console/audit.html", context, status_code=status_code)


@router.get("/audit")
def audit_page(request: Request, me: Actor = Staff) -> Response:
    return _page(request, me)


@router.post("/audit/verify")
def verify_again(request: Request, me: Actor = Staff, csrf_token: Annotated[str | None, Form()] = None) -> Response:
    """Forget what was verified and walk the whole chain again (owner): finds an edit deep in old rows."""
    check_form_csrf(request, csrf_token)
    if not me.can("admin"):
        raise Forbidden("verifying the whole audit chain again needs the owner role")
    monitor = chain_monitor(request)
    monitor.reset()
    status = monitor.check(now(request))
    verdict = "intact" if status.ok else f"BROKEN ({len(status.problems)} problem(s) listed)"
    flash(
        request,
        f"Checked all {status.rows_checked} audit rows: the chain is {verdict}.",
        "ok" if status.ok else "error",
    )
    return redirect("/audit")


@router.get("/audit/history/{object_type}/{object_id}")
def history_fragment(request: Request, object_type: str, object_id: str, me: Actor = Staff) -> Response:
    """The History panel's rows for one object (the pages include it with hx-get; it works as a page too)."""
    with reading(request) as session:
        page = history(session, me, object_type, object_id)
    context = {
        "me": me,
        "rows": rows_of(page.entries),
        "actors": page.actors,
        "object_type": object_type,
        "object_id": object_id,
        "more_href": f"/audit?{urlencode({'object_type': object_type, 'object_id': object_id})}",
        "area": "console",
        "page": "audit",
    }
    fragment = request.headers.get("hx-request") == "true"
    return render(request, "console/_history_rows.html" if fragment else "console/history.html", context)
