"""Alert rules of a program and the alerts they raised (with who acknowledged or snoozed them)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class RuleKind(StrEnum):
    APPROVALS_OVERDUE = "approvals_overdue"
    DEAL_STALE = "deal_stale"
    PARTNER_INACTIVE = "partner_inactive"
    PAYOUT_FAILED = "payout_failed"
    SPIKE = "spike"
    FRAUD_FLAG = "fraud_flag"
    INTEGRATION_SILENT = "integration_silent"


class AlertStatus(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"


class AlertRule(Base):
    __tablename__ = "alert_rules"
    __table_args__ = (Index("ix_alert_rules_program_enabled", "program_id", "enabled"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    kind: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    params: Mapped[dict[str, Any]] = mapped_column(JSON)  # thresholds of the kind (alerts/rules.py)
    # {"owner": bool, "team_roles": [...], "emails": [...], "email": bool}
    recipients: Mapped[dict[str, Any]] = mapped_column(JSON)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Alert(Base):
    """Raised once per (rule, subject, period): the unique key is what makes a rerun of the evaluation harmless."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("rule_id", "subject_type", "subject_id", "period"),
        Index("ix_alerts_program_status_raised", "program_id", "status", "raised_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    rule_id: Mapped[str] = mapped_column(ForeignKey("alert_rules.id"))
    kind: Mapped[str] = mapped_column(String(32))
    subject_type: Mapped[str] = mapped_column(String(32))  # partner, deal, payout, fraud_flag, integration
    subject_id: Mapped[str] = mapped_column(String(80))
    period: Mapped[str] = mapped_column(String(64))  # a day, or the start of the episode (last update, ...)
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), default=None)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    title: Mapped[str] = mapped_column(String(300))
    detail: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    notified: Mapped[list[str]] = mapped_column(JSON)  # the addresses emailed
    status: Mapped[str] = mapped_column(String(16), default=AlertStatus.OPEN.value)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    acknowledged_by: Mapped[str | None] = mapped_column(String(40), default=None)
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    snoozed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    snoozed_by: Mapped[str | None] = mapped_column(String(40), default=None)
