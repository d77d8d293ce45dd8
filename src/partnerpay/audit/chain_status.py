"""The hash chain's status for the Audit page, verified incrementally.

Verifying millions of rows on every page view would take seconds; instead the monitor remembers the last
row it verified (seq and hash) and, on each look, checks only the rows appended since, continuing the chain
from that hash. It also re-reads the remembered row, so an edit or deletion at the tail shows at once. An
edit deep in rows already verified is found by a full check (`partnerpay verify`, or "Verify all again"
on the page, which resets the monitor).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.audit.service import GENESIS, chain_hash, hashed_fields

BATCH = 5000
MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class ChainStatus:
    ok: bool
    rows_checked: int  # in total since the monitor started (or was reset)
    last_seq: int
    last_hash: str
    checked_at: datetime | None
    problems: tuple[str, ...] = field(default_factory=tuple)
    newly_checked: int = 0  # by this look


START = ChainStatus(ok=True, rows_checked=0, last_seq=0, last_hash=GENESIS, checked_at=None)


def _intact(row: Row[Any]) -> bool:
    """Whether a row's content still gives its stored hash (the same recipe as audit.service.verify_chain)."""
    fields = hashed_fields(
        at=row.at,
        actor_type=row.actor_type,
        actor_id=row.actor_id,
        action=row.action,
        object_type=row.object_type,
        object_id=row.object_id,
        program_id=row.program_id,
        before=row.before,
        after=row.after,
    )
    return bool(chain_hash(row.prev_hash, fields) == row.hash)


def verify_after(session: Session, status: ChainStatus, now: datetime, *, batch: int = BATCH) -> ChainStatus:
    """Continue the chain from `status`: check every row after its last_seq; a new status."""
    problems = list(status.problems)
    if status.last_seq:
        # The remembered row is read again whole: an edit or deletion at the tail shows on the next look.
        tail = session.execute(select(*AuditEntry.__table__.columns).where(AuditEntry.seq == status.last_seq)).first()
        if tail is None or tail.hash != status.last_hash or not _intact(tail):
            problems.append(f"audit row {status.last_seq}: changed or removed after it was verified")
    prev, last_seq, checked = status.last_hash, status.last_seq, 0
    while True:
        rows = session.execute(
            select(*AuditEntry.__table__.columns).where(AuditEntry.seq > last_seq).order_by(AuditEntry.seq).limit(batch)
        ).all()
        if not rows:
            break
        for row in rows:
            if row.prev_hash != prev:
                problems.append(f"audit row {row.seq}: chain broken (prev_hash does not match row before)")
            if not _intact(row):
                problems.append(f"audit row {row.seq}: content does not match its hash")
            prev, last_seq = row.hash, row.seq
            checked += 1
    return replace(
        status,
        ok=not problems,
        rows_checked=status.rows_checked + checked,
        last_seq=last_seq,
        last_hash=prev,
        checked_at=now,
        problems=tuple(problems[:MAX_PROBLEMS]),
        newly_checked=checked,
    )


class ChainMonitor:
    """One per process (app.state): the cached status, advanced under a lock so two page views verify once."""

    def __init__(self) -> None:
        self._status = START
        self._lock = threading.Lock()

    def check(self, session: Session, now: datetime) -> ChainStatus:
        with self._lock:
            self._status = verify_after(session, self._status, now)
            return self._status

    def reset(self) -> None:
        with self._lock:
            self._status = START
