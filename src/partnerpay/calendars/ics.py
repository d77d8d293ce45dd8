"""An RFC 5545 calendar from calendar items, built with the icalendar library (folding, escaping, CRLF)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from icalendar import Calendar, Event

from partnerpay.calendars.items import CalendarItem

PRODID = "-//partnerpay//calendar//EN"
UID_DOMAIN = "partnerpay"


def uid(item: CalendarItem) -> str:
    return f"{item.key}@{UID_DOMAIN}"


def to_event(item: CalendarItem, base_url: str) -> Event:
    event = Event()
    event.add("uid", uid(item))
    # DTSTAMP from the item's own updated time: the same data gives byte-identical feeds, and a change moves it.
    event.add("dtstamp", item.stamp.astimezone(UTC))
    if isinstance(item.start, datetime):
        start = item.start.astimezone(UTC)
        event.add("dtstart", start)
        event.add("dtend", start + timedelta(minutes=item.minutes))
    else:
        event.add("dtstart", item.start)
        event.add("dtend", item.start + timedelta(days=1))  # all-day: DTEND is exclusive
    event.add("summary", item.summary)
    event.add("description", item.description)
    event.add("categories", [item.kind.value])
    event.add("url", base_url.rstrip("/") + item.path)
    event.add("transp", "TRANSPARENT")  # a reminder, not a meeting: it does not block the day
    return event


def build_calendar(items: list[CalendarItem], *, name: str, base_url: str) -> bytes:
    """The feed's bytes (text/calendar; charset=utf-8)."""
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("x-wr-calname", name)
    for item in items:
        cal.add_component(to_event(item, base_url))
    return bytes(cal.to_ical())


def is_all_day(value: datetime | date) -> bool:
    return not isinstance(value, datetime)
