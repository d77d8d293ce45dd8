"""Read side of the dashboards: series by day, top partners and overviews, read from the rollups only
(never from clicks). Money stays per currency; every day of a range is listed, zeros included."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import Select, String, bindparam, exists, func, literal, null, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from partnerpay.partners.models import Partner
from partnerpay.payouts.models import PayoutSettings
from partnerpay.reports.models import (
    NO_PARTNER,
    CommissionStatusTotal,
    PartnerDay,
    PartnerMoney,
    PartnerWindow,
    ProgramDay,
    ProgramMoney,
    WindowMark,
)
from partnerpay.reports.rollups import COUNTS, MONEY
from partnerpay.reports.windows import RANKING, WINDOWS

AnySelect = Select[*tuple[Any, ...]]
MAX_DAYS = 366
MAX_TOP = 500
STATUSES = ("pending", "approved", "in_batch", "paid", "rejected")


class Figures:
    """Counts, and money per currency (minor units) for each money figure: money["revenue"]["EUR"].

    Plain slotted class, not a dataclass: a series builds one per day on every dashboard poll."""

    __slots__ = ("clicks", "conversions", "customers_paid", "deals_won", "leads", "money", "signups")

    def __init__(self) -> None:
        self.clicks = self.signups = self.leads = self.deals_won = self.conversions = self.customers_paid = 0
        self.money: dict[str, dict[str, int]] = {"revenue": {}, "won_amount": {}, "commissions": {}, "payouts_paid": {}}

    def add_counts(self, values: dict[str, int]) -> None:
        for name in COUNTS:
            setattr(self, name, getattr(self, name) + values.get(name, 0))

    def add_money(self, currency: str, values: dict[str, int]) -> None:
        for name in MONEY:
            if values.get(name):
                self.money[name][currency] = self.money[name].get(currency, 0) + values[name]

    def merge(self, other: Figures) -> None:
        self.add_counts({n: getattr(other, n) for n in COUNTS})
        for name, by_currency in other.money.items():
            for currency, amount in by_currency.items():
                self.money[name][currency] = self.money[name].get(currency, 0) + amount


class SeriesDay(Figures):
    __slots__ = ("day",)

    def __init__(self, day: date) -> None:
        super().__init__()
        self.day = day


@dataclass(frozen=True)
class Series:
    start: date
    end: date
    days: list[SeriesDay]

    @property
    def totals(self) -> Figures:
        total = Figures()
        for d in self.days:
            total.merge(d)
        return total


def last_days(days: int, *, today: date) -> tuple[date, date]:
    """The `days` whole UTC days ending today (1 to 366)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1 to {MAX_DAYS}")
    return today - timedelta(days=days - 1), today


def _series(start: date, end: date, rows: Any) -> Series:
    """Rows of the union below: a counts row has no currency, a money row has one."""
    days = [SeriesDay(start + timedelta(days=i)) for i in range((end - start).days + 1)]
    first = start.toordinal()
    for day, currency, clicks, signups, leads, won, conversions, paid, *money in rows:
        d = days[(day if isinstance(day, date) else date.fromisoformat(day)).toordinal() - first]
        if currency is None:
            d.clicks, d.signups, d.leads, d.deals_won, d.conversions, d.customers_paid = (
                clicks,
                signups,
                leads,
                won,
                conversions,
                paid,
            )
            continue
        for name, amount in zip(MONEY, money, strict=True):
            if amount:
                d.money[name][currency] = amount
    return Series(start, end, days)


def _range_statement(days: Any, money: Any, key: str) -> AnySelect:
    """One round trip: the counts rows and the money rows of the range in one UNION ALL, built once with bound
    parameters (a dashboard polls it, so no call pays for building SQL)."""
    zero, none = literal(0), null()
    counts = select(days.c.day, none, *(days.c[n] for n in COUNTS), *(zero for _ in MONEY)).where(
        days.c[key] == bindparam("key"), days.c.day >= bindparam("start"), days.c.day <= bindparam("end")
    )
    sums = select(money.c.day, money.c.currency, *(zero for _ in COUNTS), *(money.c[n] for n in MONEY)).where(
        money.c[key] == bindparam("key"), money.c.day >= bindparam("start"), money.c.day <= bindparam("end")
    )
    return union_all(counts, sums)  # type: ignore[return-value]


