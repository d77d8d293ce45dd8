"""The hash chain's status for the Audit page, verified incrementally.

Verifying millions of rows on every page view would take seconds; instead a checkpoint (audit_chain_checks,
shared by every process and kept across restarts) remembers the last row verified (seq and hash), and each
look checks only the rows appended since, continuing the chain from that hash. It also re-reads the
remembered row whole, so an edit or deletion at the tail shows at once. An edit deep in rows verified
before is found by a full walk (`partnerpay verify`, or "Verify all again" on the page, which resets the
checkpoint).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditChainCheck, AuditEntry
from partnerpay.audit.service import GENESIS, row_intact, walk_chain
from partnerpay.db.engine import unit_of_work

BATCH = 5000
MAX_PROBLEMS = 20


@dataclass(frozen=True, slots=True)
class ChainStatus:
    ok: bool
    rows_checked: int  # in total since the checkpoint was made (or reset)
    last_seq: int
    last_hash: str
    checked_at: datetime | None
    problems: tuple[str, ...] = field(default_factory=tuple)
    newly_checked: int = 0  # by this look


START = ChainStatus(ok=True, rows_checked=0, last_seq=0, last_hash=GENESIS, checked_at=None)


def verify_after(session: Session, status: ChainStatus, now: datetime, *, batch: int = BATCH) -> ChainStatus:
    """Continue the chain from `status`: check every row after its last_seq; a new status."""
    problems = list(status.problems)
    if status.last_seq:
        # The remembered row is read again whole: an edit or deletion at the tail shows on the next look.
        tail = session.execute(select(*AuditEntry.__table__.columns).where(AuditEntry.seq == status.last_seq)).first()
        if tail is None or tail.hash != status.last_hash or not row_intact(tail):
            problems.append(f"audit row {status.last_seq}: changed or removed after it was verified")
    walk = walk_chain(session, after_seq=status.last_seq, prev_hash=status.last_hash, batch=batch)
    problems.extend(walk.problems)
    return replace(
        status,
        ok=not problems,
        rows_checked=status.rows_checked + walk.checked,
        last_seq=walk.last_seq,
        last_hash=walk.last_hash,
        checked_at=now,
        problems=tuple(problems[:MAX_PROBLEMS]),
        newly_checked=walk.checked,
    )


NAME = "audit_log"
_LOCK = threading.Lock()  # one verification at a time in a process; other processes are kept right by the CAS


def stored(session: Session) -> ChainStatus:
    row = session.get(AuditChainCheck, NAME)
    if row is None:
        return START
    return ChainStatus(
        ok=not row.problems,
        rows_checked=row.rows_checked,
        last_seq=row.last_seq,
        last_hash=row.last_hash,
        checked_at=row.checked_at,
        problems=tuple(row.problems),
    )


def _save(session: Session, old: ChainStatus, new: ChainStatus) -> None:
    """Compare-and-set on the checkpoint read: a process that moved it meanwhile checked the same rows."""
    values = {
        "last_seq": new.last_seq,
        "last_hash": new.last_hash,
        "rows_checked": new.rows_checked,
        "problems": list(new.problems),
        "checked_at": new.checked_at,
    }
    if old.checked_at is None:
        table = AuditChainCheck.__table__
        make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        session.execute(make(table).values(name=NAME, **values).on_conflict_do_nothing(index_elements=["name"]))  # type: ignore[arg-type]
        return
    session.execute(
        update(AuditChainCheck)
        .where(
            AuditChainCheck.name == NAME,
            AuditChainCheck.last_seq == old.last_seq,
            AuditChainCheck.rows_checked == old.rows_checked,
        )
        .values(**values)
    )


class ChainMonitor:
    """The chain status from the stored checkpoint, advanced by the rows appended since (read in a read-only
    session; the checkpoint is written in a short transaction of its own)."""

    def __init__(self, read_factory: sessionmaker[Session], write_factory: sessionmaker[Session]) -> None:
        self._read = read_factory
        self._write = write_factory

    def check(self, now: datetime) -> ChainStatus:
        with _LOCK:
            with self._read() as session:
                old = stored(session)
                new = verify_after(session, old, now)
            if new.newly_checked or new.problems != old.problems or old.checked_at is None:
                with unit_of_work(self._write) as session:
                    _save(session, old, new)
            return new

    def reset(self) -> None:
        """Forget the checkpoint: the next check walks the whole chain again."""
        with _LOCK, unit_of_work(self._write) as session:
            session.execute(delete(AuditChainCheck).where(AuditChainCheck.name == NAME))
