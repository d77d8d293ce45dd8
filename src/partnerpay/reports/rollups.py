"""Daily rollups of the raw tables, kept up to date incrementally so that dashboards never scan clicks.

`roll_up` finds the (program, day) pairs that changed since its last run and rebuilds exactly those days,
each contiguous range of days with one DELETE and one INSERT … SELECT … GROUP BY per table (set-based; no
row is handled in Python). What changed is read from watermarks (report_rollup_marks):

- clicks, events, leads, commission lines and ledger transactions: ids sort by the time they were made
  (kit/ids.py, tracking/click_ids.py), so the rows made since the last run are an id range. The range
  starts LAG before the greatest id seen last time, because a click waits in the writer's buffer and a
  transaction commits a while after its ids were made.
- deals and payouts change in place (won, paid, returned): their updated_at / paid_at / returned_at since
  the last run, less LAG, by the job's clock.
- a rejected line changes the day it was created: its rejection posts a ledger transaction that names it.
- the commission status totals are refreshed for every program with an audit row since the last run
  (every write is audited, so an approval or a payout run shows there).

A row that names a day long past (late data: a click flushed late, an event imported from last month)
re-rolls that day. `rebuild` recomputes everything from scratch; `partnerpay reports rollup --rebuild`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Date,
    Select,
    Subquery,
    and_,
    delete,
    func,
    insert,
    literal,
    literal_column,
    select,
    text,
    union_all,
)
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from partnerpay.audit.models import AuditEntry
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.deals.models import Deal, Lead
from partnerpay.events.models import Customer, Event
from partnerpay.ledger.models import LedgerTransaction
from partnerpay.payouts.models import Payout, PayoutStatus
from partnerpay.programs.models import Program
from partnerpay.reports import windows
from partnerpay.reports.models import (
    CommissionStatusTotal,
    PartnerDay,
    PartnerMoney,
    ProgramDay,
    ProgramMoney,
    RollupMark,
)
from partnerpay.tracking.models import Click

LAG = timedelta(minutes=10)
ROLLUP_LOCK = 2_026_112_622  # the advisory lock key of the rollup (PostgreSQL)
COUNTS = ("clicks", "signups", "leads", "deals_won", "conversions", "customers_paid")
# A day's row also holds the ranking figures in the program's currency (reports/models.py).
DAY_FIGURES = (*COUNTS, "program_revenue", "program_commissions")
MONEY = ("revenue", "won_amount", "commissions", "payouts_paid")
ID_SOURCES: dict[str, Any] = {
    "clicks": Click,
    "events": Event,
    "leads": Lead,
    "lines": CommissionLine,
    "ledger": LedgerTransaction,
}
CLOCK, AUDIT = "clock", "audit"
_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case, as kit/ids.py
AnySelect = Select[*tuple[Any, ...]]  # any row shape: each source has its own columns


class utc_date(FunctionElement[date]):  # lower case: it reads like the SQL function it stands for
    """The UTC calendar day of a stored timestamp, as a DATE, on both databases."""

    type = Date()
    name = "utc_date"
    inherit_cache = True


@compiles(utc_date, "sqlite")
def _utc_date_sqlite(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # SQLite keeps UTC timestamps as text 'YYYY-MM-DD HH:MM:SS…': the first ten characters are the day,
    # in the very text form a DATE column holds there.
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 10)"


@compiles(utc_date)
def _utc_date_default(element: utc_date, compiler: SQLCompiler, **kw: Any) -> str:
    # timestamptz: convert explicitly, the connection's TimeZone setting must not move a day boundary.
    return f"CAST(timezone('UTC', {compiler.process(element.clauses, **kw)}) AS DATE)"


# A literal, not a parameter: PostgreSQL matches GROUP BY expressions by their text.
NONE: ColumnElement[str] = literal_column("''")


def _partner(column: Any) -> ColumnElement[str]:
    return func.coalesce(column, NONE)


# --- ids as watermarks ------------------------------------------------------------------------------------


def id_floor(mark: str, lag: timedelta = LAG) -> str:
    """The smallest id (any prefix: compared after the prefix is put back) made `lag` before `mark` was."""
    prefix, _, rest = mark.partition("_")
    millis = 0
    for char in rest[:10]:
        millis = millis * 32 + _ALPHABET.index(char)
    millis = max(0, millis - int(lag.total_seconds() * 1000))
    chars = []
    for _ in range(10):
        millis, rem = divmod(millis, 32)
        chars.append(_ALPHABET[rem])
    return f"{prefix}_{''.join(reversed(chars))}"


@dataclass
class RollupResult:
    """What a run did: the days it re-rolled per program and the programs whose status totals it refreshed."""

    days: dict[str, list[date]] = field(default_factory=dict)
    status_refreshed: list[str] = field(default_factory=list)
    rebuilt: bool = False

    @property
    def day_count(self) -> int:
        return sum(len(d) for d in self.days.values())


# --- the statements that roll up one program's range of days --------------------------------------------


def _bounds(start: date, end: date) -> tuple[datetime, datetime]:
    return datetime.combine(start, time(), tzinfo=UTC), datetime.combine(end + timedelta(days=1), time(), tzinfo=UTC)


def _per_table(
    partner: Any, day: Any, figures: dict[str, Any], names: tuple[str, ...], where: list[Any], extra: Any = None
) -> AnySelect:
    """One source's rows grouped by partner and day (and currency): its figures, zeros for the others."""
    key = [_partner(partner).label("pid"), day.label("day")]
    if extra is not None:
        key.append(extra.label("currency"))
    values = [figures.get(n, literal(0)).label(n) for n in names]
    return select(*key, *values).where(*where).group_by(*(k.element for k in key))


