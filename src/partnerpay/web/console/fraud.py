"""Fraud flags: the open queue, with release / dismiss / confirm (each with a reason) per flag."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.tracking import fraud, fraud_queries
from partnerpay.tracking.attribution_models import FlagKind, FlagStatus
from partnerpay.web.console.access import Staff
from partnerpay.web.console.partner_pages import write
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render

router = APIRouter(route_class=PageRoute)
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
DECISIONS = {"release": FlagStatus.RELEASED, "dismiss": FlagStatus.DISMISSED, "confirm": FlagStatus.CONFIRMED}
STATUS_CHOICES = ("open", "released", "dismissed", "confirmed", "")


def fraud_page(
    request: Request,
    me: Actor,
    *,
    error: str | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    status = request.query_params.get("status", "open")
    kind = request.query_params.get("kind", "")
    with reading(request) as session:
        try:
            rows = fraud_queries.flag_rows(session, me, status=status or None, kind=kind or None)
        except ValidationError as exc:
            rows, error = [], exc.message
        counts = fraud_queries.open_counts(session, me)
    context = {
        "area": "console",
        "me": me,
        "page": "fraud",
        "rows": rows,
        "counts": counts,
        "status": status,
        "kind": kind,
        "statuses": STATUS_CHOICES,
        "kinds": [k.value for k in FlagKind],
        "error": error,
        "values": values or {},
        "hold_seconds": fraud.FAST_CONVERSION_SECONDS,
    }
    return render(request, "console/fraud.html", context, status_code=status_code)


@router.get("/fraud")
def show_flags(request: Request, me: Actor = Staff) -> Response:
    return fraud_page(request, me)


@router.post("/fraud/{flag_id}/decide")
def decide(
    request: Request,
    flag_id: str,
    me: Actor = Staff,
    decision: Text = "",
    reason: Text = "",
    back: Text = "",
    csrf_token: Csrf = None,
) -> Response:
    """Release, dismiss or confirm one flag; the reason is required and goes on the record."""
    check_form_csrf(request, csrf_token)
    to = DECISIONS.get(decision)

    def work(s: Session) -> str:
        if to is None:
            raise ValidationError("choose release, dismiss or confirm", field="decision")
        done = fraud.resolve_flag(s, actor=me, flag_id=flag_id, to=to, reason=reason, now=now(request))
        earned = f" {len(done.commissions)} commission line(s) created." if done.commissions else ""
        return f"Flag {done.flag.kind.replace('_', ' ')} {done.flag.status}.{earned}"

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return fraud_page(request, me, error=result.message, values={flag_id: reason}, status_code=result.status)
    flash(request, result)
    # Back to the partner page when the decision was taken there; only our own paths are followed.
    return redirect(back if back.startswith("/partners/") and "//" not in back else "/fraud")
