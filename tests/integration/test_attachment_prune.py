"""Removing attachment files no row refers to: only old orphans go, referenced and young files stay, one audit
row counts them; the daily job and `partnerpay attachments prune [--dry-run]`."""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.cli import app
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.scheduler import PeriodicTask, Scheduler
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.attachment_prune import (
    PRUNE_JOB,
    StoreNotRecorded,
    find_orphans,
    prune_due,
    prune_orphans,
)
from partnerpay.messaging.attachments import AttachmentStore, store_attachment, write_bytes
from partnerpay.messaging.models import Attachment
from partnerpay.partners.models import Partner
from partnerpay.settings import Settings
from tests import factories

STAFF = Actor(ActorType.STAFF, "usr_staff", frozenset({"read", "write"}), label="pm@example.com")
DAY = timedelta(days=1)


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(root=tmp_path / "attachments", max_bytes=4096)


@pytest.fixture
def partner(session: Session, clock: FixedClock) -> Partner:
    prog = factories.program(session, clock.now())
    return factories.partner(session, prog, clock.now(), "Acme")


def upload(session: Session, store: AttachmentStore, partner: Partner, data: bytes, now: datetime) -> Attachment:
    return store_attachment(session, store, actor=STAFF, program_id=partner.program_id, partner_id=partner.id,
                            filename="note.txt", declared_type="text/plain", data=data, now=now)  # fmt: skip


def age(store: AttachmentStore, data: bytes, at: datetime) -> Path:
    """Set the file's time as if it was last written at `at`."""
    path = store.path_for(hashlib.sha256(data).hexdigest())
    os.utime(path, (at.timestamp(), at.timestamp()))
    return path


def orphan(store: AttachmentStore, data: bytes, at: datetime) -> Path:
    """A file written by an upload whose row never committed."""
    write_bytes(store, data)
    return age(store, data, at)


def prunes(session: Session) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == "attachment.prune")))


class TestPruneOrphans:
    def test_only_old_unreferenced_files_are_removed_and_one_audit_row_counts_them(
        self, session: Session, store: AttachmentStore, partner: Partner, clock: FixedClock
    ) -> None:
        now = clock.now()
        upload(session, store, partner, b"kept: a row refers to me\n", now - 5 * DAY)
        kept = age(store, b"kept: a row refers to me\n", now - 5 * DAY)
        gone = [orphan(store, b"rolled back 1\n", now - 2 * DAY), orphan(store, b"rolled back 2\n", now - 30 * DAY)]
        young = orphan(store, b"upload in flight\n", now - timedelta(hours=23))
        stray = store.root / "ab" / ".upload-x1y2"  # a crash between writing and renaming
        stray.parent.mkdir(exist_ok=True)
        stray.write_bytes(b"half")
        os.utime(stray, ((now - 3 * DAY).timestamp(),) * 2)
        foreign = store.root / "README"  # not put there by partnerpay
        foreign.write_text("keep")
        os.utime(foreign, ((now - 90 * DAY).timestamp(),) * 2)
        session.commit()

        result = prune_orphans(session, store, now=now)
        session.commit()

        assert result.removed == 3 and result.scanned == 5
        assert result.removed_bytes == len(b"rolled back 1\n") + len(b"rolled back 2\n") + 4
        assert not any(p.exists() for p in [*gone, stray])
        assert kept.exists() and young.exists() and foreign.exists()
        [entry] = prunes(session)
        assert entry.object_type == "attachment_store" and entry.actor_type == "system"
        assert entry.after == {"removed": 3, "bytes": result.removed_bytes, "grace_hours": 24, "via": "cli"}

    def test_a_rolled_back_upload_leaves_a_file_the_prune_removes_a_day_later(
        self, session: Session, store: AttachmentStore, partner: Partner, clock: FixedClock
    ) -> None:
        session.commit()
        attachment = upload(session, store, partner, b"never committed\n", clock.now())
        path = store.path_for(attachment.sha256)
        session.rollback()
        assert path.exists() and session.scalar(select(Attachment.id)) is None
        age(store, b"never committed\n", clock.now())
        upload(session, store, partner, b"committed\n", clock.now())
        session.commit()
        assert prune_orphans(session, store, now=clock.now() + timedelta(hours=23)).removed == 0
        assert prune_orphans(session, store, now=clock.now() + DAY + timedelta(seconds=1)).removed == 1
        assert not path.exists()
        assert len(find_orphans(session, store, now=clock.now() + 10 * DAY).orphans) == 0

    def test_uploading_an_orphans_bytes_again_makes_it_young_so_it_is_spared(
        self, session: Session, store: AttachmentStore, partner: Partner, clock: FixedClock
    ) -> None:
        upload(session, store, partner, b"other\n", clock.now())
        session.commit()
        path = orphan(store, b"same bytes\n", clock.now() - 10 * DAY)
        write_bytes(store, b"same bytes\n")  # the new upload's file step; its row is not committed yet
        real_now = datetime.fromtimestamp(time.time()).astimezone()
        assert prune_orphans(session, store, now=real_now).removed == 0
        assert path.exists()

    def test_dry_run_lists_and_removes_nothing(
        self, session: Session, store: AttachmentStore, partner: Partner, clock: FixedClock
    ) -> None:
        upload(session, store, partner, b"referenced\n", clock.now() - 5 * DAY)
        age(store, b"referenced\n", clock.now() - 5 * DAY)
        path = orphan(store, b"orphan\n", clock.now() - 2 * DAY)
        session.commit()
        result = prune_orphans(session, store, now=clock.now(), dry_run=True)
        assert [f.path for f in result.orphans] == [path] and result.removed == 0
        assert path.exists() and prunes(session) == []

    def test_files_of_a_database_that_records_no_attachment_are_never_removed(
        self, session: Session, store: AttachmentStore, clock: FixedClock
    ) -> None:
        path = orphan(store, b"another installation's file\n", clock.now() - 9 * DAY)
        with pytest.raises(StoreNotRecorded) as caught:
            prune_orphans(session, store, now=clock.now())
        assert caught.value.field == "attachments_dir" and "records no attachment" in caught.value.message
        assert path.exists()

    def test_a_missing_directory_is_nothing_to_do(self, session: Session, tmp_path: Path, clock: FixedClock) -> None:
        result = prune_orphans(session, AttachmentStore(root=tmp_path / "absent"), now=clock.now())
        assert (result.scanned, result.removed) == (0, 0)


