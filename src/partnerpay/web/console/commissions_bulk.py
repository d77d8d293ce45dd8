""" "Approve all matching" / "reject all matching": a confirmation page with the count and total of the lines the
filter selects, then a CSRF-protected POST that decides them all or none (approvals/lines.py, decisions.py).

The confirmation carries the count it showed; if the lines matching the filter changed in between, nothing is
decided and the page is shown again with the new count.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request, Response

from partnerpay.approvals import lines as approval_lines
from partnerpay.auth.actor import Actor
from partnerpay.commissions import decisions
from partnerpay.commissions.models import LineStatus
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.money import format_money
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.console.commissions import approval_message
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render, role_of
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
ACTIONS = ("approve", "reject")


def _filter(program_id: str, status: str, overdue: str, partner_id: str) -> approval_lines.LineFilter:
    raw: dict[str, Any] = {"program_id": program_id, "status": status or LineStatus.PENDING.value}
    if overdue == "1":
        raw["overdue"] = True
    if partner_id:
        raw["partner_id"] = partner_id
    return approval_lines.parse_filter(raw)


def _list_url(flt: approval_lines.LineFilter) -> str:
    query = {"status": flt.status, "program_id": flt.program_id}
    if flt.overdue:
        query["overdue"] = "1"
    return "/commissions?" + urlencode(query)


def _confirm_page(
    request: Request,
    me: Actor,
    action: str,
    flt: approval_lines.LineFilter,
    *,
    error: str | None = None,
    status_code: int = 200,
    reason: str = "",
) -> Response:
    if action not in ACTIONS:
        raise ValidationError(f"action must be approve or reject, got {action!r}", field="action")
    with reading(request) as session:
        summary = approval_lines.summary(session, me, flt, now(request))
        context = {
            "area": "console",
            "me": me,
            "role": role_of(me),
            "page": "commissions",
            "action": action,
            "flt": flt,
            "count": summary.count,
            "totals": [format_money(t, c) for c, t in sorted(summary.totals.items())],
            "program_names": queries.program_names(session),
            "back": _list_url(flt),
            "reason": reason,
            "error": error,
        }
    return render(request, "console/commissions_bulk.html", context, status_code=status_code)


@router.get("/commissions/all-matching")
def confirm(
    request: Request,
    me: Actor = Staff,
    action: str = "approve",
    program_id: str = "",
    status: str = LineStatus.PENDING.value,
    overdue: str = "",
    partner_id: str = "",
) -> Response:
    return _confirm_page(request, me, action, _filter(program_id, status, overdue, partner_id))


@router.post("/commissions/all-matching")
def decide(
    request: Request,
    me: Actor = Staff,
    action: Annotated[str, Form()] = "approve",
    program_id: Annotated[str, Form()] = "",
    status: Annotated[str, Form()] = LineStatus.PENDING.value,
    overdue: Annotated[str, Form()] = "",
    partner_id: Annotated[str, Form()] = "",
    expected: Annotated[int, Form()] = -1,
    reason: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    flt = _filter(program_id, status, overdue, partner_id)
    try:
        with unit_of_work(factory(request)) as session:
            ids = approval_lines.matching(session, me, flt, now(request))
            if len(ids) != expected:
                raise ValidationError(
                    f"{len(ids)} lines match now, not the {expected} you confirmed: nothing was decided; check the "
                    "count and total again",
                    field="expected",
                )
            if not ids:
                raise ValidationError("no line matches this filter any more: nothing to decide", field="filter")
            if action == "reject":
                decided = decisions.reject_lines(session, actor=me, ids=ids, reason=reason, now=now(request))
                message = f"Rejected {len(decided)} line(s). Partners see the reason."
            elif action == "approve":
                done = decisions.approve(session, actor=me, ids=ids, now=now(request), reason=reason or None)
                message = approval_message(done)
            else:
                raise ValidationError(f"action must be approve or reject, got {action!r}", field="action")
    except PartnerpayError as exc:
        return _confirm_page(request, me, action, flt, error=exc.message, status_code=exc.status, reason=reason)
    flash(request, message)
    return redirect(_list_url(flt))
