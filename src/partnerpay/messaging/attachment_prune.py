"""Removing attachment files that no row refers to: an upload whose transaction rolled back leaves its file
behind (the file is written before the row, see attachments.py), and nothing else ever removes it.

A file is removed only when no attachment (nor dispute evidence) row has its hash and it has not been written
or re-uploaded for the grace period (a day by default): an upload in flight has written its file but not yet
committed its row, and a file that young is never touched. The job `attachments.prune` runs daily; the CLI
`partnerpay attachments prune [--dry-run]` runs it at once. Each run that removes something writes one audit
row with the count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import SYSTEM, Actor
from partnerpay.disputes.models import DisputeEvidence
from partnerpay.jobs.registry import Handler, JobContext
from partnerpay.jobs.scheduler import Due
from partnerpay.kit.errors import Conflict
from partnerpay.messaging.attachments import AttachmentStore, is_digest
from partnerpay.messaging.models import Attachment

PRUNE_JOB = "attachments.prune"
TEMP_PREFIX = ".upload-"  # write_bytes' files before their rename; one left behind means a crash mid-write
CHUNK = 500  # hashes per IN (...): SQLite binds at most 999 (older builds) per statement


class StoreNotRecorded(Conflict):
    """The database records no attachment at all but the directory holds old files: most likely another
    installation's directory or the wrong database, so nothing is removed."""

    code = "attachment_store_not_recorded"


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: Path
    sha256: str | None  # None for a temporary file left by an interrupted upload
    size: int
    modified: datetime


@dataclass
class PruneResult:
    directory: str
    grace: timedelta
    dry_run: bool
    scanned: int = 0  # files in the store, of any age
    orphans: list[StoredFile] = field(default_factory=list)  # unreferenced and older than the grace
    removed: int = 0
    removed_bytes: int = 0

    @property
    def orphan_bytes(self) -> int:
        return sum(f.size for f in self.orphans)


def stored_files(store: AttachmentStore) -> Iterator[StoredFile]:
    """Every file under the store's two-character shards: files named by their hash, and upload leftovers."""
    if not store.root.is_dir():
        return
    for shard in sorted(store.root.iterdir()):
        if not shard.is_dir() or len(shard.name) != 2:
            continue
        for entry in sorted(shard.iterdir()):
            name = entry.name
            named = is_digest(name) and name[:2] == shard.name
            if not (named or name.startswith(TEMP_PREFIX)) or not entry.is_file():
                continue  # anything else was not put here by partnerpay: left alone
            stat = entry.stat()
            yield StoredFile(entry, name if named else None, stat.st_size, _mtime(stat.st_mtime))


def _mtime(timestamp: float) -> datetime:
    return datetime.fromtimestamp(timestamp, UTC)


def referenced_hashes(session: Session, hashes: list[str]) -> set[str]:
    """Those of `hashes` an attachment or a dispute evidence row refers to (both columns are indexed or small)."""
    found: set[str] = set()
    unique = sorted(set(hashes))
    for i in range(0, len(unique), CHUNK):
        chunk = unique[i : i + CHUNK]
        found.update(session.scalars(select(Attachment.sha256).where(Attachment.sha256.in_(chunk)).distinct()))
        found.update(
            session.scalars(select(DisputeEvidence.sha256).where(DisputeEvidence.sha256.in_(chunk)).distinct())
        )
    return found


def find_orphans(
    session: Session, store: AttachmentStore, *, now: datetime, grace: timedelta | None = None
) -> PruneResult:
    """What a prune would remove, changing nothing."""
    grace = store.orphan_grace if grace is None else grace
    result = PruneResult(directory=str(store.root), grace=grace, dry_run=True)
    cutoff = now - grace
    old: list[StoredFile] = []
    for stored in stored_files(store):
        result.scanned += 1
        if stored.modified < cutoff:
            old.append(stored)
    live = referenced_hashes(session, [f.sha256 for f in old if f.sha256 is not None])
    result.orphans = [f for f in old if f.sha256 is None or f.sha256 not in live]
    return result


def prune_orphans(
    session: Session,
    store: AttachmentStore,
    *,
    now: datetime,
    grace: timedelta | None = None,
    actor: Actor = SYSTEM,
    dry_run: bool = False,
    via: str = "cli",
) -> PruneResult:
    """Remove unreferenced files older than `grace` (default: the store's; none with `dry_run`); one audit row
    when any was removed.

    Refuses (StoreNotRecorded, nothing removed) when the database has no attachment row at all but the
    directory has hashed files to remove: that is a directory of another database, not this one's leftovers.
    """
    grace = store.orphan_grace if grace is None else grace
    if grace <= timedelta(0):
        raise ValueError("the grace period must be positive: an upload in flight has a file but no row yet")
    result = find_orphans(session, store, now=now, grace=grace)
    result.dry_run = dry_run
    hashed = [f for f in result.orphans if f.sha256 is not None]
    if hashed and session.scalar(select(func.count()).select_from(Attachment)) == 0:
        raise StoreNotRecorded(
            f"the database records no attachment, yet {store.root} holds {len(hashed)} file(s) older than "
            f"{_hours(grace)} h; nothing was removed. Check that PARTNERPAY_ATTACHMENTS_DIR and "
            "PARTNERPAY_DATABASE_URL belong to the same installation",
            field="attachments_dir",
        )
    if dry_run:
        return result
    cutoff = now - grace
    for stored in result.orphans:
        if _remove_if_still_old(stored, cutoff):
            result.removed += 1
            result.removed_bytes += stored.size
    if result.removed:
        audit.record(
            session,
            actor=actor,
            action="attachment.prune",
            object_type="attachment_store",
            object_id="attachments",  # one store per installation: its history is every prune
            now=now,
            after={
                "removed": result.removed,
                "bytes": result.removed_bytes,
                "grace_hours": _hours(grace),
                "via": via,
            },
        )
    return result


def _remove_if_still_old(stored: StoredFile, cutoff: datetime) -> bool:
    # Stat again just before removing: re-uploading the same bytes refreshes the file's time (write_bytes)
    # before its row is inserted, so a file touched since the scan belongs to an upload in flight. What is
    # left is the instant between this stat and the unlink; the grace period makes that need a file
    # untouched for a whole day to be re-uploaded in exactly that instant.
    try:
        if _mtime(stored.path.stat().st_mtime) >= cutoff:
            return False
        stored.path.unlink()
    except FileNotFoundError:
        return False  # another prune (a second worker, the CLI) removed it first
    return True


def _hours(grace: timedelta) -> float:
    hours = grace.total_seconds() / 3600
    return int(hours) if hours == int(hours) else round(hours, 2)


def prune_due(session: Session, now: datetime) -> list[Due]:
    """The scheduler's due-check: one prune a day, none while the database records no attachment (then an
    orphan is far more likely another installation's file than this one's: see StoreNotRecorded)."""
    if session.scalar(select(Attachment.id).limit(1)) is None:
        return []
    return [Due(slot=f"{now:%Y-%m-%d}", kind=PRUNE_JOB, payload={})]


def prune_handler(store: Callable[[], AttachmentStore]) -> Handler:
    """Job `attachments.prune` {}: the store (directory, grace) comes from the worker's settings."""

    def run(session: Session, payload: dict[str, Any], context: JobContext) -> None:
        prune_orphans(session, store(), now=context.now, via=f"job {context.job_id}")

    return run
