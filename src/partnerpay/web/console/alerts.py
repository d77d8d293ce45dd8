"""Console Alerts: recent alerts with acknowledge and snooze, the program's rules (add, turn on or off), and the
count badge the home page loads (GET /alerts/badge, an HTMX fragment)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.alerts import rules, service
from partnerpay.alerts.models import Alert, AlertRule, RuleKind
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import Role
from partnerpay.kit.errors import PartnerpayError, ValidationError
from partnerpay.web.console import queries
from partnerpay.web.console.access import Staff
from partnerpay.web.console.partner_pages import write
from partnerpay.web.pages import PageRoute, check_form_csrf, flash, now, reading, redirect, render

router = APIRouter(route_class=PageRoute)
Text = Annotated[str, Form()]
Csrf = Annotated[str | None, Form()]
Many = Annotated[list[str] | None, Form()]
SHOWN = 200


def alerts_page(
    request: Request, me: Actor, *, error: str | None = None, values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    status = request.query_params.get("status", "open")
    program_id = request.query_params.get("program_id") or None
    at = now(request)
    with reading(request) as session:
        try:
            stmt = service.filtered(me, program_id, status, at)  # the API's filter, newest first here
            rows = list(session.scalars(stmt.order_by(Alert.id.desc()).limit(SHOWN)))
        except ValidationError as exc:
            rows, error = [], exc.message
        rule_rows = list(session.scalars(select(AlertRule).order_by(AlertRule.program_id, AlertRule.created_at)))
        context: dict[str, Any] = {
            "area": "console",
            "me": me,
            "page": "alerts",
            "rows": rows,
            "rules": [(r, rules.describe(r)) for r in rule_rows if me.sees_program(r.program_id)],
            "programs": queries.program_names(session),
            "partners": queries.partner_names(session, [a.partner_id for a in rows if a.partner_id]),
            "status": status,
            "program_id": program_id or "",
            "statuses": service.STATUSES,
            "kinds": [k.value for k in RuleKind],
            "roles": [r.value for r in Role],
            "error": error,
            "values": values or {},
        }
    return render(request, "console/alerts.html", context, status_code=status_code)


@router.get("/alerts")
def show_alerts(request: Request, me: Actor = Staff) -> Response:
    return alerts_page(request, me)


@router.get("/alerts/badge")
def badge(request: Request, me: Actor = Staff) -> Response:
    """The home page's count of open alerts (all, and of the partners this user owns)."""
    with reading(request) as session:
        total = service.open_count(session, me, now(request))
        mine = service.open_count(session, me, now(request), owner_id=me.id)
    return render(request, "console/_alerts_badge.html", {"total": total, "mine": mine})


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        return f"Acknowledged: {service.acknowledge(s, actor=me, alert_id=alert_id, now=now(request)).title}"

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return alerts_page(request, me, error=result.message, status_code=result.status)
    flash(request, result)
    return redirect("/alerts")


@router.post("/alerts/{alert_id}/snooze")
def snooze(request: Request, alert_id: str, me: Actor = Staff, until: Text = "", csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        done = service.snooze(s, actor=me, alert_id=alert_id, until=until, now=now(request))
        return f"Snoozed until {done.snoozed_until:%d %b %Y %H:%M} UTC: {done.title}"

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return alerts_page(request, me, error=result.message, values={alert_id: until}, status_code=result.status)
    flash(request, result)
    return redirect("/alerts")


def _number(raw: str, name: str) -> int | None:
    text = raw.strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValidationError(f"{name} must be a whole number, got {text!r}", field=f"params.{name}")
    return int(text)


@router.post("/alerts/rules")
def add_rule(
    request: Request,
    me: Actor = Staff,
    program_id: Text = "",
    kind: Text = "",
    name: Text = "",
    days: Text = "",
    hours: Text = "",
    factor_pct: Text = "",
    min_count: Text = "",
    metric: Text = "clicks",
    owner: Text = "",
    team_roles: Many = None,
    emails: Text = "",
    email: Text = "",
    csrf_token: Csrf = None,
) -> Response:
    """Only the settings of the chosen kind are sent; an empty one takes its default."""
    check_form_csrf(request, csrf_token)
    typed = {"days": days, "hours": hours, "factor_pct": factor_pct, "min_count": min_count}

    def work(s: Session) -> str:
        checked = rules.check_kind(kind)
        params: dict[str, Any] = {}
        for key in rules.NUMBERS[checked]:
            value = _number(typed[key], key)
            if value is not None:
                params[key] = value
        if checked is RuleKind.SPIKE:
            params["metric"] = metric
        recipients = {
            "owner": owner == "on",
            "team_roles": team_roles or [],
            "emails": [e.strip() for e in emails.replace(";", ",").split(",") if e.strip()],
            "email": email == "on",
        }
        made = rules.create_rule(s, actor=me, program_id=program_id, kind=kind, name=name or None, params=params,
                                 recipients=recipients, now=now(request))  # fmt: skip
        return f"Rule added: {made.name} ({rules.describe(made)})."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        form = {"program_id": program_id, "kind": kind, "name": name, "emails": emails, **typed}
        return alerts_page(request, me, error=result.message, values=form, status_code=result.status)
    flash(request, result)
    return redirect("/alerts")


@router.post("/alerts/rules/{rule_id}/toggle")
def toggle_rule(request: Request, rule_id: str, me: Actor = Staff, csrf_token: Csrf = None) -> Response:
    check_form_csrf(request, csrf_token)

    def work(s: Session) -> str:
        rule = rules.get_rule(s, me, rule_id)
        done = rules.update_rule(s, actor=me, rule_id=rule.id, changes={"enabled": not rule.enabled}, now=now(request))
        return f"Rule {done.name} turned {'on' if done.enabled else 'off'}."

    result = write(request, work)
    if isinstance(result, PartnerpayError):
        return alerts_page(request, me, error=result.message, status_code=result.status)
    flash(request, result)
    return redirect("/alerts")
