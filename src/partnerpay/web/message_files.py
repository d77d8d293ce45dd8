"""Attachments on web pages and the API: the store from settings, uploads saved with a message, safe downloads."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from fastapi import Request, Response, UploadFile
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.messaging.attachments import AttachmentStore, read_limited, read_verified, store_attachment
from partnerpay.messaging.models import Attachment


def store_of(request: Request) -> AttachmentStore:
    return AttachmentStore.from_settings(request.app.state.settings)


def read_uploads(files: Sequence[UploadFile] | None, store: AttachmentStore) -> list[tuple[str, str, bytes]]:
    """(filename, declared type, bytes) of each file chosen in a form (413 naming the limit, before any write)."""
    chosen = [f for f in files or [] if f.filename]
    return [(f.filename or "", f.content_type or "", read_limited(f.file, store)) for f in chosen]


def save_uploads(
    session: Session,
    store: AttachmentStore,
    uploads: list[tuple[str, str, bytes]],
    *,
    actor: Actor,
    program_id: str,
    partner_id: str,
    now: datetime,
) -> list[str]:
    """Store each upload for the partner; returns the attachment ids, in the caller's transaction."""
    return [
        store_attachment(
            session, store, actor=actor, program_id=program_id, partner_id=partner_id, filename=name,
            declared_type=declared, data=data, now=now,
        ).id
        for name, declared, data in uploads
    ]  # fmt: skip


def attachment_response(store: AttachmentStore, attachment: Attachment) -> Response:
    """The verified bytes as a download: never rendered inline, never sniffed into HTML by the browser."""
    data = read_verified(store, attachment)
    safe = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in attachment.filename) or "attachment"
    headers = {
        "Content-Disposition": f'attachment; filename="{safe}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'",
        "X-Attachment-SHA256": attachment.sha256,
    }
    return Response(data, media_type=attachment.content_type, headers=headers)
