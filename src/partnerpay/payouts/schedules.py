"""Payout schedules: the rule (monthly, twice monthly, weekly, net-N) and the next time it runs.

next_run is a pure function of the rule and an instant: the first run strictly after that instant, in UTC,
computed on the program's local calendar (a run "on the 1st at 09:00 Europe/Berlin" is 08:00 UTC in winter
and 07:00 UTC in summer). A day past the month's end is clamped to the last day (the 31st of February is
the 28th or 29th). A local hour that a DST change skips runs at the instant that hour would have had
before the change (02:30 on a spring-forward night is 03:30 summer time): one run, never none.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from partnerpay.kit.errors import ValidationError

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
MAX_NET_DAYS = 365


class ScheduleKind(StrEnum):
    MANUAL = "manual"  # no automatic runs: finance runs them by hand
    MONTHLY = "monthly"
    TWICE_MONTHLY = "twice_monthly"
    WEEKLY = "weekly"
    NET = "net"  # every day, paying lines approved at least net_days ago


@dataclass(frozen=True, slots=True)
class Schedule:
    kind: ScheduleKind
    day_of_month: int | None = None
    second_day: int | None = None
    weekday: int | None = None  # 0 = Monday
    net_days: int | None = None
    run_hour: int = 9
    timezone: str = "UTC"

    def describe(self) -> str:
        at = f"{self.run_hour:02d}:00 {self.timezone}"
        match self.kind:
            case ScheduleKind.MONTHLY:
                return f"monthly on day {self.day_of_month} at {at}"
            case ScheduleKind.TWICE_MONTHLY:
                return f"twice monthly on days {self.day_of_month} and {self.second_day} at {at}"
            case ScheduleKind.WEEKLY:
                return f"weekly on {WEEKDAYS[self.weekday or 0].capitalize()} at {at}"
            case ScheduleKind.NET:
                return f"daily at {at}, paying lines approved {self.net_days} or more days before"
        return "by hand (no schedule)"


def clamp_day(year: int, month: int, day: int) -> date:
    """Day `day` of the month, or its last day when the month is shorter."""
    return date(year, month, min(day, calendar.monthrange(year, month)[1]))


def runs_on(schedule: Schedule, day: date) -> bool:
    """Whether the schedule runs on this local calendar day."""
    match schedule.kind:
        case ScheduleKind.MONTHLY:
            assert schedule.day_of_month is not None
            return day == clamp_day(day.year, day.month, schedule.day_of_month)
        case ScheduleKind.TWICE_MONTHLY:
            assert schedule.day_of_month is not None and schedule.second_day is not None
            days = {clamp_day(day.year, day.month, d) for d in (schedule.day_of_month, schedule.second_day)}
            return day in days
        case ScheduleKind.WEEKLY:
            return day.weekday() == schedule.weekday
        case ScheduleKind.NET:
            return True
    return False


def local_run_instant(schedule: Schedule, day: date) -> datetime:
    """The UTC instant of the run on a local day (fold=0: the first of a repeated hour)."""
    local = datetime.combine(day, time(schedule.run_hour), tzinfo=ZoneInfo(schedule.timezone))
    return local.astimezone(UTC)


def next_run(schedule: Schedule, after: datetime) -> datetime | None:
    """The first run strictly after `after` (aware), in UTC; None for a manual schedule."""
    if after.tzinfo is None:
        raise ValueError("naive datetime refused: pass an aware instant")
    if schedule.kind is ScheduleKind.MANUAL:
        return None
    # Start a day early: `after` in UTC may already be the next local day (or still the previous one).
    day = after.astimezone(ZoneInfo(schedule.timezone)).date() - timedelta(days=1)
    for _ in range(400):  # a monthly run is at most ~62 local days away; 400 is a safe bound
        if runs_on(schedule, day):
            at = local_run_instant(schedule, day)
            if at > after:
                return at
        day = _next_candidate(schedule, day)
    raise AssertionError(f"no run found for {schedule!r} after {after.isoformat()}")  # pragma: no cover


def _next_candidate(schedule: Schedule, day: date) -> date:
    """The next local day that may be a run day: month arithmetic for monthly rules, a day otherwise."""
    if schedule.kind in (ScheduleKind.MONTHLY, ScheduleKind.TWICE_MONTHLY):
        wanted = sorted({schedule.day_of_month or 1, schedule.second_day or schedule.day_of_month or 1})
        for d in wanted:
            candidate = clamp_day(day.year, day.month, d)
            if candidate > day:
                return candidate
        year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
        return clamp_day(year, month, wanted[0])
    if schedule.kind is ScheduleKind.WEEKLY:
        ahead = (int(schedule.weekday or 0) - day.weekday()) % 7 or 7
        return day + timedelta(days=ahead)
    return day + timedelta(days=1)


def _int(data: dict[str, Any], name: str, low: int, high: int, *, required: bool) -> int | None:
    value = data.get(name)
    if value is None:
        if required:
            raise ValidationError(f"{name} is required for a {data.get('schedule')} schedule", field=name)
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}, got {value!r}", field=name)
    return value


def check_timezone(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValidationError(f"timezone must be an IANA name such as 'Europe/Berlin', got {value!r}", field="timezone")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"unknown timezone {value!r}; use an IANA name such as 'Europe/Berlin'",
                              field="timezone") from None  # fmt: skip
    if value not in available_timezones() and value != "UTC":
        raise ValidationError(f"unknown timezone {value!r}; use an IANA name such as 'Europe/Berlin'", field="timezone")
    return value


def parse_schedule(data: dict[str, Any]) -> Schedule:
    """A schedule from request fields, every problem named by its field; unused day fields must be absent."""
    raw_kind = data.get("schedule")
    try:
        kind = ScheduleKind(str(raw_kind))
    except ValueError:
        allowed = ", ".join(k.value for k in ScheduleKind)
        raise ValidationError(f"schedule must be one of {allowed}, got {raw_kind!r}", field="schedule") from None
    weekday_value = data.get("weekday")
    if isinstance(weekday_value, str):
        name = weekday_value.strip().lower()
        if name not in WEEKDAYS:
            raise ValidationError(f"weekday must be a day name (monday…sunday) or 0-6, got {weekday_value!r}",
                                  field="weekday")  # fmt: skip
        data = {**data, "weekday": WEEKDAYS.index(name)}
    needs = {
        ScheduleKind.MONTHLY: {"day_of_month"},
        ScheduleKind.TWICE_MONTHLY: {"day_of_month", "second_day"},
        ScheduleKind.WEEKLY: {"weekday"},
        ScheduleKind.NET: {"net_days"},
        ScheduleKind.MANUAL: set(),
    }[kind]
    for name in ("day_of_month", "second_day", "weekday", "net_days"):
        if name not in needs and data.get(name) is not None:
            raise ValidationError(f"{name} does not apply to a {kind.value} schedule; leave it out", field=name)
    day = _int(data, "day_of_month", 1, 31, required="day_of_month" in needs)
    second = _int(data, "second_day", 1, 31, required="second_day" in needs)
    if day is not None and second is not None and second <= day:
        raise ValidationError(f"second_day ({second}) must come after day_of_month ({day})", field="second_day")
    weekday = _int(data, "weekday", 0, 6, required="weekday" in needs)
    net_days = _int(data, "net_days", 0, MAX_NET_DAYS, required="net_days" in needs)
    run_hour = _int({**data, "run_hour": data.get("run_hour", 9)}, "run_hour", 0, 23, required=True)
    assert run_hour is not None
    timezone = check_timezone(data.get("timezone", "UTC"))
    return Schedule(kind, day, second, weekday, net_days, run_hour, timezone)