# Only partner_id and day: the (partner_id, day) indexes answer it (partner ids are unique across programs).
_PARTNER = _range_statement(PartnerDay.__table__, PartnerMoney.__table__, "partner_id")
_PROGRAM = _range_statement(ProgramDay.__table__, ProgramMoney.__table__, "program_id")


@dataclass(frozen=True)
class _Compiled:
    sql: str
    defaults: dict[str, Any]  # the statement's own bound values (its literal zeros)
    order: tuple[str, ...] | None  # parameter names in order for a positional driver (SQLite); None: named


_COMPILED: dict[tuple[int, str], _Compiled] = {}


def fetch(session: Session, statement: Any, params: dict[str, Any]) -> list[Any]:
    """Run a prebuilt statement on the session's own DBAPI connection (same transaction), compiled once per
    database. A dashboard polls these reads, and SQLAlchemy's per-call work (cache key, parameter and result
    processing) was several times the database's own time for a 30-row series."""
    connection = session.connection()
    dialect = connection.dialect
    compiled = _COMPILED.get((id(statement), dialect.name))
    if compiled is None:
        c = statement.compile(dialect=dialect)
        own = {name: bind.value for name, bind in c.binds.items() if not bind.required}
        compiled = _Compiled(c.string, own, tuple(c.positiontup) if c.positional and c.positiontup else None)
        _COMPILED[(id(statement), dialect.name)] = compiled
    values = {**compiled.defaults, **params}
    if dialect.name == "sqlite":  # DATE columns hold ISO text there
        values = {k: v.isoformat() if isinstance(v, date) else v for k, v in values.items()}
    args: Any = tuple(values[n] for n in compiled.order) if compiled.order is not None else values
    cursor = connection.connection.cursor()
    try:
        cursor.execute(compiled.sql, args)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _read(session: Session, statement: AnySelect, key: str, start: date, end: date) -> Series:
    return _series(start, end, fetch(session, statement, {"key": key, "start": start, "end": end}))


def partner_series(session: Session, *, partner_id: str, start: date, end: date) -> Series:
    """One partner's figures by day, from the rollups only."""
    return _read(session, _PARTNER, partner_id, start, end)


def program_series(session: Session, *, program_id: str, start: date, end: date) -> Series:
    """The whole program's figures by day (unattributed clicks included)."""
    return _read(session, _PROGRAM, program_id, start, end)


@dataclass(frozen=True)
class TopPartner:
    partner_id: str
    name: str
    clicks: int
    signups: int
    conversions: int
    deals_won: int
    revenue: int  # in the ranking currency
    commissions: int  # in the ranking currency
    currency: str


class unindexed(FunctionElement[str]):  # lower case: it reads like the SQL it stands for
    """A column SQLite must not read through an index: `+partner_id` there, the plain column elsewhere."""

    type = String()
    name = "unindexed"
    inherit_cache = True