def _in(column: Any, program_id: str, start: date | None, end: date | None, model: Any) -> list[Any]:
    where = [model.program_id == program_id, column.is_not(None)]
    if start is not None and end is not None:
        lower, upper = _bounds(start, end)
        where += [column >= lower, column < upper]
    return where


def _count_rows(program_id: str, currency: str, start: date | None, end: date | None) -> Subquery:
    def rows(model: Any, at: Any, name: str, *more: Any, figure: Any = None) -> AnySelect:
        where = [*_in(at, program_id, start, end, model), *more]
        figures = {name: func.count() if figure is None else func.sum(figure)}
        return _per_table(model.partner_id, utc_date(at), figures, DAY_FIGURES, where)

    paid = Event.type == "invoice_paid"
    line = CommissionLine
    return union_all(
        rows(Click, Click.at, "clicks"),
        rows(Event, Event.occurred_at, "signups", Event.type == "signup"),
        rows(Event, Event.occurred_at, "conversions", paid),
        rows(Lead, Lead.created_at, "leads"),
        rows(Deal, Deal.won_at, "deals_won", Deal.status == "won"),
        rows(Customer, Customer.first_paid_at, "customers_paid"),
        rows(Event, Event.occurred_at, "program_revenue", paid, Event.currency == currency, figure=Event.amount),
        rows(
            line,
            line.created_at,
            "program_commissions",
            line.status != LineStatus.REJECTED.value,
            line.currency == currency,
            figure=line.amount,
        ),
    ).subquery()


def _money_rows(program_id: str, start: date | None, end: date | None) -> Subquery:
    def rows(model: Any, at: Any, name: str, amount: Any, currency: Any, *more: Any) -> AnySelect:
        where = [*_in(at, program_id, start, end, model), amount.is_not(None), currency.is_not(None), *more]
        return _per_table(model.partner_id, utc_date(at), {name: func.sum(amount)}, MONEY, where, currency)

    paid = PayoutStatus.PAID.value
    return union_all(
        rows(Event, Event.occurred_at, "revenue", Event.amount, Event.currency, Event.type == "invoice_paid"),
        rows(Deal, Deal.won_at, "won_amount", Deal.amount, Deal.currency, Deal.status == "won"),
        rows(
            CommissionLine,
            CommissionLine.created_at,
            "commissions",
            CommissionLine.amount,
            CommissionLine.currency,
            CommissionLine.status != LineStatus.REJECTED.value,
        ),
        rows(Payout, Payout.paid_at, "payouts_paid", Payout.amount, Payout.currency, Payout.status == paid),
    ).subquery()


def _day_filter(model: Any, program_id: str, start: date | None, end: date | None) -> list[Any]:
    where = [model.program_id == program_id]
    if start is not None and end is not None:
        where += [model.day >= start, model.day <= end]
    return where


