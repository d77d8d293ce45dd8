"""Evaluating the rules and raising alerts: in-app (the alerts table), by email and by the alert.raised webhook.

Run by the job `alerts.evaluate`, which the periodic scheduler enqueues once an hour (its slot is the hour,
so many workers still run it once). For each enabled rule, one detector query; findings already raised for
the same (rule, subject, period), or whose subject has a snoozed alert of the rule, are dropped; the rest are
written, audited, emailed as one digest per recipient and program, and sent as alert.raised webhooks, all in
the job's transaction.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.alerts.detectors import DETECTORS, Finding
from partnerpay.alerts.models import Alert, AlertRule, AlertStatus, RuleKind
from partnerpay.audit import service as audit
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import StaffUser
from partnerpay.db.chunks import in_chunks
from partnerpay.jobs.registry import JobContext, PermanentJobError
from partnerpay.jobs.scheduler import Due
from partnerpay.kit.ids import new_ids
from partnerpay.messaging.email import enqueue_email
from partnerpay.programs.models import Program
from partnerpay.webhooks_out import emit as webhooks_out

EVALUATE_JOB = "alerts.evaluate"
LISTED = 30  # alerts listed by name in one digest email; the rest are counted


def alert_data(alert: Alert) -> dict[str, Any]:
    """An alert as the API, the webhook and the email show it."""
    return {
        "id": alert.id,
        "object": "alert",
        "program_id": alert.program_id,
        "rule_id": alert.rule_id,
        "kind": alert.kind,
        "subject_type": alert.subject_type,
        "subject_id": alert.subject_id,
        "period": alert.period,
        "partner_id": alert.partner_id,
        "owner_id": alert.owner_id,
        "title": alert.title,
        "detail": alert.detail,
        "data": alert.data,
        "notified": alert.notified,
        "status": alert.status,
        "raised_at": alert.raised_at,
        "acknowledged_by": alert.acknowledged_by,
        "acknowledged_at": alert.acknowledged_at,
        "snoozed_until": alert.snoozed_until,
        "snoozed_by": alert.snoozed_by,
    }


def _fresh(session: Session, rule: AlertRule, findings: list[Finding], now: datetime) -> list[Finding]:
    """Findings not raised before for their period and whose subject is not snoozed for this rule."""
    seen: set[tuple[str, str, str]] = set()
    snoozed: set[tuple[str, str]] = set()
    ids = sorted({f.subject_id for f in findings})
    for chunk in in_chunks(ids):
        rows = session.execute(
            select(Alert.subject_type, Alert.subject_id, Alert.period, Alert.snoozed_until).where(
                Alert.rule_id == rule.id, Alert.subject_id.in_(chunk)
            )
        ).all()
        for subject_type, subject_id, period, until in rows:
            seen.add((subject_type, subject_id, period))
            if until is not None and until > now:
                snoozed.add((subject_type, subject_id))
    out, taken = [], set()
    for f in findings:
        key = (f.subject_type, f.subject_id, f.period)
        if key in seen or key in taken or (f.subject_type, f.subject_id) in snoozed:
            continue
        taken.add(key)
        out.append(f)
    return out


def _recipients(rule: AlertRule, finding: Finding, staff: dict[str, StaffUser]) -> list[str]:
    wanted = rule.recipients
    if not wanted.get("email", True):
        return []
    owner = staff.get(finding.owner_id or "") if wanted.get("owner", True) else None
    roles = set(wanted.get("team_roles", []))
    people = [owner.email] if owner is not None else [u.email for u in staff.values() if u.role in roles]
    return sorted({*people, *wanted.get("emails", [])})


def _raise(session: Session, program: Program, found: list[tuple[AlertRule, Finding]], now: datetime) -> list[Alert]:
    staff = {u.id: u for u in session.scalars(select(StaffUser)).all()}
    alerts = [
        Alert(
            id=alert_id,
            program_id=program.id,
            rule_id=rule.id,
            kind=rule.kind,
            subject_type=f.subject_type,
            subject_id=f.subject_id,
            period=f.period,
            partner_id=f.partner_id,
            owner_id=f.owner_id if f.owner_id in staff else None,
            title=f.title[:300],
            detail=f.detail,
            data=f.data,
            notified=_recipients(rule, f, staff),
            status=AlertStatus.OPEN.value,
            raised_at=now,
        )
        for alert_id, (rule, f) in zip(new_ids("alt", len(found)), found, strict=True)
    ]
    session.add_all(alerts)
    session.flush()
    audit.record_many(
        session,
        actor=SYSTEM,
        action="alert.raise",
        now=now,
        items=[("alert", a.id, a.program_id, None, {"rule_id": a.rule_id, "subject_id": a.subject_id,
                                                      "period": a.period, "notified": a.notified}) for a in alerts],
    )  # fmt: skip
    digest: dict[str, list[Alert]] = defaultdict(list)
    for alert in alerts:
        for email in alert.notified:
            digest[email].append(alert)
    for email, mine in sorted(digest.items()):
        lines = "\n".join(f"- {a.title}\n  {a.detail}" for a in mine[:LISTED])
        more = f"\n… and {len(mine) - LISTED} more." if len(mine) > LISTED else ""
        text = (f"{len(mine)} new alert(s) in {program.name}:\n\n{lines}{more}\n\n"
                f"Acknowledge or snooze them: {{base_url}}/alerts?program_id={program.id}\n")  # fmt: skip
        subject = f"{program.name}: {mine[0].title}" if len(mine) == 1 else f"{program.name}: {len(mine)} new alerts"
        enqueue_email(session, to=email, subject=subject[:200], text=text, now=now)
    webhooks_out.emit_many(session, program.id, "alert.raised", [alert_data(a) for a in alerts], now)
    return alerts


def evaluate(session: Session, now: datetime, *, program_ids: Sequence[str] | None = None) -> list[Alert]:
    """Every enabled rule (of the programs named), once; returns the alerts raised. A rerun raises nothing new."""
    stmt = select(AlertRule).where(AlertRule.enabled.is_(True)).order_by(AlertRule.program_id, AlertRule.id)
    if program_ids is not None:
        stmt = stmt.where(AlertRule.program_id.in_(list(program_ids)))
    by_program: dict[str, list[AlertRule]] = defaultdict(list)
    for rule in session.scalars(stmt):
        by_program[rule.program_id].append(rule)
    raised: list[Alert] = []
    for program_id, rules in by_program.items():
        found = [
            (rule, f)
            for rule in rules
            for f in _fresh(session, rule, DETECTORS[RuleKind(rule.kind)](session, rule, now), now)
        ]
        program = session.get(Program, program_id)
        if found and program is not None:
            raised += _raise(session, program, found, now)
    return raised


def evaluate_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """Job `alerts.evaluate` {program_id?}."""
    program_id = payload.get("program_id")
    if program_id is not None and not isinstance(program_id, str):
        raise PermanentJobError(f"payload field 'program_id' must be a string or absent, got {program_id!r}")
    evaluate(session, context.now, program_ids=[program_id] if program_id else None)


def evaluate_due(session: Session, now: datetime) -> list[Due]:
    """The periodic scheduler's due-check: one evaluation per hour, and none while no rule is enabled."""
    if not session.scalar(select(func.count()).where(AlertRule.enabled.is_(True))):
        return []
    return [Due(slot=f"{now:%Y-%m-%dT%H}", kind=EVALUATE_JOB, payload={})]
