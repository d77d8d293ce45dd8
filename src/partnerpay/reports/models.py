"""Rollup tables (derived, rebuilt from the raw tables at will) and the weekly report schedule.

Rollups have no foreign keys: they are a cache of figures, and `partner_id` is '' for clicks that named no
partner. Days are whole UTC days. On SQLite the rollups are WITHOUT ROWID tables, so a program's days lie
together in primary-key order (the top-partners query reads one contiguous range); the (partner_id, day)
indexes serve a partner's series.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Boolean, Date, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime

NO_PARTNER = ""  # the partner_id of clicks (and customers) that named no partner
CLUSTERED = {"sqlite_with_rowid": False}


class _Counts:
    """Counts of one day: each is a plain sum over partners and days."""

    clicks: Mapped[int] = mapped_column(Integer, default=0)
    signups: Mapped[int] = mapped_column(Integer, default=0)  # events of type signup, by occurred_at
    leads: Mapped[int] = mapped_column(Integer, default=0)  # leads registered, by created_at
    deals_won: Mapped[int] = mapped_column(Integer, default=0)  # deals won, by won_at
    conversions: Mapped[int] = mapped_column(Integer, default=0)  # invoice_paid events, by occurred_at
    customers_paid: Mapped[int] = mapped_column(Integer, default=0)  # customers whose first payment was that day
    # The two money figures partners are ranked by, in the program's currency (fixed when the program is made),
    # so that a top-partners read needs this table alone; every currency is in the money tables.
    program_revenue: Mapped[int] = mapped_column(BigInteger, default=0)
    program_commissions: Mapped[int] = mapped_column(BigInteger, default=0)


class _Money:
    """Money of one day in one currency, integer minor units; never summed across currencies."""

    revenue: Mapped[int] = mapped_column(BigInteger, default=0)  # invoice_paid amounts
    won_amount: Mapped[int] = mapped_column(BigInteger, default=0)  # won deals' amounts
    commissions: Mapped[int] = mapped_column(BigInteger, default=0)  # lines created that day, not rejected
    payouts_paid: Mapped[int] = mapped_column(BigInteger, default=0)  # payouts paid that day (by paid_at)


class PartnerDay(_Counts, Base):
    __tablename__ = "report_partner_days"
    __table_args__ = (Index("ix_report_partner_days_partner_day", "partner_id", "day"), CLUSTERED)

    program_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)


class PartnerMoney(_Money, Base):
    __tablename__ = "report_partner_money"
    __table_args__ = (Index("ix_report_partner_money_partner_day", "partner_id", "day"), CLUSTERED)

    program_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)


class ProgramDay(_Counts, Base):
    __tablename__ = "report_program_days"
    __table_args__ = (CLUSTERED,)

    program_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)


class ProgramMoney(_Money, Base):
    __tablename__ = "report_program_money"
    __table_args__ = (CLUSTERED,)

    program_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)


class CommissionStatusTotal(Base):
    """Commission lines now, per partner, currency and status (refreshed for a program when it changed)."""

    __tablename__ = "report_commission_status"
    __table_args__ = (CLUSTERED,)

    program_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    lines: Mapped[int] = mapped_column(Integer, default=0)


class PartnerWindow(Base):
    """A partner's ranking figures summed over the `days` days ending on the program's window day
    (WindowMark.as_of): the dashboards' fixed ranges ("the last 30 days"), summed once per rollup instead of on
    every poll. At 10,000 partners a 30-day top list is a GROUP BY over ~300,000 partner days (over 200 ms on
    SQLite); this is an index range read of the first rows."""

    __tablename__ = "report_partner_windows"
    __table_args__ = (CLUSTERED,)

    program_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    days: Mapped[int] = mapped_column(Integer, primary_key=True)
    partner_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    signups: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0)
    deals_won: Mapped[int] = mapped_column(Integer, default=0)
    program_revenue: Mapped[int] = mapped_column(BigInteger, default=0)
    program_commissions: Mapped[int] = mapped_column(BigInteger, default=0)


# The ranking order of the top-partners read (revenue, conversions, clicks, then id), so it reads the first
# `limit` entries of the index and stops.
Index(
    "ix_report_partner_windows_rank",
    PartnerWindow.program_id,
    PartnerWindow.days,
    PartnerWindow.program_revenue.desc(),
    PartnerWindow.conversions.desc(),
    PartnerWindow.clicks.desc(),
    PartnerWindow.partner_id,
)


class WindowMark(Base):
    """The day a program's windows end on. Present only while they match its partner days: a re-roll of the
    program deletes it, and the refresh after the re-rolls writes it again (reports/windows.py)."""

    __tablename__ = "report_window_marks"

    program_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    as_of: Mapped[date] = mapped_column(Date)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RollupMark(Base):
    """How far the rollup has read one source: the greatest id it saw (ids sort by time), or a time."""

    __tablename__ = "report_rollup_marks"

    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    mark: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReportSchedule(Base):
    """When a program's weekly report goes out (local day and time in its timezone) and to whom."""

    __tablename__ = "report_schedules"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    weekday: Mapped[int] = mapped_column(Integer, default=0)  # 0 = Monday
    hour: Mapped[int] = mapped_column(Integer, default=8)
    minute: Mapped[int] = mapped_column(Integer, default=0)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    staff_ids: Mapped[list[str]] = mapped_column(JSON, default=list)  # staff users who receive it
    send_to_partners: Mapped[bool] = mapped_column(Boolean, default=False)  # the partner version, to each partner
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
