"""Tracking figures by day for a program or one partner: clicks, signups, leads, won deals, paying customers,
revenue, conversion rates, and the top partners of the range. Read-only, one GROUP BY per figure."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, String, func, literal, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from partnerpay.auth.models import StaffUser
from partnerpay.deals.models import Deal, Lead
from partnerpay.events.models import Event
from partnerpay.kit.errors import ValidationError
from partnerpay.partners.models import Partner
from partnerpay.tracking.models import Click

DEFAULT_DAYS = 30
MAX_DAYS = 366
TOP_PARTNERS = 10
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SIGNUP = "signup"
INVOICE_PAID = "invoice_paid"
WON = "won"
# Any row shape: each figure's statement has its own columns.
AnySelect = Select[*tuple[Any, ...]]


# --- the day of a timestamp, in UTC, on both databases ----------------------------------------------


class utc_day(FunctionElement[str]):  # lower case: it reads like the SQL function it stands for
    """`YYYY-MM-DD` of a stored UTC timestamp, as text, so both databases group and compare alike."""

    type = String()
    name = "utc_day"
    inherit_cache = True


@compiles(utc_day, "sqlite")
def _utc_day_sqlite(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text 'YYYY-MM-DD HH:MM:SS.ffffff' (db.base.UTCDateTime, db.bulk).
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_day)
def _utc_day_default(element: utc_day, compiler: SQLCompiler, **kw: Any) -> str:
    # timestamptz: convert explicitly, the connection's TimeZone setting must not move a day boundary.
    return f"to_char(timezone('UTC', {compiler.process(element.clauses, **kw)}), 'YYYY-MM-DD')"


# --- the range asked for -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DayRange:
    """Whole UTC days from `start` to `end`, both included."""

    start: date
    end: date

    @property
    def dates(self) -> list[date]:
        return [self.start + timedelta(days=i) for i in range((self.end - self.start).days + 1)]

    def covers(self, column: Any) -> ColumnElement[bool]:
        """The timestamp falls in the range: a plain range test, so the (…, at) indexes serve it."""
        lower = datetime.combine(self.start, time(), tzinfo=UTC)
        upper = datetime.combine(self.end + timedelta(days=1), time(), tzinfo=UTC)
        return (column >= lower) & (column < upper)  # type: ignore[no-any-return]


def _parse_day(text: str | date | None, name: str) -> date | None:
    if text is None or isinstance(text, date):
        return text
    text = text.strip()
    if not text:
        return None
    try:
        # fromisoformat alone would also take 20260301 or 2026-W09-1; the API documents YYYY-MM-DD only.
        if not ISO_DAY.match(text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError as exc:
        raise ValidationError(f"{name} must be a date such as 2026-03-01, got {text!r}", field=name) from exc


def day_range(start: str | date | None, end: str | date | None, *, today: date) -> DayRange:
    """The range from the `from` and `to` parameters (either may be left out); by default the last
    30 days ending `today`."""
    first = _parse_day(start, "from")
    last = _parse_day(end, "to")
    window = timedelta(days=DEFAULT_DAYS - 1)
    if last is None:
        # Only `from`: 30 days from it, but not into the future unless `from` itself is there.
        last = today if first is None else max(first, min(first + window, today))
    if first is None:
        first = last - window
    if first > last:
        raise ValidationError(f"from ({first}) is after to ({last})", field="from")
    span = (last - first).days + 1
    if span > MAX_DAYS:
        raise ValidationError(f"the range covers {span} days; at most {MAX_DAYS} are shown at once", field="to")
    return DayRange(first, last)


# --- exact ratios ------------------------------------------------------------------------------------------


def _divide_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    if 2 * remainder > denominator or (2 * remainder == denominator and quotient % 2):
        quotient += 1
    return quotient


@dataclass(frozen=True)
class Ratio:
    """A conversion rate kept as the two counts it comes from; no float is ever made of it."""

    numerator: int
    denominator: int

    @property
    def basis_points(self) -> int | None:
        """Rounded half-even to whole basis points; None when nothing was there to convert."""
        return _divide_half_even(self.numerator * 10_000, self.denominator) if self.denominator else None

    @property
    def percent(self) -> str:
        """One decimal, rounded from the exact ratio (not from the basis points): "12.3 %"."""
        if not self.denominator:
            return "n/a"
        tenths = _divide_half_even(self.numerator * 1_000, self.denominator)
        return f"{tenths // 10}.{tenths % 10} %"


# --- the figures ---------------------------------------------------------------------------------------------


@dataclass
class Figures:
    """What happened on one day (or in the whole range, for the totals). Money per currency, minor units."""

    clicks: int = 0
    attributed_clicks: int = 0
    signups: int = 0
    leads: int = 0
    deals_won: int = 0
    won: dict[str, int] = field(default_factory=dict)
    paying_customers: int = 0
    revenue: dict[str, int] = field(default_factory=dict)

    def conversion(self) -> dict[str, Ratio]:
        return {
            "signups_per_click": Ratio(self.signups, self.clicks),
            "won_deals_per_lead": Ratio(self.deals_won, self.leads),
        }


@dataclass
class Day(Figures):
    day: date = field(kw_only=True)


@dataclass(frozen=True)
class TopPartner:
    partner_id: str
    name: str
    owner_email: str | None
    clicks: int
    signups: int
    leads: int
    deals_won: int


@dataclass
class TrackingStats:
    program_id: str
    partner_id: str | None
    range: DayRange
    days: list[Day]
    totals: Figures
    top_partners: list[TopPartner]

    @property
    def conversion(self) -> dict[str, Ratio]:
        return self.totals.conversion()


def _scoped(stmt: AnySelect, model: Any, program_id: str, partner_id: str | None) -> AnySelect:
    stmt = stmt.where(model.program_id == program_id)
    return stmt.where(model.partner_id == partner_id) if partner_id is not None else stmt


def tracking_stats(
    session: Session, *, program_id: str, days: DayRange, partner_id: str | None = None, top: int = TOP_PARTNERS
) -> TrackingStats:
    """Figures by day for the program (or one of its partners); every day of the range is present.

    The caller has checked that the actor may see the program or partner (programs.service.get_program,
    partners.service.get_partner).
    """
    by_day = {d.isoformat(): Day(day=d) for d in days.dates}

    def grouped(stmt: AnySelect, model: Any) -> list[Any]:
        return list(session.execute(_scoped(stmt, model, program_id, partner_id)))

    click_day = utc_day(Click.at)
    for key, clicks, attributed in grouped(
        select(click_day, func.count(), func.count(Click.partner_id)).where(days.covers(Click.at)).group_by(click_day),
        Click,
    ):
        by_day[key].clicks, by_day[key].attributed_clicks = clicks, attributed

    event_day = utc_day(Event.occurred_at)
    in_range = days.covers(Event.occurred_at)
    for key, signups in grouped(
        select(event_day, func.count()).where(Event.type == SIGNUP, in_range).group_by(event_day), Event
    ):
        by_day[key].signups = signups
    paid = (Event.type == INVOICE_PAID) & in_range
    for key, payers in grouped(
        select(event_day, func.count(Event.customer_id.distinct())).where(paid).group_by(event_day), Event
    ):
        by_day[key].paying_customers = payers
    for key, currency, amount in grouped(
        select(event_day, Event.currency, func.sum(Event.amount))
        .where(paid, Event.amount.is_not(None))
        .group_by(event_day, Event.currency),
        Event,
    ):
        by_day[key].revenue[currency] = int(amount)

    lead_day = utc_day(Lead.created_at)
    for key, leads in grouped(
        select(lead_day, func.count()).where(days.covers(Lead.created_at)).group_by(lead_day), Lead
    ):
        by_day[key].leads = leads

    won_day = utc_day(Deal.won_at)
    for key, currency, count, amount in grouped(
        select(won_day, Deal.currency, func.count(), func.sum(Deal.amount))
        .where(Deal.status == WON, days.covers(Deal.won_at))
        .group_by(won_day, Deal.currency),
        Deal,
    ):
        by_day[key].deals_won += count
        if currency is not None and amount is not None:  # a deal won without an amount still counts as won
            by_day[key].won[currency] = by_day[key].won.get(currency, 0) + int(amount)

    day_list = list(by_day.values())
    totals = _totals(day_list)
    # A customer paying on several days is one paying customer of the range, not one per day.
    totals.paying_customers = (
        session.scalar(
            _scoped(select(func.count(Event.customer_id.distinct())).where(paid), Event, program_id, partner_id)
        )
        or 0
    )
    leaders = _top_partners(session, program_id, days, top) if partner_id is None else []
    return TrackingStats(program_id, partner_id, days, day_list, totals, leaders)


def _totals(day_list: list[Day]) -> Figures:
    totals = Figures()
    for d in day_list:
        totals.clicks += d.clicks
        totals.attributed_clicks += d.attributed_clicks
        totals.signups += d.signups
        totals.leads += d.leads
        totals.deals_won += d.deals_won
        for target, source in ((totals.won, d.won), (totals.revenue, d.revenue)):
            for currency, amount in source.items():
                target[currency] = target.get(currency, 0) + amount
    return totals


def _top_partners(session: Session, program_id: str, days: DayRange, top: int) -> list[TopPartner]:
    """The partners with the most won deals, then signups, then clicks in the range (each counted per table
    first, so the union stays as small as the number of active partners)."""

    def counted(partner: Any, column: int) -> AnySelect:
        """partner id and four counts, this table's count in its column and zeros elsewhere."""
        figures = [func.count() if i == column else literal(0) for i in range(4)]
        return select(partner.label("pid"), *(f.label(f"n{i}") for i, f in enumerate(figures))).group_by(partner)

    per_table = union_all(
        counted(Click.partner_id, 0).where(
            Click.program_id == program_id, Click.partner_id.is_not(None), days.covers(Click.at)
        ),
        counted(Event.partner_id, 1).where(
            Event.program_id == program_id,
            Event.partner_id.is_not(None),
            Event.type == SIGNUP,
            days.covers(Event.occurred_at),
        ),
        counted(Lead.partner_id, 2).where(Lead.program_id == program_id, days.covers(Lead.created_at)),
        counted(Deal.partner_id, 3).where(Deal.program_id == program_id, Deal.status == WON, days.covers(Deal.won_at)),
    ).subquery()
    pid, *figures = list(per_table.c)
    sums = [func.sum(c).label(name) for c, name in zip(figures, ("clicks", "signups", "leads", "won"), strict=True)]
    counts = select(pid.label("pid"), *sums).group_by(pid).subquery()
    stmt = (
        select(Partner.id, Partner.name, StaffUser.email, counts.c.clicks, counts.c.signups, counts.c.leads)
        .add_columns(counts.c.won)
        .join(counts, counts.c.pid == Partner.id)
        .outerjoin(StaffUser, StaffUser.id == Partner.owner_id)
        .order_by(counts.c.won.desc(), counts.c.signups.desc(), counts.c.clicks.desc(), Partner.name, Partner.id)
        .limit(top)
    )
    return [
        TopPartner(partner_id, name, owner, int(c), int(s), int(le), int(w))
        for partner_id, name, owner, c, s, le, w in session.execute(stmt)
    ]
