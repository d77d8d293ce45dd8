"""What a calendar shows: scheduled payout runs, approval deadlines, deal follow-ups and update-request due dates.

Each item has a stable key (its UID in an ICS feed, its event id in Google Calendar) made only of what
identifies it, never of what may change about it, so calendar apps update an item instead of adding another;
and a `stamp` taken from the item's own updated time, so the same data always gives the same feed.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.approvals.policy import policies_for
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.deals.models import Deal, UpdateRequest
from partnerpay.payouts.models import PayoutSettings
from partnerpay.payouts.schedules import ScheduleKind, next_run
from partnerpay.payouts.settings import settings_of
from partnerpay.programs.models import Program

# How far a feed looks: recent past items stay (an overdue follow-up is still to do), far-off ones wait.
PAST = timedelta(days=30)
AHEAD = timedelta(days=365)
RUNS_AHEAD = 3  # the next few scheduled payout runs of each program
MAX_PER_KIND = 500
MAX_PENDING_LINES = 5000  # approval deadlines are grouped per program and day from at most this many lines


class ItemKind(StrEnum):
    PAYOUT_RUN = "payout_run"
    APPROVAL_DEADLINE = "approval_deadline"
    DEAL_FOLLOW_UP = "deal_follow_up"
    UPDATE_REQUEST = "update_request"


@dataclass(frozen=True, slots=True)
class CalendarItem:
    key: str  # stable: e.g. "deal-follow-up-deal_01…"; never contains a changing value
    kind: ItemKind
    program_id: str
    summary: str
    description: str
    start: datetime | date  # a datetime is a timed event (UTC), a date an all-day one
    stamp: datetime  # the item's own updated time (DTSTAMP)
    path: str  # where the item lives in the console or portal, relative to the base URL
    minutes: int = 30  # a timed event's length


def _programs(session: Session, actor: Actor) -> dict[str, Program]:
    stmt = select(Program)
    if actor.program_id is not None:
        stmt = stmt.where(Program.id == actor.program_id)
    return {p.id: p for p in session.scalars(stmt.order_by(Program.id))}


def payout_runs(session: Session, programs: dict[str, Program], now: datetime, *, portal: bool) -> list[CalendarItem]:
    """The next scheduled runs of each program with a schedule (a manual program has none)."""
    rows = session.scalars(
        select(PayoutSettings).where(
            PayoutSettings.program_id.in_(list(programs)), PayoutSettings.schedule != ScheduleKind.MANUAL.value
        )
    ).all()
    items = []
    for row in rows:
        program = programs[row.program_id]
        schedule = settings_of(session, row.program_id).schedule
        at = row.next_run_at if row.next_run_at is not None and row.next_run_at >= now else next_run(schedule, now)
        for _ in range(RUNS_AHEAD):
            if at is None or at > now + AHEAD:
                break
            text = (
                f"Your commissions approved by then are paid in this run ({schedule.describe()})."
                if portal
                else f"Scheduled payout run of {program.name}: {schedule.describe()}. Batches wait for approval."
            )
            items.append(
                CalendarItem(
                    key=f"payout-run-{program.id}-{at:%Y%m%dT%H%MZ}",
                    kind=ItemKind.PAYOUT_RUN,
                    program_id=program.id,
                    summary=f"Payout run · {program.name}",
                    description=text,
                    start=at,
                    stamp=row.updated_at,
                    path="/portal/payouts" if portal else f"/settings/program/{program.id}/payouts",
                )
            )
            at = next_run(schedule, at)
    return items


def approval_deadlines(session: Session, programs: dict[str, Program], role: str, now: datetime) -> list[CalendarItem]:
    """Per program and day: the pending lines whose approval SLA ends that day, for the program's approvers."""
    policies = {
        pid: p
        for pid, p in policies_for(session, programs).items()
        if p.sla_days is not None and role in p.approver_roles
    }
    if not policies:
        return []
    oldest = min(now - PAST - timedelta(days=p.sla_days or 0) for p in policies.values())
    rows = session.execute(
        select(CommissionLine.program_id, CommissionLine.created_at)
        .where(
            CommissionLine.status == LineStatus.PENDING.value,
            CommissionLine.program_id.in_(list(policies)),
            CommissionLine.created_at >= oldest,
        )
        .order_by(CommissionLine.created_at)
        .limit(MAX_PENDING_LINES)
    ).all()
    groups: dict[tuple[str, date], list[datetime]] = defaultdict(list)
    for program_id, created_at in rows:
        due = created_at + timedelta(days=policies[program_id].sla_days or 0)
        groups[(program_id, due.date())].append(created_at)
    items = []
    for (program_id, day), created in sorted(groups.items()):
        name = programs[program_id].name
        items.append(
            CalendarItem(
                key=f"approval-due-{program_id}-{day:%Y%m%d}",
                kind=ItemKind.APPROVAL_DEADLINE,
                program_id=program_id,
                summary=f"Approval due · {len(created)} line(s) · {name}",
                description=(
                    f"{len(created)} pending commission line(s) of {name} reach the approval SLA of "
                    f"{policies[program_id].sla_days} day(s) on {day:%d %b %Y}."
                ),
                start=day,
                stamp=max(created),
                path=f"/commissions?status=pending&program_id={program_id}",
            )
        )
    return items


