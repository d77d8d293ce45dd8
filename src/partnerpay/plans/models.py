"""Plans, their versions (rules frozen once published) and their assignments to a program, group or partner."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, CanonicalJSON, UTCDateTime


class VersionStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    # A version replaced by a newer published one: it still applies to times before its successor's effective_from.
    ARCHIVED = "archived"


class AssignmentScope(StrEnum):
    PROGRAM = "program"
    GROUP = "group"
    PARTNER = "partner"


class Plan(Base):
    __tablename__ = "plans"
    __table_args__ = (UniqueConstraint("program_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PlanVersion(Base):
    """One version of a plan's rules. Only a draft's rules change; a published version is never edited."""

    __tablename__ = "plan_versions"
    __table_args__ = (UniqueConstraint("plan_id", "version"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=VersionStatus.DRAFT.value)
    # The canonical JSON text of the validated rules (plans.rules.Rule), kept byte-exact.
    rules: Mapped[list[dict[str, Any]]] = mapped_column(CanonicalJSON())
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Set when published: from when this version applies (a draft may carry the wanted date).
    effective_from: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    published_by: Mapped[str | None] = mapped_column(String(80), default=None)
    archived_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class PlanAssignment(Base):
    """A plan applied to the whole program, to a group (override) or to one partner (exception with a reason).

    Removing an assignment sets ended_at instead of deleting it, so resolution at a past time stays answerable.
    """

    __tablename__ = "plan_assignments"
    __table_args__ = (Index("ix_plan_assignments_program_scope", "program_id", "scope"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    plan_id: Mapped[str] = mapped_column(ForeignKey("plans.id"), index=True)
    scope: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[str | None] = mapped_column(ForeignKey("partner_groups.id"), default=None)
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True, default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    effective_from: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(80))
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    ended_by: Mapped[str | None] = mapped_column(String(80), default=None)
