"""Commission lines: filter by status and program, approve one row (HTMX or plain form) or a selection."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Form, Request, Response

from partnerpay.auth.actor import Actor
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import NotFound, PartnerpayError, ValidationError
from partnerpay.kit.money import format_money
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import (
    PageRoute,
    check_form_csrf,
    flash,
    is_htmx,
    now,
    reading,
    redirect,
    render,
    role_of,
    safe_next,
)
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
FILTERS = [s.value for s in LineStatus] + ["all"]
DEFAULT_FILTER = LineStatus.PENDING.value


def _status_filter(status: str) -> str | None:
    if status not in FILTERS:
        raise ValidationError(f"status must be one of {', '.join(FILTERS)}, got {status!r}", field="status")
    return None if status == "all" else status


def _page(
    request: Request,
    me: Actor,
    *,
    status: str,
    program_id: str,
    cursor: str | None,
    mine: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    owner_id = me.id if mine == "1" else None
    with reading(request) as session:
        page = queries.lines_page(
            session,
            me,
            status=_status_filter(status),
            program_id=program_id or None,
            owner_id=owner_id,
            cursor=cursor,
            limit=50,
        )
        partner_ids = [line.partner_id for line in page.data]
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "role": role_of(me),
            "page": "commissions",
            "lines": page.data,
            "next_cursor": page.next_cursor,
            "names": queries.partner_names(session, partner_ids),
            "owners": queries.partner_owners(session, partner_ids),
            "totals": queries.line_totals(
                session, status=_status_filter(status), program_id=program_id or None, owner_id=owner_id
            ),
            "programs": queries.programs(session),
            "filters": FILTERS,
            "status": status,
            "program_id": program_id,
            "mine": owner_id is not None,
            "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "error": error,
        }
    return render(request, "console/commissions.html", context, status_code=status_code)


@router.get("/commissions")
def commissions(
    request: Request,
    me: Actor = Staff,
    status: str = DEFAULT_FILTER,
    program_id: str = "",
    cursor: str | None = None,
    mine: str = "",
) -> Response:
    """`mine=1`: only the lines of partners the logged-in user owns."""
    return _page(request, me, status=status, program_id=program_id, cursor=cursor, mine=mine)


def approved_message(lines: Sequence[CommissionLine]) -> str:
    per_currency: dict[str, int] = defaultdict(int)
    for line in lines:
        per_currency[line.currency] += line.amount
    amounts = ", ".join(format_money(total, currency) for currency, total in sorted(per_currency.items()))
    noun = "line" if len(lines) == 1 else "lines"
    return f"Approved {len(lines)} {noun}: {amounts}. They go into the first payout run after their hold."


def _back_page(request: Request, me: Actor, target: str, error: str, status_code: int) -> Response:
    """The page the form came from (same filter), shown again with the error above the table."""
    query = parse_qs(urlsplit(target).query)
    return _page(
        request,
        me,
        status=query.get("status", [DEFAULT_FILTER])[0],
        program_id=query.get("program_id", [""])[0],
        cursor=query.get("cursor", [None])[0],
        mine=query.get("mine", [""])[0],
        error=error,
        status_code=status_code,
    )


def _approve(request: Request, me: Actor, ids: list[str], back: str) -> Response:
    """Plain form POST: redirect back with a message, or show the page again with the error."""
    target = safe_next(back, "/commissions")
    try:
        with unit_of_work(factory(request)) as session:
            lines = approve_lines(session, actor=me, ids=ids, now=now(request))
    except PartnerpayError as exc:
        return _back_page(request, me, target, exc.message, exc.status)
    flash(request, approved_message(lines))
    return redirect(target)


@router.post("/commissions/approve")
def approve_selected(
    request: Request,
    me: Actor = Staff,
    ids: Annotated[list[str] | None, Form()] = None,
    next: Annotated[str, Form()] = "/commissions",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    if not ids:
        message = "Nothing was approved: tick the lines to approve in the first column, then press Approve selected."
        return _back_page(request, me, safe_next(next, "/commissions"), message, 422)
    return _approve(request, me, ids, next)


@router.post("/commissions/{line_id}/approve")
def approve_one(
    request: Request,
    line_id: str,
    me: Actor = Staff,
    next: Annotated[str, Form()] = "/commissions",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    if not is_htmx(request):
        return _approve(request, me, [line_id], next)
    error: str | None = None
    status_code = 200
    try:
        with unit_of_work(factory(request)) as session:
            approve_lines(session, actor=me, ids=[line_id], now=now(request))
    except PartnerpayError as exc:
        error, status_code = exc.message, exc.status
    with reading(request) as session:
        line = session.get(CommissionLine, line_id)
        if line is None or not me.sees_program(line.program_id):
            raise NotFound(f"commission line {line_id} not found", field="ids")
        names = queries.partner_names(session, [line.partner_id])
        owners = queries.partner_owners(session, [line.partner_id])
    return render(
        request,
        "console/_line_row.html",
        {
            "line": line,
            "names": names,
            "owners": owners,
            "row_error": error,
            "just_approved": error is None,
            "back": next,
        },
        status_code=status_code,
    )
