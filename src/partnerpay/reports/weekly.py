"""The weekly report: a program's (or one partner's) week against the week before, as an email with text,
HTML and inline PNG charts, sent through the outbox on each program's schedule.

The scheduler asks `weekly_due` every few minutes; a program's slot is its send time of that week, so the
report goes out once per week (scheduler_slots), however many workers ask. The job brings the rollups up
to date first, so the figures are those of the raw tables at sending time.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.models import StaffUser
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import JobContext, PermanentJobError
from partnerpay.jobs.scheduler import Due
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import BASE_URL, enqueue_email
from partnerpay.messaging.preferences import opted_out
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.reports.models import ReportSchedule
from partnerpay.reports.png_chart import bar_chart_png
from partnerpay.reports.queries import (
    Figures,
    Series,
    TopPartner,
    partner_series,
    program_series,
    top_partners,
)
from partnerpay.reports.rollups import roll_up
from partnerpay.reports.schedule import slot_time

WEEKLY_JOB = "reports.weekly"
WEEKLY_PARTNER_JOB = "reports.weekly_partner"
PREFERENCE_KIND = "report.weekly"  # a partner's opt-out (messaging/preferences.py), when that kind exists
TOP = 5
LATE_LIMIT = timedelta(days=1)  # a slot missed by more than this (the worker was down) is skipped, not sent late
_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html"]))

ROWS = (
    ("Clicks", "clicks"),
    ("Signups", "signups"),
    ("Leads", "leads"),
    ("Deals won", "deals_won"),
    ("Paying customers (first payment)", "customers_paid"),
)
MONEY_ROWS = (("Revenue", "revenue"), ("Commissions", "commissions"), ("Payouts paid", "payouts_paid"))


def change(now: int, before: int) -> str:
    """'+12.5 %', '-3.0 %', 'new' or '±0': exact integer arithmetic, rounded half-even to one decimal."""
    if before == 0:
        return "±0" if now == 0 else "new"
    numerator, denominator = abs(now - before) * 1000, abs(before)
    tenths, rest = divmod(numerator, denominator)
    if 2 * rest > denominator or (2 * rest == denominator and tenths % 2):
        tenths += 1
    sign = "+" if now > before else "-" if now < before else "±"
    return f"{sign}{tenths // 10}.{tenths % 10} %"


@dataclass(frozen=True)
class Line:
    label: str
    this_week: str
    last_week: str
    change: str


@dataclass
class WeeklyReport:
    program: Program
    partner: Partner | None
    start: date
    end: date
    this_week: Figures
    last_week: Figures
    series: Series
    top: list[TopPartner] = field(default_factory=list)

    @property
    def title(self) -> str:
        who = f"{self.partner.name} in {self.program.name}" if self.partner else self.program.name
        return f"Weekly report: {who}, {self.start:%d %b} to {self.end:%d %b %Y}"

    def lines(self) -> list[Line]:
        out = [
            Line(
                label,
                f"{getattr(self.this_week, n):,}",
                f"{getattr(self.last_week, n):,}",
                change(getattr(self.this_week, n), getattr(self.last_week, n)),
            )
            for label, n in ROWS
        ]
        for label, name in MONEY_ROWS:
            now, before = self.this_week.money[name], self.last_week.money[name]
            for currency in sorted(set(now) | set(before)) or [self.program.currency]:
                a, b = now.get(currency, 0), before.get(currency, 0)
                out.append(Line(f"{label} ({currency})", money(a, currency), money(b, currency), change(a, b)))
        return out

    def charts(self) -> dict[str, bytes]:
        labels = [d.day.strftime("%a") for d in self.series.days[-7:]]
        week = self.series.days[-7:]
        currency = self.program.currency
        return {
            "traffic": bar_chart_png(
                title="Clicks and signups by day",
                labels=labels,
                series=[("Clicks", [d.clicks for d in week]), ("Signups", [d.signups for d in week])],
            ),
            "money": bar_chart_png(
                title=f"Revenue and commissions by day ({currency}, minor units)",
                labels=labels,
                series=[
                    ("Revenue", [d.money["revenue"].get(currency, 0) for d in week]),
                    ("Commissions", [d.money["commissions"].get(currency, 0) for d in week]),
                ],
            ),
        }


def money(amount: int, currency: str) -> str:
    return format_money(amount, currency)


def build_report(session: Session, *, program: Program, end: date, partner: Partner | None = None) -> WeeklyReport:
    """The 7 UTC days ending `end` and the 7 before them, from the rollups."""
    start, previous = end - timedelta(days=6), end - timedelta(days=13)
    if partner is None:
        series = program_series(session, program_id=program.id, start=previous, end=end)
        top = top_partners(session, program_id=program.id, currency=program.currency, start=start, end=end, limit=TOP)
    else:
        series = partner_series(session, partner_id=partner.id, start=previous, end=end)
        top = []  # a partner never sees other partners' figures
    this_week, last_week = Figures(), Figures()
    for d in series.days:
        (this_week if d.day >= start else last_week).merge(d)
    return WeeklyReport(program, partner, start, end, this_week, last_week, series, top)


def render(report: WeeklyReport, *, link: str, images: str = "cid") -> tuple[str, str, dict[str, bytes]]:
    """Text, HTML and the inline images (cid → PNG). `images="data"` inlines them as data: URIs (the preview)."""
    charts = report.charts()
    sources = {
        name: (f"cid:{name}" if images == "cid" else f"data:image/png;base64,{base64.b64encode(png).decode()}")
        for name, png in charts.items()
    }
    lines = report.lines()
    width = max(len(x.label) for x in lines)
    text = [report.title, "", f"{'':<{width}}  {'this week':>16}  {'last week':>16}  change"]
    text += [f"{x.label:<{width}}  {x.this_week:>16}  {x.last_week:>16}  {x.change}" for x in lines]
    if report.top:
        text += ["", "Top partners (revenue in the program currency):"]
        text += [f"  {t.name}: {money(t.revenue, t.currency)}, {t.conversions} conversions" for t in report.top]
    text += ["", f"Live dashboard: {link}", ""]
    html = _env.get_template("reports/weekly_email.html").render(
        report=report, lines=lines, sources=sources, link=link, money=money
    )
    return "\n".join(text), html, charts


def _links(program: Program, partner: Partner | None) -> str:
    return f"{BASE_URL}/portal" if partner is not None else f"{BASE_URL}/reports/programs/{program.id}"


def send_weekly(session: Session, *, program_id: str, end: date, now: datetime) -> list[str]:
    """Enqueue the week's report to the schedule's staff and, in the partner version, one job per active
    partner who has not opted out. Returns the job ids (enqueued in the caller's transaction)."""
    program = session.get(Program, program_id)
    schedule = session.get(ReportSchedule, program_id)
    if program is None or schedule is None:
        raise PermanentJobError(f"program {program_id} has no weekly report schedule")
    roll_up(session, now=now)
    jobs = []
    report = build_report(session, program=program, end=end)
    text, html, images = render(report, link=_links(program, None))
    emails = session.scalars(
        select(StaffUser.email).where(StaffUser.id.in_(schedule.staff_ids)).order_by(StaffUser.email)
    )
    for email in emails:
        jobs.append(
            enqueue_email(session, to=email, subject=report.title, text=text, html=html, images=images, now=now)
        )
    if schedule.send_to_partners:
        # One job per partner: each builds and enqueues its own email, so 10,000 partners are 10,000 small
        # transactions spread over the workers, not one long one.
        ids = list(
            session.scalars(
                select(Partner.id)
                .where(Partner.program_id == program_id, Partner.status == "active")
                .order_by(Partner.id)
            )
        )
        out = opted_out(session, PREFERENCE_KIND, ids)
        payloads = [{"program_id": program_id, "partner_id": i, "end": end.isoformat()} for i in ids if i not in out]
        jobs += enqueue(session, WEEKLY_PARTNER_JOB, payloads, now=now) if payloads else []
    return jobs


def send_partner_weekly(session: Session, *, program_id: str, partner_id: str, end: date, now: datetime) -> str | None:
    """The partner version for one partner (its own figures only); None if it left the program meanwhile."""
    program = session.get(Program, program_id)
    partner = session.get(Partner, partner_id)
    if program is None or partner is None or partner.program_id != program_id or partner.status != "active":
        return None
    if partner.id in opted_out(session, PREFERENCE_KIND, [partner.id]):
        return None
    report = build_report(session, program=program, end=end, partner=partner)
    text, html, images = render(report, link=_links(program, partner))
    return enqueue_email(session, to=partner.email, subject=report.title, text=text, html=html, images=images, now=now)


def _payload(payload: dict[str, Any], *names: str) -> list[str]:
    values = [payload.get(n) for n in names]
    if not all(isinstance(v, str) and v for v in values):
        raise PermanentJobError(f"payload needs {', '.join(names)}, got {payload!r}")
    return values  # type: ignore[return-value]


def weekly_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """The "reports.weekly" job {program_id, end}: its emails (and partner jobs) commit with the job."""
    program_id, end = _payload(payload, "program_id", "end")
    send_weekly(session, program_id=program_id, end=date.fromisoformat(end), now=context.now)


def weekly_partner_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """The "reports.weekly_partner" job {program_id, partner_id, end}: one partner's report email."""
    program_id, partner_id, end = _payload(payload, "program_id", "partner_id", "end")
    send_partner_weekly(
        session, program_id=program_id, partner_id=partner_id, end=date.fromisoformat(end), now=context.now
    )


def week_ending(schedule: ReportSchedule, slot: datetime) -> date:
    """The report sent at `slot` covers the 7 days before the local send day."""
    return slot.astimezone(ZoneInfo(schedule.timezone)).date() - timedelta(days=1)


def weekly_due(session: Session, now: datetime) -> list[Due]:
    """One slot per program and week: the latest send time passed, unless set after it or missed by a day."""
    due = []
    for schedule in session.scalars(select(ReportSchedule).where(ReportSchedule.enabled.is_(True))):
        slot = slot_time(schedule, now)
        if now - slot > LATE_LIMIT or schedule.updated_at > slot:
            continue
        end = week_ending(schedule, slot)
        due.append(
            Due(
                slot=f"{schedule.program_id}:{slot.astimezone(ZoneInfo(schedule.timezone)).date().isoformat()}",
                kind=WEEKLY_JOB,
                payload={"program_id": schedule.program_id, "end": end.isoformat()},
            )
        )
    return due
