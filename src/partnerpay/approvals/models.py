"""A program's approval policy, first approvals of lines awaiting a second one, and overdue notices sent."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, BigInteger, Date, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class ApprovalPolicy(Base):
    """One row per program that changed the defaults; a program without a row approves as before (policy.py)."""

    __tablename__ = "approval_policies"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    # Staff roles whose users may approve and reject lines (API keys: the 'approve' scope).
    approver_roles: Mapped[list[str]] = mapped_column(JSON)
    # Minor units of the program currency; None: the rule is off.
    auto_approve_below: Mapped[int | None] = mapped_column(BigInteger, default=None)
    second_approval_above: Mapped[int | None] = mapped_column(BigInteger, default=None)
    batch_second_approval_above: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sla_days: Mapped[int | None] = mapped_column(Integer, default=None)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LineFirstApproval(Base):
    """The first of two approvals of a line above the program's threshold: the line stays pending meanwhile."""

    __tablename__ = "line_first_approvals"

    line_id: Mapped[str] = mapped_column(ForeignKey("commission_lines.id"), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    approved_by: Mapped[str] = mapped_column(String(40))
    approved_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str | None] = mapped_column(Text, default=None)


class OverdueNotice(Base):
    """Approvers were told on `day` that the line is overdue: the key makes it once per line per day."""

    __tablename__ = "overdue_notices"

    line_id: Mapped[str] = mapped_column(ForeignKey("commission_lines.id"), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    sent_at: Mapped[datetime] = mapped_column(UTCDateTime())
