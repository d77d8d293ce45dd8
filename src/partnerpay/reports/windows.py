"""The dashboards' fixed ranges, summed per partner once per rollup run: the top-partners read of "the last 7
or 30 days" then reads the first rows of an index instead of grouping every partner day of the range on each
poll (at 10,000 partners, ~300,000 rows for 30 days).

A program's windows always equal a GROUP BY of its partner days over the range, or are not used at all:
`reroll` deletes the program's window mark in the same transaction as it rewrites days that any window covers
(days older than the longest window, or after its end, leave it), and `refresh` (run by
`roll_up` and `rebuild` after their re-rolls) sums the windows again and writes the mark. A read uses the
windows only when the mark names the range's last day; any other range, or a day the rollup has not reached
yet (the first minutes after midnight UTC), is summed from the partner days as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

from sqlalchemy import delete, func, insert, literal, select
from sqlalchemy.orm import Session

from partnerpay.reports.models import NO_PARTNER, PartnerDay, PartnerWindow, WindowMark

WINDOWS = (7, 30)  # days: the dashboards and API default to 30; the weekly report's top list is 7 days
# The ranking's figures: (name in a top-partners answer, column of the partner days and windows), in answer order.
RANKING = (
    ("clicks", "clicks"),
    ("signups", "signups"),
    ("conversions", "conversions"),
    ("deals_won", "deals_won"),
    ("revenue", "program_revenue"),
    ("commissions", "program_commissions"),
)
FIGURES = tuple(column for _, column in RANKING)


def forget(session: Session, program_id: str, start: date | None = None, end: date | None = None) -> None:
    """The program's days start..end (None: all) are about to change: its windows no longer hold until
    refreshed, unless none of those days is in any of them (a late batch of old days, say), in which case
    they stay as summed and the rollup does not sum them again."""
    if start is not None and end is not None:
        as_of = session.scalar(select(WindowMark.as_of).where(WindowMark.program_id == program_id))
        if as_of is not None and (end < as_of - timedelta(days=max(WINDOWS) - 1) or start > as_of):
            return
    session.execute(delete(WindowMark).where(WindowMark.program_id == program_id))


def stale(session: Session, program_ids: Iterable[str], today: date) -> list[str]:
    """Programs whose windows do not end today (never summed, forgotten by a re-roll, or summed yesterday)."""
    current = set(session.scalars(select(WindowMark.program_id).where(WindowMark.as_of == today)))
    return sorted(set(program_ids) - current)


def refresh(session: Session, program_id: str, *, today: date, now: datetime) -> None:
    """Sum the program's partner days over each window ending today (one INSERT … SELECT per window)."""
    forget(session, program_id)
    session.execute(delete(PartnerWindow).where(PartnerWindow.program_id == program_id))
    d = PartnerDay
    for days in WINDOWS:
        session.execute(
            insert(PartnerWindow).from_select(
                ["program_id", "days", "partner_id", *FIGURES],
                select(literal(program_id), literal(days), d.partner_id, *(func.sum(getattr(d, n)) for n in FIGURES))
                .where(
                    d.program_id == program_id,
                    d.day >= today - timedelta(days=days - 1),
                    d.day <= today,
                    d.partner_id != NO_PARTNER,
                )
                .group_by(d.partner_id),
            )
        )
    session.add(WindowMark(program_id=program_id, as_of=today, refreshed_at=now))
    session.flush()