def reroll(session: Session, program_id: str, start: date | None = None, end: date | None = None) -> None:
    """Rebuild one program's rollup rows for the days start..end (both included; None: every day)."""
    windows.forget(session, program_id, start, end)
    for model in (PartnerDay, PartnerMoney, ProgramDay, ProgramMoney):
        session.execute(delete(model).where(*_day_filter(model, program_id, start, end)))

    currency = session.scalar(select(Program.currency).where(Program.id == program_id)) or ""
    counts = _count_rows(program_id, currency, start, end)
    sums = [func.sum(counts.c[n]) for n in DAY_FIGURES]
    session.execute(
        insert(PartnerDay).from_select(
            ["program_id", "day", "partner_id", *DAY_FIGURES],
            select(literal(program_id), counts.c.day, counts.c.pid, *sums).group_by(counts.c.day, counts.c.pid),
        )
    )
    money = _money_rows(program_id, start, end)
    sums = [func.sum(money.c[n]) for n in MONEY]
    session.execute(
        insert(PartnerMoney).from_select(
            ["program_id", "day", "partner_id", "currency", *MONEY],
            select(literal(program_id), money.c.day, money.c.pid, money.c.currency, *sums).group_by(
                money.c.day, money.c.pid, money.c.currency
            ),
        )
    )
    # The program's days are the sum of its partners' (the unattributed '' row included).
    session.execute(
        insert(ProgramDay).from_select(
            ["program_id", "day", *DAY_FIGURES],
            select(PartnerDay.program_id, PartnerDay.day, *(func.sum(getattr(PartnerDay, n)) for n in DAY_FIGURES))
            .where(*_day_filter(PartnerDay, program_id, start, end))
            .group_by(PartnerDay.program_id, PartnerDay.day),
        )
    )
    session.execute(
        insert(ProgramMoney).from_select(
            ["program_id", "day", "currency", *MONEY],
            select(
                PartnerMoney.program_id,
                PartnerMoney.day,
                PartnerMoney.currency,
                *(func.sum(getattr(PartnerMoney, n)) for n in MONEY),
            )
            .where(*_day_filter(PartnerMoney, program_id, start, end))
            .group_by(PartnerMoney.program_id, PartnerMoney.day, PartnerMoney.currency),
        )
    )


def refresh_commission_status(session: Session, program_id: str) -> None:
    """The program's commission lines now, per partner, currency and status, in one GROUP BY."""
    line = CommissionLine
    session.execute(delete(CommissionStatusTotal).where(CommissionStatusTotal.program_id == program_id))
    session.execute(
        insert(CommissionStatusTotal).from_select(
            ["program_id", "partner_id", "currency", "status", "amount", "lines"],
            select(line.program_id, line.partner_id, line.currency, line.status, func.sum(line.amount), func.count())
            .where(line.program_id == program_id)
            .group_by(line.program_id, line.partner_id, line.currency, line.status),
        )
    )


# --- what changed since the last run -------------------------------------------------------------------


def ranges(days: Iterable[date]) -> list[tuple[date, date]]:
    """Contiguous runs of days: [1, 2, 3, 7] → [(1, 3), (7, 7)]."""
    out: list[tuple[date, date]] = []
    for d in sorted(set(days)):
        if out and (d - out[-1][1]).days == 1:
            out[-1] = (out[-1][0], d)
        else:
            out.append((d, d))
    return out


def _marks(session: Session) -> dict[str, str]:
    return {m.source: m.mark for m in session.scalars(select(RollupMark))}


def _current_marks(session: Session, now: datetime) -> dict[str, str]:
    marks = {name: session.scalar(select(func.max(model.id))) or "" for name, model in ID_SOURCES.items()}
    marks[AUDIT] = str(session.scalar(select(func.max(AuditEntry.seq))) or 0)
    marks[CLOCK] = now.astimezone(UTC).isoformat()
    return marks


def _save_marks(session: Session, marks: dict[str, str], now: datetime) -> None:
    session.execute(delete(RollupMark))
    session.add_all(RollupMark(source=k, mark=v, updated_at=now) for k, v in marks.items())
    session.flush()


