"""A dispute's conversation: the one message thread of topic ("dispute", id), kept by messaging/threads."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.disputes.models import Dispute
from partnerpay.messaging.models import ThreadMessage
from partnerpay.messaging.threads import find_thread, post_message

TOPIC = "dispute"


def messages(session: Session, dispute: Dispute) -> list[ThreadMessage]:
    """Oldest first; empty until someone writes (callers check the reader may see the dispute)."""
    thread = find_thread(session, partner_id=dispute.partner_id, topic_type=TOPIC, topic_id=dispute.id)
    if thread is None:
        return []
    stmt = select(ThreadMessage).where(ThreadMessage.thread_id == thread.id)
    return list(session.scalars(stmt.order_by(ThreadMessage.created_at, ThreadMessage.id)))


def reply(session: Session, *, actor: Actor, dispute: Dispute, body: str, now: datetime) -> ThreadMessage:
    """A message from the partner or the team on the dispute (the other side is told by messaging)."""
    return post_message(session, author=actor, partner_id=dispute.partner_id, topic_type=TOPIC,
                        topic_id=dispute.id, body=body, now=now)  # fmt: skip
