"""Console: a program's approval policy (Settings > program > Approvals). Amounts are typed in the program
currency's major units ("500" or "499.99") and stored as exact minor units; an empty box turns a rule off."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response

from partnerpay.approvals import policy as policies
from partnerpay.auth.actor import Actor
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.kit.money import exponent, to_major_string
from partnerpay.programs.service import get_program
from partnerpay.web.console.access import Staff
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, reading, redirect, render, role_of
from partnerpay.web.pages import now as clock_now
from partnerpay.web.security import factory

router = APIRouter(route_class=PageRoute)
AMOUNTS = ("auto_approve_below", "second_approval_above", "batch_second_approval_above")
PLAIN_NUMBER = re.compile(r"^\d+(\.\d+)?$")


def to_minor(text: str, currency: str, field: str) -> int | None:
    """'1,250.50' in EUR → 125050; '' → None. Exact (Decimal, never float); more decimals than the currency has
    are refused rather than rounded."""
    cleaned = text.strip().replace(",", "").replace("_", "")
    if not cleaned:
        return None
    if len(cleaned) > 24 or not PLAIN_NUMBER.match(cleaned):
        raise ValidationError(f"{field}: write an amount like 500 or 499.99, got {text!r}", field=field)
    try:
        value = Decimal(cleaned) * (10 ** exponent(currency))
    except InvalidOperation as exc:  # pragma: no cover - the pattern above only lets numbers through
        raise ValidationError(f"{field}: not an amount: {text!r}", field=field) from exc
    if value != value.to_integral_value():
        raise ValidationError(f"{field}: {currency} has {exponent(currency)} decimal places", field=field)
    return int(value)


def _major(amount: int | None, currency: str) -> str:
    return "" if amount is None else to_major_string(amount, currency)


def form_values(form: dict[str, Any], currency: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"approver_roles": list(form.get("approver_roles") or [])}
    for name in AMOUNTS:
        raw[name] = to_minor(str(form.get(name) or ""), currency, name)
    sla = str(form.get("sla_days") or "").strip()
    if sla and not sla.isdigit():
        raise ValidationError(f"sla_days must be a whole number of days, got {sla!r}", field="sla_days")
    raw["sla_days"] = int(sla) if sla else None
    return raw


def _page(
    request: Request,
    me: Actor,
    program_id: str,
    *,
    typed: dict[str, Any] | None = None,
    error: PartnerpayError | None = None,
) -> Response:
    with reading(request) as session:
        program = get_program(session, me, program_id)
        current = policies.get_policy(session, me, program.id)
    values: dict[str, Any] = typed or {
        "approver_roles": list(current.approver_roles),
        **{
            name: to_major_string(getattr(current, name), program.currency)
            if getattr(current, name) is not None
            else ""
            for name in AMOUNTS
        },
        "sla_days": "" if current.sla_days is None else str(current.sla_days),
    }
    context = {
        "area": "console",
        "me": me,
        "role": role_of(me),
        "page": "settings",
        "program": program,
        "policy": current,
        "v": values,
        "roles": policies.APPROVING_ROLES,
        "can_edit": me.can("admin"),
        "error": error,
    }
    return render(request, "console/approval_policy.html", context, status_code=error.status if error else 200)


@router.get("/settings/program/{program_id}/approvals")
def policy_page(request: Request, program_id: str, me: Actor = Staff) -> Response:
    return _page(request, me, program_id)


@router.post("/settings/program/{program_id}/approvals")
def save_policy(
    request: Request,
    program_id: str,
    me: Actor = Staff,
    approver_roles: Annotated[list[str] | None, Form()] = None,
    auto_approve_below: Annotated[str, Form()] = "",
    second_approval_above: Annotated[str, Form()] = "",
    batch_second_approval_above: Annotated[str, Form()] = "",
    sla_days: Annotated[str, Form()] = "",
    csrf_token: Annotated[str | None, Form()] = None,
) -> Response:
    check_form_csrf(request, csrf_token)
    typed: dict[str, Any] = {
        "approver_roles": approver_roles or [],
        "auto_approve_below": auto_approve_below,
        "second_approval_above": second_approval_above,
        "batch_second_approval_above": batch_second_approval_above,
        "sla_days": sla_days,
    }
    try:
        with unit_of_work(factory(request)) as session:
            program = get_program(session, me, program_id)
            policies.put_policy(
                session,
                actor=me,
                program_id=program.id,
                raw=form_values(typed, program.currency),
                now=clock_now(request),
            )
    except PartnerpayError as exc:
        return _page(request, me, program_id, typed=typed, error=exc)
    flash(request, "Approval policy saved. It applies to the next approval and the next sweep.")
    return redirect(f"/settings/program/{program_id}/approvals")