def _changed_days(session: Session, old: dict[str, str], lag: timedelta) -> dict[str, set[date]]:
    pairs: list[tuple[str | None, date | None]] = []

    def since_id(name: str) -> Any:
        model = ID_SOURCES[name]
        mark = old.get(name, "")
        return model.id >= id_floor(mark, lag) if mark else literal(True)

    def read(stmt: AnySelect) -> None:
        pairs.extend((p, d) for p, d in session.execute(stmt.distinct()))

    read(select(Click.program_id, utc_date(Click.at)).where(since_id("clicks")))
    read(select(Event.program_id, utc_date(Event.occurred_at)).where(since_id("events")))
    read(select(Lead.program_id, utc_date(Lead.created_at)).where(since_id("leads")))
    read(select(CommissionLine.program_id, utc_date(CommissionLine.created_at)).where(since_id("lines")))
    ledger = since_id("ledger")
    read(
        select(CommissionLine.program_id, utc_date(CommissionLine.created_at))
        .join(
            LedgerTransaction,
            and_(LedgerTransaction.ref_type == "commission_line", LedgerTransaction.ref_id == CommissionLine.id),
        )
        .where(ledger)
    )
    since = datetime.fromisoformat(old[CLOCK]) - lag if CLOCK in old else datetime(1970, 1, 1, tzinfo=UTC)
    read(select(Deal.program_id, utc_date(Deal.won_at)).where(Deal.updated_at >= since, Deal.won_at.is_not(None)))
    read(
        select(Payout.program_id, utc_date(Payout.paid_at)).where(
            Payout.paid_at.is_not(None), (Payout.paid_at >= since) | (Payout.returned_at >= since)
        )
    )
    # A first payment moves a customer's first_paid_at: that day is the payment event's own, read above.
    out: dict[str, set[date]] = defaultdict(set)
    for program_id, day in pairs:
        if program_id is not None and day is not None:
            out[program_id].add(day if isinstance(day, date) else date.fromisoformat(str(day)))
    return out


def _audited_programs(session: Session, old: dict[str, str]) -> set[str]:
    seq = int(old.get(AUDIT, "0"))
    rows = session.scalars(select(AuditEntry.program_id).where(AuditEntry.seq > seq).distinct())
    return {p for p in rows if p is not None}


def rebuild(session: Session, *, now: datetime) -> RollupResult:
    """Every program's rollups from scratch (the first run, or after a repair), then the watermarks."""
    _one_at_a_time(session)
    marks = _current_marks(session, now)
    result = RollupResult(rebuilt=True)
    for program_id in session.scalars(select(Program.id)):
        reroll(session, program_id)
        refresh_commission_status(session, program_id)
        result.status_refreshed.append(program_id)
    _refresh_windows(session, now)
    _save_marks(session, marks, now)
    return result


def _refresh_windows(session: Session, now: datetime) -> None:
    """Re-sum the fixed windows of every program whose days changed or whose windows end before today."""
    today = now.astimezone(UTC).date()
    for program_id in windows.stale(session, session.scalars(select(Program.id)), today):
        windows.refresh(session, program_id, today=today, now=now)


def _one_at_a_time(session: Session) -> None:
    """The periodic job and a weekly report's job may roll up at once; on PostgreSQL the second waits for the
    first to commit (then finds little left to do) instead of failing on the rows the first inserted.
    SQLite has one writer at a time anyway."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROLLUP_LOCK})


def roll_up(session: Session, *, now: datetime, lag: timedelta = LAG) -> RollupResult:
    """Bring the rollups up to date: re-roll every day that changed since the last run (in the caller's
    transaction). The first run rebuilds everything."""
    _one_at_a_time(session)
    old = _marks(session)
    if not old:
        return rebuild(session, now=now)
    marks = _current_marks(session, now)  # read first: what arrives meanwhile is after these, or within LAG
    changed = _changed_days(session, old, lag)
    result = RollupResult()
    for program_id, days in sorted(changed.items()):
        for start, end in ranges(days):
            reroll(session, program_id, start, end)
        result.days[program_id] = sorted(days)
    for program_id in sorted(_audited_programs(session, old) | set(changed)):
        refresh_commission_status(session, program_id)
        result.status_refreshed.append(program_id)
    _refresh_windows(session, now)
    _save_marks(session, marks, now)
    return result
