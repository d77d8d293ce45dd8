"""A partner program: currency, hold days, default rate, cookie window, rounding."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class Program(Base):
    __tablename__ = "programs"
    __table_args__ = (
        CheckConstraint("hold_days >= 0", name="hold_days_non_negative"),
        CheckConstraint("default_percent_bp >= 0 AND default_percent_bp <= 10000", name="percent_range"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    currency: Mapped[str] = mapped_column(String(3))
    hold_days: Mapped[int] = mapped_column(Integer)
    default_percent_bp: Mapped[int] = mapped_column(Integer, default=0)
    cookie_days: Mapped[int] = mapped_column(Integer, default=30)
    rounding: Mapped[str] = mapped_column(String(16), default="half_even")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
