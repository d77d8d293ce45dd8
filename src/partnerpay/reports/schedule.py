"""A program's weekly report schedule: read it (defaults when never set) and replace it (audited)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.programs.service import get_program
from partnerpay.reports.models import ReportSchedule

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_STAFF = 50


@dataclass(frozen=True)
class ScheduleView:
    configured: bool
    enabled: bool
    weekday: int
    hour: int
    minute: int
    timezone: str
    staff_ids: list[str]
    send_to_partners: bool

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "weekday_name": WEEKDAYS[self.weekday]}


def _view(row: ReportSchedule | None) -> ScheduleView:
    if row is None:
        return ScheduleView(False, False, 0, 8, 0, "UTC", [], False)
    return ScheduleView(
        True, row.enabled, row.weekday, row.hour, row.minute, row.timezone, list(row.staff_ids), row.send_to_partners
    )


def read_schedule(session: Session, actor: Actor, program_id: str) -> ScheduleView:
    program = get_program(session, actor, program_id)  # 404 for another program's key
    return _view(session.get(ReportSchedule, program.id))


def _int(data: dict[str, Any], name: str, low: int, high: int, default: int) -> int:
    value = data.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}, got {value!r}", field=name)
    return value


def _weekday(value: Any) -> int:
    if isinstance(value, str) and value.strip().lower() in WEEKDAYS:
        return WEEKDAYS.index(value.strip().lower())
    return _int({"weekday": value}, "weekday", 0, 6, 0)


def _timezone(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError("timezone must be an IANA name such as Europe/Berlin", field="timezone")
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(
            f"unknown timezone {value!r}: use an IANA name such as Europe/Berlin", field="timezone"
        ) from exc
    return value.strip()


def _staff(session: Session, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("staff_ids must be a list of staff user ids", field="staff_ids")
    ids = list(dict.fromkeys(value))
    if len(ids) > MAX_STAFF:
        raise ValidationError(f"at most {MAX_STAFF} staff users receive the report", field="staff_ids")
    known = set(session.scalars(select(StaffUser.id).where(StaffUser.id.in_(ids)))) if ids else set()
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise ValidationError(f"no staff user {unknown[0]}", field="staff_ids")
    return ids


def write_schedule(
    session: Session, *, actor: Actor, program_id: str, data: dict[str, Any], now: datetime
) -> ScheduleView:
    """Replace the schedule: {enabled, weekday (0-6 or a name), hour, minute, timezone, staff_ids,
    send_to_partners}; nothing is written unless every field is valid."""
    if not actor.can("write"):
        raise Forbidden("changing the weekly report schedule needs the 'write' scope")
    program = get_program(session, actor, program_id)
    enabled = data.get("enabled", True)
    to_partners = data.get("send_to_partners", False)
    for name, flag in (("enabled", enabled), ("send_to_partners", to_partners)):
        if not isinstance(flag, bool):
            raise ValidationError(f"{name} must be true or false", field=name)
    values = {
        "enabled": enabled,
        "weekday": _weekday(data.get("weekday", 0)),
        "hour": _int(data, "hour", 0, 23, 8),
        "minute": _int(data, "minute", 0, 59, 0),
        "timezone": _timezone(data.get("timezone", "UTC")),
        "staff_ids": _staff(session, data.get("staff_ids", [])),
        "send_to_partners": to_partners,
    }
    row = session.get(ReportSchedule, program.id)
    before = _view(row).as_dict() if row is not None else None
    if row is None:
        row = ReportSchedule(program_id=program.id, updated_by=actor.id, updated_at=now, **values)
        session.add(row)
    else:
        for name, value in values.items():
            setattr(row, name, value)
        row.updated_by, row.updated_at = actor.id, now
    session.flush()
    view = _view(row)
    audit.record(
        session,
        actor=actor,
        action="report_schedule.update",
        object_type="program",
        object_id=program.id,
        program_id=program.id,
        before=before,
        after=view.as_dict(),
        now=now,
    )
    return view


def slot_time(schedule: ReportSchedule, now: datetime) -> datetime:
    """The latest send time at or before `now` (the schedule's weekday and time in its timezone), in UTC."""
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    back = (local.weekday() - schedule.weekday) % 7
    day: date = local.date() - timedelta(days=back)
    at = datetime(day.year, day.month, day.day, schedule.hour, schedule.minute, tzinfo=zone)
    if at > now:
        day -= timedelta(days=7)
        at = datetime(day.year, day.month, day.day, schedule.hour, schedule.minute, tzinfo=zone)
    return at
