"""Attachments: bytes outside the database under their SHA-256, types decided by content, limits named."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import NotFound, ValidationError
from partnerpay.messaging.attachments import (
    AttachmentCorrupted,
    AttachmentStore,
    AttachmentTooLarge,
    UnsupportedAttachment,
    read_attachment,
    read_limited,
    sniff,
    store_attachment,
)
from partnerpay.messaging.models import Attachment
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from tests import factories

STAFF = Actor(ActorType.STAFF, "usr_staff", frozenset({"read", "write"}), label="pm@example.com")
PDF = b"%PDF-1.7\n1 0 obj << >> endobj\ntrailer\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def as_partner(partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, "pu_" + partner.id[4:], frozenset({"read"}), program_id=partner.program_id,
                 partner_id=partner.id, label=f"{partner.name}@portal")  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> AttachmentStore:
    return AttachmentStore(root=tmp_path / "attachments", max_bytes=1024)


@pytest.fixture
def world(session: Session, clock: FixedClock) -> tuple[Program, Partner, Partner]:
    prog = factories.program(session, clock.now())
    acme = factories.partner(session, prog, clock.now(), "Acme")
    return prog, acme, factories.partner(session, prog, clock.now(), "Beta")


def upload(session: Session, store: AttachmentStore, actor: Actor, partner: Partner, data: bytes, clock: FixedClock,
           name: str = "evidence.pdf", declared: str = "application/pdf") -> Attachment:  # fmt: skip
    return store_attachment(session, store, actor=actor, program_id=partner.program_id, partner_id=partner.id,
                            filename=name, declared_type=declared, data=data, now=clock.now())  # fmt: skip


class TestStoreAttachment:
    def test_the_file_lives_on_disk_under_its_hash_and_the_row_describes_it(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, _ = world
        att = upload(session, store, as_partner(acme), acme, PDF, clock)
        digest = hashlib.sha256(PDF).hexdigest()
        assert att.id.startswith("file_") and att.sha256 == digest and att.size == len(PDF)
        assert att.content_type == "application/pdf" and att.filename == "evidence.pdf"
        assert (store.root / digest[:2] / digest).read_bytes() == PDF
        audit = session.scalars(select(AuditEntry).where(AuditEntry.object_id == att.id)).one()
        assert audit.action == "attachment.upload" and (audit.after or {})["sha256"] == digest

    @pytest.mark.parametrize(
        ("data", "name", "declared", "expected"),
        [
            (PNG, "shot.png", "image/png", "image/png"),
            (JPEG, "photo.jpg", "image/jpeg", "image/jpeg"),
            (b"invoice 42 was not credited\n", "note.txt", "text/plain", "text/plain"),
            (b"date,amount\n2026-01-01,12.00\n", "rows.csv", "text/csv", "text/csv"),
            (b"date,amount\n", "rows.csv", "application/octet-stream", "text/csv"),
            (PDF, "x.pdf", "", "application/pdf"),
        ],
    )
    def test_allowed_types_are_recognised_by_their_content(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock,
        data: bytes, name: str, declared: str, expected: str,
    ) -> None:  # fmt: skip
        _, acme, _ = world
        assert upload(session, store, STAFF, acme, data, clock, name, declared).content_type == expected

    def test_an_executable_renamed_to_pdf_is_refused_with_the_accepted_types(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, _ = world
        with pytest.raises(UnsupportedAttachment) as caught:
            upload(session, store, STAFF, acme, b"MZ\x90\x00\x03\x00\x00\x00", clock, "invoice.pdf")
        assert caught.value.status == 422 and caught.value.field == "file"
        assert "application/pdf, image/png" in caught.value.message
        assert session.scalar(select(Attachment.id)) is None and not store.root.exists()

    def test_a_declared_type_that_disagrees_with_the_content_is_refused(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, _ = world
        with pytest.raises(UnsupportedAttachment, match="sent as image/png but its content is application/pdf"):
            upload(session, store, STAFF, acme, PDF, clock, "x.png", "image/png")
        with pytest.raises(UnsupportedAttachment, match="sent as text/html"):
            upload(session, store, STAFF, acme, b"<script>alert(1)</script>", clock, "x.html", "text/html")

    def test_a_file_over_the_limit_is_413_naming_the_limit(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, _ = world
        with pytest.raises(AttachmentTooLarge) as caught:
            upload(session, store, STAFF, acme, PDF + b"x" * 1024, clock)
        assert caught.value.status == 413 and "1 KB" in caught.value.message
        assert caught.value.to_dict()["limit_bytes"] == 1024
        with pytest.raises(AttachmentTooLarge):
            read_limited(io.BytesIO(b"x" * 1025), store)
        assert read_limited(io.BytesIO(b"x" * 1024), store) == b"x" * 1024

    def test_an_empty_file_and_a_path_in_the_name_are_handled(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, _ = world
        with pytest.raises(ValidationError, match="empty"):
            upload(session, store, STAFF, acme, b"", clock)
        att = upload(session, store, STAFF, acme, PDF, clock, "../../etc/passwd.pdf")
        assert att.filename == "passwd.pdf"

    def test_a_partner_cannot_upload_for_another_partner(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, beta = world
        with pytest.raises(NotFound):
            upload(session, store, as_partner(acme), beta, PDF, clock)

    def test_the_same_file_twice_is_stored_once(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, beta = world
        a = upload(session, store, STAFF, acme, PDF, clock)
        b = upload(session, store, STAFF, beta, PDF, clock)
        assert a.id != b.id and a.sha256 == b.sha256
        assert [p.name for p in store.root.rglob("*") if p.is_file()] == [a.sha256]


class TestReadAttachment:
    def test_reading_back_returns_the_bytes(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, _ = world
        att = upload(session, store, as_partner(acme), acme, PDF, clock)
        record, data = read_attachment(session, store, actor=as_partner(acme), attachment_id=att.id)
        assert record.id == att.id and data == PDF

    def test_another_partner_gets_404(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, beta = world
        att = upload(session, store, as_partner(acme), acme, PDF, clock)
        with pytest.raises(NotFound):
            read_attachment(session, store, actor=as_partner(beta), attachment_id=att.id)

    def test_a_file_changed_on_disk_is_refused(
        self, session: Session, store: AttachmentStore, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, acme, _ = world
        att = upload(session, store, STAFF, acme, PDF, clock)
        path = store.path_for(att.sha256)
        tampered = bytearray(PDF)
        tampered[-2] ^= 1
        path.write_bytes(bytes(tampered))
        with pytest.raises(AttachmentCorrupted, match="does not match its recorded SHA-256"):
            read_attachment(session, store, actor=STAFF, attachment_id=att.id)
        path.unlink()
        with pytest.raises(AttachmentCorrupted, match="missing"):
            read_attachment(session, store, actor=STAFF, attachment_id=att.id)


class TestSniff:
    def test_binary_garbage_and_control_characters_are_not_text(self) -> None:
        assert sniff(b"\x00\x01\x02") is None
        assert sniff(b"\xff\xfe\xfa") is None
        assert sniff("café, 12.00\n".encode()) == "text/plain"
