"""Alert rules of a program: what each kind checks, its thresholds and who hears about it.

Recipients: the staff owner of the partner (or of the partner behind the deal, payout or flag) when the rule
says `owner` (default), else, or when there is no owner, the program's team: staff users whose role is in
`team_roles` (default owner and manager). `emails` are always added; `email: false` keeps a rule in-app and
webhook only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.alerts.models import AlertRule, RuleKind
from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import Role
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.service import check_email
from partnerpay.programs.service import get_program

# name → (minimum, maximum, default); a default of None means "take it from elsewhere" (the program's SLA).
NUMBERS: dict[RuleKind, dict[str, tuple[int, int, int | None]]] = {
    RuleKind.APPROVALS_OVERDUE: {"days": (1, 365, None)},
    RuleKind.DEAL_STALE: {"days": (1, 365, 14)},
    RuleKind.PARTNER_INACTIVE: {"days": (1, 730, 30)},
    RuleKind.PAYOUT_FAILED: {"days": (1, 90, 7)},
    RuleKind.SPIKE: {"factor_pct": (101, 100_000, 300), "min_count": (1, 1_000_000_000, 20)},
    RuleKind.FRAUD_FLAG: {"days": (1, 90, 7)},
    RuleKind.INTEGRATION_SILENT: {"hours": (1, 720, 24)},
}
METRICS = ("clicks", "refunds")
DEFAULT_TEAM = ("owner", "manager")
MAX_EMAILS = 20
MAX_RULES_PER_PROGRAM = 50
DESCRIBE = {
    RuleKind.APPROVALS_OVERDUE: "commission lines pending longer than {days} days (default: the approval SLA)",
    RuleKind.DEAL_STALE: "open deals without an update for {days} days",
    RuleKind.PARTNER_INACTIVE: "active partners without a click, lead or event for {days} days",
    RuleKind.PAYOUT_FAILED: "payouts that failed or came back in the last {days} days",
    RuleKind.SPIKE: "{metric} today above {factor_pct}% of the 28-day daily average (at least {min_count})",
    RuleKind.FRAUD_FLAG: "open fraud flags raised in the last {days} days",
    RuleKind.INTEGRATION_SILENT: "a connected provider sent no webhook for {hours} hours",
}


def _int(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"params.{name} must be a whole number from {low} to {high}", field=f"params.{name}")
    return value


def check_params(kind: RuleKind, raw: Any) -> dict[str, Any]:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ValidationError("params must be an object", field="params")
    known = set(NUMBERS[kind]) | ({"metric"} if kind is RuleKind.SPIKE else set())
    for name in raw:
        if name not in known:
            raise ValidationError(
                f"params.{name} is not a setting of a {kind.value} rule; known: {', '.join(sorted(known))}",
                field=f"params.{name}",
            )
    out: dict[str, Any] = {}
    for name, (low, high, default) in NUMBERS[kind].items():
        value = raw.get(name, default)
        out[name] = None if value is None else _int(value, name, low, high)
    if kind is RuleKind.SPIKE:
        metric = raw.get("metric", "clicks")
        if metric not in METRICS:
            raise ValidationError(f"params.metric must be one of {', '.join(METRICS)}", field="params.metric")
        out["metric"] = metric
        if raw.get("min_count") is None and metric == "refunds":
            out["min_count"] = 3  # refunds are rarer than clicks: three in a day is already worth a look
    return out


def check_recipients(raw: Any) -> dict[str, Any]:
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise ValidationError("recipients must be an object", field="recipients")
    known = {"owner", "team_roles", "emails", "email"}
    for name in raw:
        if name not in known:
            raise ValidationError(f"recipients.{name} is not known; known: {', '.join(sorted(known))}",
                                  field=f"recipients.{name}")  # fmt: skip
    for flag in ("owner", "email"):
        if not isinstance(raw.get(flag, True), bool):
            raise ValidationError(f"recipients.{flag} must be true or false", field=f"recipients.{flag}")
    roles = raw.get("team_roles", list(DEFAULT_TEAM))
    valid = [r.value for r in Role]
    if not isinstance(roles, list) or not all(r in valid for r in roles):
        raise ValidationError(f"recipients.team_roles must list roles of: {', '.join(valid)}",
                              field="recipients.team_roles")  # fmt: skip
    emails = raw.get("emails", [])
    if not isinstance(emails, list) or len(emails) > MAX_EMAILS or not all(isinstance(e, str) for e in emails):
        raise ValidationError(f"recipients.emails must be a list of at most {MAX_EMAILS} addresses",
                              field="recipients.emails")  # fmt: skip
    checked = sorted({check_email(e, field="recipients.emails").lower() for e in emails})
    return {
        "owner": raw.get("owner", True),
        "team_roles": [r for r in valid if r in roles],
        "emails": checked,
        "email": raw.get("email", True),
    }


def check_kind(raw: Any) -> RuleKind:
    try:
        return RuleKind(raw)
    except ValueError:
        raise ValidationError(
            f"kind must be one of {', '.join(k.value for k in RuleKind)}, got {raw!r}", field="kind"
        ) from None


def describe(rule: AlertRule) -> str:
    params = {k: ("the SLA" if v is None else v) for k, v in rule.params.items()}
    return DESCRIBE[RuleKind(rule.kind)].format(**params)


def snapshot(rule: AlertRule) -> dict[str, Any]:
    return {"kind": rule.kind, "name": rule.name, "params": rule.params, "recipients": rule.recipients,
            "enabled": rule.enabled}  # fmt: skip


def _need_write(actor: Actor) -> None:
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("changing alert rules needs the 'write' scope of a staff user or API key")


def _check_name(raw: Any, kind: RuleKind) -> str:
    if raw is None:
        return kind.value.replace("_", " ").capitalize()
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > 200:
        raise ValidationError("name must have 1 to 200 characters", field="name")
    return raw.strip()


def create_rule(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    kind: Any,
    name: Any = None,
    params: Any = None,
    recipients: Any = None,
    enabled: Any = True,
    now: datetime,
) -> AlertRule:
    _need_write(actor)
    program = get_program(session, actor, program_id)
    checked = check_kind(kind)
    if not isinstance(enabled, bool):
        raise ValidationError("enabled must be true or false", field="enabled")
    count = len(session.scalars(select(AlertRule.id).where(AlertRule.program_id == program.id)).all())
    if count >= MAX_RULES_PER_PROGRAM:
        raise ValidationError(f"a program has at most {MAX_RULES_PER_PROGRAM} alert rules", field="program_id")
    rule = AlertRule(
        id=new_id("alr"),
        program_id=program.id,
        kind=checked.value,
        name=_check_name(name, checked),
        params=check_params(checked, params),
        recipients=check_recipients(recipients),
        enabled=enabled,
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(rule)
    session.flush()
    audit.record(session, actor=actor, action="alert_rule.create", object_type="alert_rule", object_id=rule.id,
                 program_id=program.id, now=now, after=snapshot(rule))  # fmt: skip
    return rule


def get_rule(session: Session, actor: Actor, rule_id: str) -> AlertRule:
    rule = session.get(AlertRule, rule_id)
    if rule is None or actor.partner_id is not None or not actor.sees_program(rule.program_id):
        raise NotFound(f"alert rule {rule_id} not found", field="rule_id")
    return rule


def update_rule(session: Session, *, actor: Actor, rule_id: str, changes: dict[str, Any], now: datetime) -> AlertRule:
    """Change name, params (the whole set), recipients or enabled; the kind stays."""
    _need_write(actor)
    rule = get_rule(session, actor, rule_id)
    known = {"name", "params", "recipients", "enabled"}
    for name in changes:
        if name not in known:
            raise ValidationError(f"{name} cannot be changed; changeable: {', '.join(sorted(known))}", field=name)
    before = snapshot(rule)
    kind = RuleKind(rule.kind)
    if "name" in changes:
        rule.name = _check_name(changes["name"], kind)
    if "params" in changes:
        rule.params = check_params(kind, changes["params"])
    if "recipients" in changes:
        rule.recipients = check_recipients(changes["recipients"])
    if "enabled" in changes:
        if not isinstance(changes["enabled"], bool):
            raise ValidationError("enabled must be true or false", field="enabled")
        rule.enabled = changes["enabled"]
    if snapshot(rule) != before:
        rule.updated_at = now
        audit.record(session, actor=actor, action="alert_rule.update", object_type="alert_rule", object_id=rule.id,
                     program_id=rule.program_id, now=now, before=before, after=snapshot(rule))  # fmt: skip
    return rule


def list_rules(session: Session, actor: Actor, program_id: str | None) -> Sequence[AlertRule]:
    stmt = select(AlertRule).order_by(AlertRule.program_id, AlertRule.created_at, AlertRule.id)
    if program_id is not None:
        stmt = stmt.where(AlertRule.program_id == get_program(session, actor, program_id).id)
    elif actor.program_id is not None:
        stmt = stmt.where(AlertRule.program_id == actor.program_id)
    return session.scalars(stmt).all()
