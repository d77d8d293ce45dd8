"""Smart alerts: rules (GET/POST /alert-rules, PATCH /alert-rules/{id}), alerts (GET /alerts) and what people do
with them (POST /alerts/{id}/acknowledge, /snooze). docs/api-alerts-webhooks.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field, StrictBool, StrictStr
from sqlalchemy.orm import Session

from partnerpay.alerts import rules, service
from partnerpay.alerts.models import AlertRule
from partnerpay.auth.actor import Actor
from partnerpay.web.api import idempotency
from partnerpay.web.api.schemas import In, Out, dump, page
from partnerpay.web.api.v1.common import Caller, CursorParam, Limit, need, now, reader

router = APIRouter()


class RuleOut(Out):
    id: str
    program_id: str
    kind: str
    name: str
    params: dict[str, Any]
    recipients: dict[str, Any]
    enabled: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class AlertOut(Out):
    id: str
    program_id: str
    rule_id: str
    kind: str
    subject_type: str
    subject_id: str
    period: str
    partner_id: str | None
    owner_id: str | None
    title: str
    detail: str
    data: dict[str, Any]
    notified: list[str]
    status: str
    raised_at: datetime
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    snoozed_until: datetime | None
    snoozed_by: str | None


class RuleIn(In):
    program_id: StrictStr
    kind: StrictStr = Field(description="approvals_overdue, deal_stale, partner_inactive, payout_failed, spike, "
                                        "fraud_flag or integration_silent")  # fmt: skip
    name: StrictStr | None = Field(default=None, max_length=200)
    params: dict[str, Any] | None = Field(default=None, examples=[{"days": 14}])
    recipients: dict[str, Any] | None = Field(
        default=None, examples=[{"owner": True, "team_roles": ["owner", "manager"], "emails": [], "email": True}]
    )
    enabled: StrictBool = True


class RulePatch(In):
    name: StrictStr | None = Field(default=None, max_length=200)
    params: dict[str, Any] | None = None
    recipients: dict[str, Any] | None = None
    enabled: StrictBool | None = None


class SnoozeIn(In):
    until: StrictStr = Field(description="YYYY-MM-DD (until that day begins, UTC) or an RFC 3339 time",
                             examples=["2026-12-01"])  # fmt: skip


def _rule(rule: AlertRule) -> dict[str, Any]:
    return {**dump(RuleOut, rule), "description": rules.describe(rule)}


@router.get("/alert-rules")
def list_rules(request: Request, actor: Actor = Caller, program_id: str | None = None) -> dict[str, Any]:
    with reader(request, actor) as s:
        return {"data": [_rule(r) for r in rules.list_rules(s, actor, program_id)], "next_cursor": None}


@router.post("/alert-rules", status_code=201)
def create_rule(request: Request, body: RuleIn, actor: Actor = Caller) -> JSONResponse:
    """A rule; params and recipients are checked per kind (422 names e.g. `params.days`)."""
    need(actor, "write")

    def work(session: Session) -> tuple[int, Any]:
        made = rules.create_rule(session, actor=actor, now=now(request), **body.model_dump())
        return 201, _rule(made)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)


@router.patch("/alert-rules/{rule_id}")
def update_rule(request: Request, rule_id: str, body: RulePatch, actor: Actor = Caller) -> JSONResponse:
    """Change name, params (the whole set), recipients or enabled."""
    need(actor, "write")
    changes = body.model_dump(exclude_unset=True)

    def work(session: Session) -> tuple[int, Any]:
        return 200, _rule(rules.update_rule(session, actor=actor, rule_id=rule_id, changes=changes, now=now(request)))

    return idempotency.run(request, actor, changes, work)


@router.get("/alerts")
def list_alerts(
    request: Request,
    actor: Actor = Caller,
    program_id: str | None = None,
    status: str = Query("open", description="open (default; not snoozed), snoozed, acknowledged or all"),
    cursor: str | None = CursorParam,
    limit: int = Limit,
) -> dict[str, Any]:
    with reader(request, actor) as s:
        result = service.list_alerts(
            s, actor, program_id=program_id, status=status, now=now(request), cursor=cursor, limit=limit
        )
        return page(AlertOut, result.data, result.next_cursor)


@router.get("/alerts/{alert_id}")
def get_alert(request: Request, alert_id: str, actor: Actor = Caller) -> dict[str, Any]:
    with reader(request, actor) as s:
        return dump(AlertOut, service.get_alert(s, actor, alert_id))


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: str, actor: Actor = Caller) -> JSONResponse:
    """Seen and handled: who and when are recorded; 409 when it already was."""
    need(actor, "write")

    def work(session: Session) -> tuple[int, Any]:
        return 200, dump(AlertOut, service.acknowledge(session, actor=actor, alert_id=alert_id, now=now(request)))

    return idempotency.run(request, actor, {}, work)


@router.post("/alerts/{alert_id}/snooze")
def snooze(request: Request, alert_id: str, body: SnoozeIn, actor: Actor = Caller) -> JSONResponse:
    """No new alert of this rule for this subject until then (and it leaves the open list meanwhile)."""
    need(actor, "write")

    def work(session: Session) -> tuple[int, Any]:
        done = service.snooze(session, actor=actor, alert_id=alert_id, until=body.until, now=now(request))
        return 200, dump(AlertOut, done)

    return idempotency.run(request, actor, body.model_dump(mode="json"), work)
