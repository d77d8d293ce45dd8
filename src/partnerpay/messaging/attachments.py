"""Uploaded files (message attachments, dispute evidence): bytes on disk under their SHA-256, a row in the database.

Only a short allow-list of types is accepted, decided by the file's first bytes (its magic number),
not by the name or the type the browser declares. The file is written before the row: a transaction
that rolls back leaves at most an unreferenced file (removed a day later by attachment_prune.py), never a row
without its bytes. Reading a file
back checks its hash, so a file changed on disk is refused rather than served.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.kit.errors import NotFound, PartnerpayError, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.uploads import read_at_most
from partnerpay.messaging.models import Attachment
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.settings import Settings

DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_ORPHAN_GRACE = timedelta(days=1)
ALLOWED_TYPES = ("application/pdf", "image/png", "image/jpeg", "text/plain", "text/csv")
GENERIC_TYPES = frozenset({"", "application/octet-stream", "binary/octet-stream"})
MAX_FILENAME = 255
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class AttachmentTooLarge(PartnerpayError):
    code = "attachment_too_large"
    status = 413


class UnsupportedAttachment(PartnerpayError):
    code = "unsupported_attachment_type"
    status = 422


class AttachmentCorrupted(PartnerpayError):
    """The stored bytes no longer match the hash recorded at upload: never served."""

    code = "attachment_corrupted"
    status = 500


@dataclass(frozen=True)
class AttachmentStore:
    """Where files live and how large they may be; built from settings by the entry point."""

    root: Path
    max_bytes: int = DEFAULT_MAX_BYTES
    # A file no row refers to is removed (attachment_prune.py) only once it is this old: an upload in
    # flight has written its file but not yet committed its row.
    orphan_grace: timedelta = DEFAULT_ORPHAN_GRACE

    @classmethod
    def from_settings(cls, settings: Settings) -> AttachmentStore:
        return cls(
            root=Path(settings.attachments_dir),
            max_bytes=settings.attachment_max_bytes,
            orphan_grace=timedelta(hours=settings.attachment_orphan_grace_hours),
        )

    def path_for(self, sha256: str) -> Path:
        if not is_digest(sha256):
            raise ValueError(f"not a SHA-256 hex digest: {sha256!r}")
        return self.root / sha256[:2] / sha256

    def limit_text(self) -> str:
        return describe_size(self.max_bytes)


def is_digest(text: str) -> bool:
    """A SHA-256 in lowercase hex, the only names files have in the store."""
    return _SHA256.match(text) is not None


def describe_size(size: int) -> str:
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KB"
    return f"{size} bytes"


def too_large(store: AttachmentStore, *, field: str = "file") -> AttachmentTooLarge:
    return AttachmentTooLarge(
        f"the file is larger than the limit of {store.limit_text()}", field=field, limit_bytes=store.max_bytes
    )


def read_limited(stream: IO[bytes], store: AttachmentStore, *, field: str = "file") -> bytes:
    """Read an upload, refusing (413, naming the limit) as soon as it passes the store's limit."""
    return read_at_most(stream, store.max_bytes, lambda: too_large(store, field=field))


def sniff(data: bytes) -> str | None:
    """The allowed type the bytes really are, or None. Text is UTF-8 without NUL or control bytes."""
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if any(ord(ch) < 32 and ch not in "\t\r\n\f" for ch in text):
        return None
    return "text/plain"


def decide_type(data: bytes, *, declared: str, filename: str, field: str = "file") -> str:
    """The stored content type: what the bytes are, which must agree with what was declared."""
    sniffed = sniff(data)
    allowed = ", ".join(ALLOWED_TYPES)
    declared = declared.split(";")[0].strip().lower()
    if sniffed is None:
        raise UnsupportedAttachment(
            f"{filename!r} is not one of the accepted types ({allowed}): its content is not recognised",
            field=field,
            allowed=list(ALLOWED_TYPES),
        )
    if sniffed == "text/plain":
        # Text has no magic number: CSV and plain text are told apart by the declared type or the name.
        if declared == "text/csv" or (declared in GENERIC_TYPES | {"text/plain"} and filename.lower().endswith(".csv")):
            sniffed = "text/csv"
        if declared not in GENERIC_TYPES | {"text/plain", "text/csv"}:
            raise _mismatch(filename, declared, sniffed, field)
        return sniffed
    if declared not in GENERIC_TYPES and declared != sniffed:
        raise _mismatch(filename, declared, sniffed, field)
    return sniffed


def _mismatch(filename: str, declared: str, sniffed: str, field: str) -> UnsupportedAttachment:
    return UnsupportedAttachment(
        f"{filename!r} was sent as {declared} but its content is {sniffed}", field=field, allowed=list(ALLOWED_TYPES)
    )


