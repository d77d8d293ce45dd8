"""Evidence files on a dispute: stored by messaging/attachments (outside the database, under their SHA-256,
type and size checked there: 413 naming the limit, 422 naming the accepted types) and linked here."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.disputes.access import get_dispute, is_partner
from partnerpay.disputes.models import WAITING, DisputeEvidence
from partnerpay.kit.errors import Forbidden, InvalidTransition, ValidationError
from partnerpay.messaging.attachments import AttachmentStore, store_attachment

MAX_FILES = 20


def add_evidence(
    session: Session, store: AttachmentStore, *, actor: Actor, dispute_id: str, filename: str, declared_type: str,
    data: bytes, now: datetime,
) -> DisputeEvidence:  # fmt: skip
    """Attach one file to a dispute that still waits for an answer (the partner's own, or any for the team)."""
    dispute = get_dispute(session, actor, dispute_id)
    if not is_partner(actor) and not actor.can("write"):
        raise Forbidden(f"adding evidence needs the 'write' scope, which {actor.type.value} {actor.id} lacks")
    if dispute.status not in WAITING:
        raise InvalidTransition(f"dispute {dispute.id} is {dispute.status}: evidence can no longer be added",
                                field="status")  # fmt: skip
    count = session.scalar(
        select(func.count()).select_from(DisputeEvidence).where(DisputeEvidence.dispute_id == dispute.id)
    )
    if (count or 0) >= MAX_FILES:
        raise ValidationError(f"a dispute holds at most {MAX_FILES} evidence files", field="file")
    attachment = store_attachment(
        session, store, actor=actor, program_id=dispute.program_id, partner_id=dispute.partner_id,
        filename=filename, declared_type=declared_type, data=data, now=now,
    )  # fmt: skip
    item = DisputeEvidence(
        dispute_id=dispute.id, attachment_id=attachment.id, filename=attachment.filename,
        content_type=attachment.content_type, size=attachment.size, sha256=attachment.sha256, added_by=actor.id,
        added_at=now,
    )  # fmt: skip
    session.add(item)
    session.flush()
    audit.record(session, actor=actor, action="dispute.evidence", object_type="dispute", object_id=dispute.id,
                 program_id=dispute.program_id, now=now,
                 after={"attachment_id": attachment.id, "filename": attachment.filename, "sha256": attachment.sha256,
                        "size": attachment.size, "content_type": attachment.content_type})  # fmt: skip
    return item
