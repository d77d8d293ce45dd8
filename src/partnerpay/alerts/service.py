"""What people do with alerts: acknowledge (who, when) and snooze until a time (no new alert of the rule for
that subject meanwhile); both audited. And the reads behind the API and the console."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.orm import Session

from partnerpay.alerts.models import Alert, AlertStatus
from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.kit.paging import Page, paginate
from partnerpay.programs.service import get_program

MAX_SNOOZE_DAYS = 365
STATUSES = ("open", "snoozed", "acknowledged", "all")


def get_alert(session: Session, actor: Actor, alert_id: str) -> Alert:
    alert = session.get(Alert, alert_id)
    if alert is None or actor.partner_id is not None or not actor.sees_program(alert.program_id):
        raise NotFound(f"alert {alert_id} not found", field="alert_id")
    return alert


def _need_write(actor: Actor) -> None:
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("acknowledging or snoozing alerts needs the 'write' scope of a staff user or API key")


def acknowledge(session: Session, *, actor: Actor, alert_id: str, now: datetime) -> Alert:
    _need_write(actor)
    alert = get_alert(session, actor, alert_id)
    if alert.status == AlertStatus.ACKNOWLEDGED:
        raise InvalidTransition(
            f"alert {alert.id} was acknowledged by {alert.acknowledged_by} at {alert.acknowledged_at:%Y-%m-%d %H:%M}",
            field="alert_id",
        )
    alert.status, alert.acknowledged_by, alert.acknowledged_at = AlertStatus.ACKNOWLEDGED.value, actor.id, now
    audit.record(session, actor=actor, action="alert.acknowledge", object_type="alert", object_id=alert.id,
                 program_id=alert.program_id, now=now, before={"status": "open"},
                 after={"status": "acknowledged"})  # fmt: skip
    return alert


def parse_until(raw: Any, now: datetime) -> datetime:
    """A date (snoozed until that day begins, UTC) or an RFC 3339 time; in the future, within a year."""
    if not isinstance(raw, str) or not raw.strip():
        raise ValidationError("until must be a date (YYYY-MM-DD) or a time with an offset", field="until")
    text = raw.strip()
    try:
        if len(text) == 10:
            until = datetime.combine(date.fromisoformat(text), time(), tzinfo=UTC)
        else:
            until = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(f"until {text!r} is not a date (YYYY-MM-DD) or an RFC 3339 time", field="until") from None
    if until.tzinfo is None:
        raise ValidationError("until needs an offset, e.g. 2026-12-01T09:00:00+00:00", field="until")
    if until <= now:
        raise ValidationError(f"until must be in the future (now is {now:%Y-%m-%d %H:%M} UTC)", field="until")
    if until > now + timedelta(days=MAX_SNOOZE_DAYS):
        raise ValidationError(f"an alert is snoozed for at most {MAX_SNOOZE_DAYS} days", field="until")
    return until.astimezone(UTC)


def snooze(session: Session, *, actor: Actor, alert_id: str, until: Any, now: datetime) -> Alert:
    _need_write(actor)
    alert = get_alert(session, actor, alert_id)
    when = parse_until(until, now)
    before = {"snoozed_until": alert.snoozed_until.isoformat() if alert.snoozed_until else None}
    alert.snoozed_until, alert.snoozed_by = when, actor.id
    audit.record(session, actor=actor, action="alert.snooze", object_type="alert", object_id=alert.id,
                 program_id=alert.program_id, now=now, before=before,
                 after={"snoozed_until": when.isoformat()})  # fmt: skip
    return alert


def filtered(actor: Actor, program_id: str | None, status: str, now: datetime) -> Select[Any]:
    if status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}", field="status")
    stmt = select(Alert)
    if program_id is not None:
        stmt = stmt.where(Alert.program_id == program_id)
    elif actor.program_id is not None:
        stmt = stmt.where(Alert.program_id == actor.program_id)
    is_open = Alert.status == AlertStatus.OPEN.value
    awake = or_(Alert.snoozed_until.is_(None), Alert.snoozed_until <= now)
    if status == "open":
        stmt = stmt.where(is_open, awake)
    elif status == "snoozed":
        stmt = stmt.where(is_open, Alert.snoozed_until > now)
    elif status == "acknowledged":
        stmt = stmt.where(Alert.status == AlertStatus.ACKNOWLEDGED.value)
    return stmt


def list_alerts(
    session: Session, actor: Actor, *, program_id: str | None, status: str, now: datetime, cursor: str | None,
    limit: int,
) -> Page[Alert]:  # fmt: skip
    """In the order raised (ids are time-ordered), paged by cursor."""
    if program_id is not None:
        get_program(session, actor, program_id)
    return paginate(session, filtered(actor, program_id, status, now), Alert.id, cursor=cursor, limit=limit)


def open_count(session: Session, actor: Actor, now: datetime, *, owner_id: str | None = None) -> int:
    """Open, awake alerts (the console badge); with owner_id only those of that owner's partners."""
    stmt = filtered(actor, None, "open", now).with_only_columns(func.count())
    if owner_id is not None:
        stmt = stmt.where(and_(Alert.owner_id == owner_id))
    return int(session.scalar(stmt) or 0)