def deal_follow_ups(
    session: Session, programs: dict[str, Program], now: datetime, *, partner_id: str | None
) -> list[CalendarItem]:
    """An open deal is followed up `update_reminder_days` after its last update (the program's own cadence)."""
    stmt = select(Deal).where(Deal.status == "open", Deal.program_id.in_(list(programs)))
    if partner_id is not None:
        stmt = stmt.where(Deal.partner_id == partner_id)
    items = []
    for deal in session.scalars(stmt.order_by(Deal.last_update_at, Deal.id).limit(MAX_PER_KIND)):
        program = programs[deal.program_id]
        due = (deal.last_update_at + timedelta(days=program.update_reminder_days)).date()
        if due < (now - PAST).date() or due > (now + AHEAD).date():
            continue
        items.append(
            CalendarItem(
                key=f"deal-follow-up-{deal.id}",
                kind=ItemKind.DEAL_FOLLOW_UP,
                program_id=deal.program_id,
                summary=f"Follow up · {deal.company}",
                description=(
                    f"Deal {deal.company} is at stage {deal.stage}; last update on "
                    f"{deal.last_update_at:%d %b %Y}. Program: {program.name}."
                ),
                start=due,
                stamp=max(deal.updated_at, deal.last_update_at),
                path="/portal/leads" if partner_id is not None else f"/deals/{deal.id}",
            )
        )
    return items


def update_requests(
    session: Session, programs: dict[str, Program], now: datetime, *, partner_id: str | None
) -> list[CalendarItem]:
    """Unanswered "ask for an update" requests, due `update_reminder_days` after they were asked."""
    stmt = select(UpdateRequest).where(
        UpdateRequest.answered_at.is_(None), UpdateRequest.program_id.in_(list(programs))
    )
    if partner_id is not None:
        stmt = stmt.where(UpdateRequest.partner_id == partner_id)
    items = []
    for item in session.scalars(stmt.order_by(UpdateRequest.asked_at, UpdateRequest.id).limit(MAX_PER_KIND)):
        program = programs[item.program_id]
        due = (item.asked_at + timedelta(days=program.update_reminder_days)).date()
        if due < (now - PAST).date():
            continue
        what = f"deal {item.deal_id}" if item.deal_id else f"lead {item.lead_id}"
        items.append(
            CalendarItem(
                key=f"update-request-{item.id}",
                kind=ItemKind.UPDATE_REQUEST,
                program_id=item.program_id,
                summary=("Answer the update request" if partner_id else "Update due from partner")
                + f" · {program.name}",
                description=f"Asked on {item.asked_at:%d %b %Y} about {what}: {item.message[:500]}",
                start=due,
                stamp=item.asked_at,
                path=f"/portal/leads#upd-{item.id}"
                if partner_id
                else (f"/deals/{item.deal_id}" if item.deal_id else f"/deals/leads/{item.lead_id}"),
            )
        )
    return items


def items_for(session: Session, actor: Actor, now: datetime) -> list[CalendarItem]:
    """Everything one user's calendar shows: a partner user only its partner's items and its program's runs."""
    programs = _programs(session, actor)
    if not programs:
        return []
    portal = actor.partner_id is not None
    items = payout_runs(session, programs, now, portal=portal)
    if not portal:
        user = session.get(StaffUser, actor.id)
        if user is not None:
            items += approval_deadlines(session, programs, user.role, now)
    items += deal_follow_ups(session, programs, now, partner_id=actor.partner_id)
    items += update_requests(session, programs, now, partner_id=actor.partner_id)
    return sorted(items, key=lambda i: (str(i.start), i.key))


def program_items(session: Session, program: Program, now: datetime) -> list[CalendarItem]:
    """What a program's team calendar in Google shows: its scheduled payout runs and deal follow-ups."""
    programs = {program.id: program}
    return payout_runs(session, programs, now, portal=False) + deal_follow_ups(session, programs, now, partner_id=None)