def clean_filename(filename: str, *, field: str = "file") -> str:
    """The name without any directory part or control characters (it is only ever shown and offered back)."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable()).strip()
    if not name or name in (".", ".."):
        raise ValidationError("the file needs a name", field=field)
    return name[-MAX_FILENAME:]


def write_bytes(store: AttachmentStore, data: bytes) -> str:
    """Store the bytes under their SHA-256 (once: the same file uploaded twice is one file); returns the hash."""
    digest = hashlib.sha256(data).hexdigest()
    path = store.path_for(digest)
    if path.exists() and path.stat().st_size == len(data):
        # Fresh time: the prune (attachment_prune.py) spares files younger than its grace period, and this
        # file may be an orphan that this upload's row, not yet committed, is about to refer to again.
        os.utime(path)
        return digest
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write aside and rename: a reader never sees half a file, and a crash leaves no file under the hash.
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return digest


def side_of(actor: Actor) -> str:
    if actor.type is ActorType.PARTNER:
        return "partner"
    if actor.type is ActorType.SYSTEM:
        return "system"
    return "staff"


def store_attachment(
    session: Session,
    store: AttachmentStore,
    *,
    actor: Actor,
    program_id: str,
    partner_id: str | None,
    filename: str,
    declared_type: str,
    data: bytes,
    now: datetime,
    field: str = "file",
) -> Attachment:
    """Check (size 413, type 422, each naming the limit or the accepted types), store the file, record it.

    A partner can only upload for itself; the row and its audit entry are in the caller's transaction.
    """
    if len(data) > store.max_bytes:
        raise too_large(store, field=field)
    if not data:
        raise ValidationError("the file is empty", field=field)
    name = clean_filename(filename, field=field)
    content_type = decide_type(data, declared=declared_type, filename=name, field=field)
    if partner_id is not None:
        partner = session.get(Partner, partner_id)
        if partner is None or not actor.sees(partner.program_id, partner.id) or partner.program_id != program_id:
            raise NotFound(f"partner {partner_id} not found", field="partner_id")
    elif actor.partner_id is not None:
        raise NotFound(f"program {program_id} not found", field="program_id")
    if session.get(Program, program_id) is None or not actor.sees_program(program_id):
        raise NotFound(f"program {program_id} not found", field="program_id")
    digest = write_bytes(store, data)
    attachment = Attachment(
        id=new_id("file"),
        program_id=program_id,
        partner_id=partner_id,
        sha256=digest,
        size=len(data),
        content_type=content_type,
        filename=name,
        uploaded_side=side_of(actor),
        uploaded_by=actor.id,
        created_at=now,
    )
    session.add(attachment)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="attachment.upload",
        object_type="attachment",
        object_id=attachment.id,
        program_id=program_id,
        after=describe(attachment),
        now=now,
    )
    return attachment


def describe(attachment: Attachment) -> dict[str, Any]:
    return {
        "id": attachment.id,
        "partner_id": attachment.partner_id,
        "sha256": attachment.sha256,
        "size": attachment.size,
        "content_type": attachment.content_type,
        "filename": attachment.filename,
    }


def get_attachment(session: Session, actor: Actor, attachment_id: str) -> Attachment:
    """The record, or 404 when it does not exist or is another program's or partner's."""
    attachment = session.get(Attachment, attachment_id)
    if attachment is None or not actor.sees_program(attachment.program_id):
        raise NotFound(f"attachment {attachment_id} not found", field="attachment_id")
    if actor.partner_id is not None and attachment.partner_id != actor.partner_id:
        raise NotFound(f"attachment {attachment_id} not found", field="attachment_id")
    return attachment


def read_attachment(
    session: Session, store: AttachmentStore, *, actor: Actor, attachment_id: str
) -> tuple[Attachment, bytes]:
    """The record and its bytes, after checking the bytes still hash to what was recorded."""
    attachment = get_attachment(session, actor, attachment_id)
    return attachment, read_verified(store, attachment)


def read_verified(store: AttachmentStore, attachment: Attachment) -> bytes:
    path = store.path_for(attachment.sha256)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AttachmentCorrupted(f"the file of attachment {attachment.id} is missing from the store") from None
    if hashlib.sha256(data).hexdigest() != attachment.sha256 or len(data) != attachment.size:
        raise AttachmentCorrupted(f"the file of attachment {attachment.id} does not match its recorded SHA-256")
    return data


def attachments_for(
    session: Session, actor: Actor, attachment_ids: list[str], *, partner_id: str | None
) -> list[Attachment]:
    """Attachments the actor may attach to something of `partner_id`: each visible and of that partner (else 404)."""
    found = []
    for attachment_id in dict.fromkeys(attachment_ids):
        attachment = get_attachment(session, actor, attachment_id)
        if partner_id is not None and attachment.partner_id not in (partner_id, None):
            raise NotFound(f"attachment {attachment_id} not found", field="attachment_ids")
        found.append(attachment)
    return found
