"""Commission lines: filter by status, program and SLA (overdue), approve one row (HTMX or plain form) or a
selection; "all matching" is in commissions_bulk.py. Lines show their approval state (overdue, awaiting a second
approval) from approvals/lines.py."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Form, Request, Response

from partnerpay.approvals import lines as approval_lines
from partnerpay.approvals.policy import DEFAULT_ROLES, policies_for, roles_phrase
from partnerpay.auth.actor import Actor
from partnerpay.commissions import decisions
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
BULK_STATUSES = approval_lines.DECIDABLE


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
    overdue: str = "",
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    owner_id = me.id if mine == "1" else None
    at = now(request)
    with reading(request) as session:
        if overdue == "1":
            page = approval_lines.list_by_overdue(
                session,
                me,
                overdue=True,
                program_id=program_id or None,
                partner_id=None,
                status=_status_filter(status),
                cursor=cursor,
                limit=50,
                now=at,
                extra=[queries.owned_by(owner_id)] if owner_id else [],
            )
            totals: Sequence[Any] = approval_lines.overdue_totals(
                session, me, program_id or None, at, extra=[queries.owned_by(owner_id)] if owner_id else []
            )
        else:
            page = queries.lines_page(
                session,
                me,
                status=_status_filter(status),
                program_id=program_id or None,
                owner_id=owner_id,
                cursor=cursor,
                limit=50,
            )
            totals = queries.line_totals(
                session, status=_status_filter(status), program_id=program_id or None, owner_id=owner_id
            )
        partner_ids = [line.partner_id for line in page.data]
        programs = queries.programs(session)
        # "All matching" decides by the program's policy, so it is offered for one program at a time.
        bulk_program = program_id or (programs[0].id if len(programs) == 1 else "")
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "role": role_of(me),
            "page": "commissions",
            "lines": page.data,
            "next_cursor": page.next_cursor,
            "names": queries.partner_names(session, partner_ids),
            "owners": queries.partner_owners(session, partner_ids),
            "approval": approval_lines.approval_fields(session, page.data, at),
            "totals": totals,
            "programs": programs,
            "filters": FILTERS,
            "status": status,
            "program_id": program_id,
            "mine": owner_id is not None,
            "overdue": overdue == "1",
            "bulk_program": bulk_program if status in BULK_STATUSES and owner_id is None else "",
            # Who may decide on the lines shown: the policy of the one program in view (else the default).
            "approver_roles": (
                policies_for(session, [bulk_program])[bulk_program].approver_roles if bulk_program else DEFAULT_ROLES
            ),
            "back": request.url.path + (f"?{request.url.query}" if request.url.query else ""),
            "error": error,
        }
        context["approver_roles_text"] = roles_phrase(context["approver_roles"])
    return render(request, "console/commissions.html", context, status_code=status_code)


@router.get("/commissions")
def commissions(
    request: Request,
    me: Actor = Staff,
    status: str = DEFAULT_FILTER,
    program_id: str = "",
    cursor: str | None = None,
    mine: str = "",
    overdue: str = "",
) -> Response:
    """`mine=1`: only the lines of partners the logged-in user owns; `overdue=1`: only lines past the SLA."""
    return _page(request, me, status=status, program_id=program_id, cursor=cursor, mine=mine, overdue=overdue)


def _amounts(lines: Sequence[CommissionLine]) -> str:
    per_currency: dict[str, int] = defaultdict(int)
    for line in lines:
        per_currency[line.currency] += line.amount
    return ", ".join(format_money(total, currency) for currency, total in sorted(per_currency.items()))


def approved_message(lines: Sequence[CommissionLine]) -> str:
    noun = "line" if len(lines) == 1 else "lines"
    return f"Approved {len(lines)} {noun}: {_amounts(lines)}. They go into the first payout run after their hold."


def approval_message(done: decisions.Approval) -> str:
    """What an approval did: lines approved, and lines that got their first of two approvals."""
    chosen = {line.id for line in done.lines}
    approved = [line for line in done.approved if line.id in chosen]
    waiting = [line for line in done.lines if done.state_of(line.id) == "awaiting_second_approval"]
    parts = [approved_message(approved)] if approved else []
    if waiting:
        noun = "line is" if len(waiting) == 1 else "lines are"
        parts.append(
            f"First approval recorded: {len(waiting)} {noun} above the program's limit for one approver "
            f"({_amounts(waiting)}) and wait for a second approval by another finance user."
        )
    return " ".join(parts)


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
        overdue=query.get("overdue", [""])[0],
        error=error,
        status_code=status_code,
    )


def _approve(request: Request, me: Actor, ids: list[str], back: str) -> Response:
    """Plain form POST: redirect back with a message, or show the page again with the error."""
    target = safe_next(back, "/commissions")
    try:
        with unit_of_work(factory(request)) as session:
            done = decisions.approve(session, actor=me, ids=ids, now=now(request))
            message = approval_message(done)
    except PartnerpayError as exc:
        return _back_page(request, me, target, exc.message, exc.status)
    flash(request, message)
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
            decisions.approve(session, actor=me, ids=[line_id], now=now(request))
    except PartnerpayError as exc:
        error, status_code = exc.message, exc.status
    with reading(request) as session:
        line = session.get(CommissionLine, line_id)
        if line is None or not me.sees_program(line.program_id):
            raise NotFound(f"commission line {line_id} not found", field="ids")
        names = queries.partner_names(session, [line.partner_id])
        owners = queries.partner_owners(session, [line.partner_id])
        approval = approval_lines.approval_fields(session, [line], now(request))
    return render(
        request,
        "console/_line_row.html",
        {
            "line": line,
            "names": names,
            "owners": owners,
            "row_error": error,
            "approval": approval,
            "just_approved": error is None and line.status == LineStatus.APPROVED.value,
            "back": next,
        },
        status_code=status_code,
    )
