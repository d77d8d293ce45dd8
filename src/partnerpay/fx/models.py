"""The per-program table of recorded currency rates."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, SmallInteger, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime
from partnerpay.fx.conversion import rate_text


class FxRateRecord(Base):
    """1 `base` = rate `quote` from `rate_date` on, as the program's finance team recorded it.

    The rate is stored exactly as an integer and a power of ten (rate = rate_units / 10**rate_scale,
    "1.0842" is 10842 and 4): integers survive every database and driver unchanged, where a float would
    not and a NUMERIC column comes back as a float from some drivers, and conversion needs exactly these
    two integers for its integer arithmetic.
    """

    __tablename__ = "fx_rates"
    __table_args__ = (UniqueConstraint("program_id", "base", "quote", "rate_date"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    base: Mapped[str] = mapped_column(String(3))
    quote: Mapped[str] = mapped_column(String(3))
    rate_units: Mapped[int] = mapped_column(BigInteger)
    rate_scale: Mapped[int] = mapped_column(SmallInteger)  # 0..10 decimal places
    rate_date: Mapped[date] = mapped_column(Date)  # the day the rate applies from
    source: Mapped[str] = mapped_column(String(200))  # "ECB reference rate", "manual", ...
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(40))

    @property
    def rate(self) -> str:
        """The rate as its exact decimal text ("1.0842")."""
        return rate_text(self.rate_units, self.rate_scale)