class TestDailyJob:
    def test_due_once_a_day_and_only_once_attachments_exist(
        self, session: Session, store: AttachmentStore, partner: Partner, clock: FixedClock
    ) -> None:
        assert prune_due(session, clock.now()) == []
        upload(session, store, partner, b"first\n", clock.now())
        [due] = prune_due(session, clock.now())
        assert (due.kind, due.slot) == (PRUNE_JOB, f"{clock.now():%Y-%m-%d}")

    def test_the_worker_prunes_the_settings_directory(
        self,
        session: Session,
        session_factory: sessionmaker[Session],
        partner: Partner,
        clock: FixedClock,
        tmp_path: Path,
    ) -> None:
        settings = Settings(
            secret_key="p" * 40, attachments_dir=str(tmp_path / "files"), attachment_orphan_grace_hours=2
        )
        store = AttachmentStore.from_settings(settings)
        upload(session, store, partner, b"kept\n", clock.now())
        gone = orphan(store, b"orphan\n", clock.now() - timedelta(hours=3))
        young = orphan(store, b"young orphan\n", clock.now() - timedelta(hours=1))
        session.commit()
        scheduler = Scheduler([PeriodicTask("attachments.prune", prune_due)])
        worker = Worker(session_factory, build_registry(settings), clock=clock, scheduler=scheduler)
        assert worker.run_periodic(force=True) == 1
        assert worker.run_periodic(force=True) == 0  # today's slot is taken
        assert worker.run_pending() == 1
        assert not gone.exists() and young.exists() and store.path_for(hashlib.sha256(b"kept\n").hexdigest()).exists()
        session.expire_all()
        job = session.scalars(select(OutboxJob).where(OutboxJob.kind == PRUNE_JOB)).one()
        assert job.status == JobStatus.DONE
        [entry] = prunes(session)
        assert entry.after is not None and entry.after["removed"] == 1 and entry.after["via"] == f"job {job.id}"


class TestCli:
    def test_dry_run_then_prune(
        self, database_url: str, session: Session, partner: Partner, clock: FixedClock, tmp_path: Path
    ) -> None:
        files = tmp_path / "files"
        store = AttachmentStore(root=files)
        real_now = datetime.fromtimestamp(time.time()).astimezone()
        upload(session, store, partner, b"referenced\n", clock.now())
        age(store, b"referenced\n", real_now - 3 * DAY)
        path = orphan(store, b"orphan\n", real_now - 3 * DAY)
        session.commit()
        session.rollback()  # end the read transaction: on SQLite it would hold the lock the command needs
        cli = CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_ATTACHMENTS_DIR": str(files)})

        dry = cli.invoke(app, ["attachments", "prune", "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "1 of 2 file(s)" in dry.output and "nothing was removed" in dry.output
        assert path.name in dry.output and path.exists()

        real = cli.invoke(app, ["attachments", "prune"])
        assert real.exit_code == 0, real.output
        assert "Removed 1 of 2 file(s)" in real.output and not path.exists()
        assert [e.after["removed"] for e in prunes(session) if e.after] == [1]

    def test_a_database_without_attachments_is_refused_with_exit_1(
        self, database_url: str, store: AttachmentStore, tmp_path: Path
    ) -> None:
        path = orphan(store, b"whose?\n", datetime.fromtimestamp(time.time()).astimezone() - 3 * DAY)
        cli = CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_ATTACHMENTS_DIR": str(store.root)})
        answer = cli.invoke(app, ["attachments", "prune"])
        assert answer.exit_code == 1 and "records no attachment" in answer.output
        assert path.exists()