@compiles(unindexed, "sqlite")
def _unindexed_sqlite(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return f"+{compiler.process(element.clauses, **kw)}"


@compiles(unindexed)
def _unindexed_default(element: unindexed, compiler: SQLCompiler, **kw: Any) -> str:
    return str(compiler.process(element.clauses, **kw))


def top_partners_statement() -> AnySelect:
    """Partners ranked by revenue in the program's currency, then conversions, then clicks, from the partner
    days alone (they carry the revenue and commissions in that currency). Built once with bound parameters
    (program_id, start, end, limit): a dashboard polls it."""
    d = PartnerDay
    sums = {name: func.sum(getattr(d, column)) for name, column in RANKING}
    grouped = (
        select(d.partner_id.label("pid"), *(value.label(name) for name, value in sums.items()))
        .where(
            d.program_id == bindparam("program_id"),
            d.day >= bindparam("start"),
            d.day <= bindparam("end"),
            d.partner_id != NO_PARTNER,
        )
        # Grouping by the bare column, SQLite (with statistics) walks the (partner_id, day) index of every
        # partner and looks each row up: twice the time of reading the program's days in key order and sorting.
        .group_by(unindexed(d.partner_id))
        .order_by(sums["revenue"].desc(), sums["conversions"].desc(), sums["clicks"].desc(), d.partner_id)
        .limit(bindparam("limit"))
        .subquery()
    )
    return (
        select(Partner.id, Partner.name, *(grouped.c[n] for n in sums))
        .join(grouped, grouped.c.pid == Partner.id)
        .order_by(grouped.c.revenue.desc(), grouped.c.conversions.desc(), grouped.c.clicks.desc(), Partner.id)
    )


def top_window_statement() -> AnySelect:
    """The same ranking read from a program's summed window (reports/windows.py): the first `limit` entries of
    the ranking index, if the window ends on `end` (its mark, checked in the same query: no second round trip).
    Bound parameters: program_id, days, end, limit."""
    w = PartnerWindow
    ranked = (
        select(w.partner_id.label("pid"), *(getattr(w, column).label(name) for name, column in RANKING))
        .where(
            w.program_id == bindparam("program_id"),
            w.days == bindparam("days"),
            # Uncorrelated: checked once, and the ranking index still gives the order (a join with the mark
            # made SQLite read the window rows before it, then sort them).
            exists().where(WindowMark.program_id == bindparam("program_id"), WindowMark.as_of == bindparam("end")),
        )
        .order_by(w.program_revenue.desc(), w.conversions.desc(), w.clicks.desc(), w.partner_id)
        .limit(bindparam("limit"))
        .subquery()
    )
    return (
        select(Partner.id, Partner.name, *(ranked.c[n] for n in TOP_FIGURES))
        .join(ranked, ranked.c.pid == Partner.id)
        .order_by(ranked.c.revenue.desc(), ranked.c.conversions.desc(), ranked.c.clicks.desc(), Partner.id)
    )


TOP_FIGURES = tuple(name for name, _ in RANKING)
_TOP, _TOP_WINDOW = top_partners_statement(), top_window_statement()


def top_partners(
    session: Session, *, program_id: str, currency: str, start: date, end: date, limit: int = 10
) -> list[TopPartner]:
    """The program's best partners of the range (at most `limit`, up to 500); `currency` is the program's, the
    one the partner days carry revenue and commissions in. A range the rollup keeps summed (the last 7 or 30
    days, once it has run today) is read from its window; any other is summed from the partner days."""
    days = (end - start).days + 1
    limit = max(1, min(limit, MAX_TOP))
    rows = []
    if days in WINDOWS:
        rows = fetch(session, _TOP_WINDOW, {"program_id": program_id, "days": days, "end": end, "limit": limit})
    if not rows:  # no window ending on `end` (or an empty one: then the days are as quickly found empty)
        rows = fetch(session, _TOP, {"program_id": program_id, "start": start, "end": end, "limit": limit})
    return [
        TopPartner(pid, name, int(c), int(s), int(conv), int(w), int(rev), int(com), currency)
        for pid, name, c, s, conv, w, rev, com in rows
    ]


def commissions_by_status(
    session: Session, *, program_id: str, partner_id: str | None = None
) -> dict[str, dict[str, int]]:
    """Commission amounts now, status → currency → minor units (from the refreshed status totals)."""
    t = CommissionStatusTotal
    stmt = select(t.status, t.currency, func.sum(t.amount)).where(t.program_id == program_id)
    if partner_id is not None:
        stmt = stmt.where(t.partner_id == partner_id)
    out: dict[str, dict[str, int]] = {status: {} for status in STATUSES}
    for status, currency, amount in session.execute(stmt.group_by(t.status, t.currency)):
        out.setdefault(status, {})[currency] = int(amount)
    return out


@dataclass(frozen=True)
class Funnel:
    clicks: int
    signups: int
    customers_paid: int


@dataclass(frozen=True)
class ProgramOverview:
    program_id: str
    currency: str
    series: Series
    totals: Figures
    commissions_by_status: dict[str, dict[str, int]]
    funnel: Funnel
    top_partners: list[TopPartner]
    next_payout_at: datetime | None


def next_payout_at(session: Session, program_id: str, now: datetime) -> datetime | None:
    settings = session.get(PayoutSettings, program_id)
    if settings is None or settings.schedule == "manual" or settings.next_run_at is None:
        return None
    return settings.next_run_at if settings.next_run_at >= now else None


def program_overview(
    session: Session, *, program_id: str, currency: str, start: date, end: date, now: datetime, top: int = 10
) -> ProgramOverview:
    series = program_series(session, program_id=program_id, start=start, end=end)
    totals = series.totals
    return ProgramOverview(
        program_id=program_id,
        currency=currency,
        series=series,
        totals=totals,
        commissions_by_status=commissions_by_status(session, program_id=program_id),
        funnel=Funnel(totals.clicks, totals.signups, totals.customers_paid),
        top_partners=top_partners(session, program_id=program_id, currency=currency, start=start, end=end, limit=top),
        next_payout_at=next_payout_at(session, program_id, now),
    )
