"""The audit log: one row per write, hash-chained so any later edit or deletion is detectable."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, CanonicalJSON, SerialKey, UTCDateTime


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_object", "object_type", "object_id"),
        # The console's audit search: by actor and by action, newest first (issue 8 part 7).
        Index("ix_audit_actor", "actor_id", "seq"),
        Index("ix_audit_action", "action", "seq"),
    )

    seq: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    actor_type: Mapped[str] = mapped_column(String(16))
    actor_id: Mapped[str] = mapped_column(String(40))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(40))
    program_id: Mapped[str | None] = mapped_column(String(40), index=True, default=None)
    before: Mapped[dict[str, Any] | None] = mapped_column(CanonicalJSON, default=None)
    after: Mapped[dict[str, Any] | None] = mapped_column(CanonicalJSON, default=None)
    prev_hash: Mapped[str] = mapped_column(String(64))
    # Not unique-indexed: the chain (each prev_hash = the row before) is what proves integrity.
    hash: Mapped[str] = mapped_column(String(64))


class AuditChainCheck(Base):
    """How far the chain was verified (audit/chain_status.py): one row, shared by every process, so a page
    view verifies only the rows appended since and a restart does not walk the whole log again."""

    __tablename__ = "audit_chain_checks"

    name: Mapped[str] = mapped_column(String(16), primary_key=True)  # "audit_log"
    last_seq: Mapped[int] = mapped_column(SerialKey)
    last_hash: Mapped[str] = mapped_column(String(64))
    rows_checked: Mapped[int] = mapped_column(SerialKey)
    problems: Mapped[list[str]] = mapped_column(JSON, default=list)
    checked_at: Mapped[datetime] = mapped_column(UTCDateTime())
