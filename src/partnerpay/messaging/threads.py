"""Message threads between a partner and the team: general ones, or one per deal or dispute.

`post_message` is the only writer of threads and messages: it finds or opens the thread, adds the
message with its attachments, moves the other side's unread count, writes the audit row and tells
the other side (an email to the partner through the outbox, when the team writes). Bodies are plain
text; every page escapes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.auth.models import StaffUser
from partnerpay.db.base import Base
from partnerpay.deals.models import Deal
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import has_prefix, new_id
from partnerpay.messaging.attachments import attachments_for, side_of
from partnerpay.messaging.models import MessageAttachment, MessageThread, ThreadMessage
from partnerpay.partners.models import Partner

MAX_BODY = 20_000
MAX_SUBJECT = 200
MAX_ATTACHMENTS = 10


class TopicType(StrEnum):
    GENERAL = "general"
    DEAL = "deal"
    DISPUTE = "dispute"


DEFAULT_SUBJECTS = {TopicType.DEAL: "Deal {id}", TopicType.DISPUTE: "Dispute {id}"}


def check_body(body: str, *, field: str = "body") -> str:
    text = body.replace("\r\n", "\n").strip() if isinstance(body, str) else ""
    if not text:
        raise ValidationError("the message must not be empty", field=field)
    if len(text) > MAX_BODY:
        raise ValidationError(f"the message has at most {MAX_BODY} characters, got {len(text)}", field=field)
    return text


def check_subject(subject: str | None, *, field: str = "subject") -> str | None:
    if subject is None:
        return None
    text = " ".join(subject.split())
    if len(text) > MAX_SUBJECT:
        raise ValidationError(f"the subject has at most {MAX_SUBJECT} characters, got {len(text)}", field=field)
    return text or None


def _partner_for(session: Session, actor: Actor, partner_id: str) -> Partner:
    partner = session.get(Partner, partner_id)
    if partner is None or not actor.sees(partner.program_id, partner.id):
        raise NotFound(f"partner {partner_id} not found", field="partner_id")
    return partner


def _check_author(actor: Actor) -> None:
    # A partner user writes in its own threads (checked by _partner_for); staff and keys need write.
    if actor.type is not ActorType.PARTNER and not actor.can("write"):
        raise Forbidden("writing to a partner needs the manager, finance or owner role")


def _check_topic(session: Session, partner: Partner, topic_type: TopicType, topic_id: str | None) -> str:
    """The topic's default subject; 404 when the deal or dispute is not this partner's."""
    if topic_type is TopicType.GENERAL:
        if topic_id is not None:
            raise ValidationError("a general thread has no topic_id", field="topic_id")
        return ""
    if not topic_id:
        raise ValidationError(f"a {topic_type.value} thread needs the {topic_type.value}'s id", field="topic_id")
    if topic_type is TopicType.DEAL:
        deal = session.get(Deal, topic_id)
        if deal is None or deal.partner_id != partner.id:
            raise NotFound(f"deal {topic_id} not found", field="topic_id")
    else:
        # The disputes table belongs to disputes/ (which calls this module): looked up by name, not imported.
        disputes = Base.metadata.tables.get("disputes")
        if not has_prefix(topic_id, "dsp"):
            raise NotFound(f"dispute {topic_id} not found", field="topic_id")
        if disputes is not None and "partner_id" in disputes.c:
            owner = session.scalar(select(disputes.c.partner_id).where(disputes.c.id == topic_id))
            if owner != partner.id:
                raise NotFound(f"dispute {topic_id} not found", field="topic_id")
    return DEFAULT_SUBJECTS[topic_type].format(id=topic_id)


def get_thread(session: Session, actor: Actor, thread_id: str) -> MessageThread:
    """The thread, or 404 when it does not exist or is another program's or partner's."""
    thread = session.get(MessageThread, thread_id)
    if thread is None or not actor.sees(thread.program_id, thread.partner_id):
        raise NotFound(f"thread {thread_id} not found", field="thread_id")
    return thread


def find_thread(session: Session, *, partner_id: str, topic_type: str, topic_id: str) -> MessageThread | None:
    """The one thread of a deal or dispute, if it was opened (callers check access first)."""
    return session.scalar(
        select(MessageThread).where(
            MessageThread.partner_id == partner_id,
            MessageThread.topic_type == topic_type,
            MessageThread.topic_id == topic_id,
        )
    )


def _open_thread(
    session: Session,
    *,
    actor: Actor,
    partner: Partner,
    topic_type: TopicType,
    topic_id: str | None,
    subject: str,
    now: datetime,
) -> MessageThread:
    thread = MessageThread(
        id=new_id("thr"),
        program_id=partner.program_id,
        partner_id=partner.id,
        topic_type=topic_type.value,
        topic_id=topic_id,
        subject=subject,
        created_at=now,
        last_message_at=now,
        message_count=0,
        staff_unread=0,
        partner_unread=0,
    )
    session.add(thread)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="thread.open",
        object_type="thread",
        object_id=thread.id,
        program_id=partner.program_id,
        after={"partner_id": partner.id, "topic_type": topic_type.value, "topic_id": topic_id, "subject": subject},
        now=now,
    )
    return thread


def post_message(
    session: Session,
    *,
    author: Actor,
    partner_id: str,
    topic_type: str,
    topic_id: str | None,
    body: str,
    attachment_ids: Sequence[str] = (),
    now: datetime,
    thread_id: str | None = None,
    subject: str | None = None,
) -> ThreadMessage:
    """Add a message from `author` (a staff user, API key, partner user or the system).

    With thread_id: into that thread (which must be the partner's and match the topic). Without: the
    deal's or dispute's one thread, opened on first use, or a new general thread titled `subject`.
    """
    _check_author(author)
    partner = _partner_for(session, author, partner_id)
    try:
        topic = TopicType(topic_type)
    except ValueError:
        raise ValidationError(
            f"topic_type must be general, deal or dispute, got {topic_type!r}", field="topic_type"
        ) from None
    text = check_body(body)
    title = check_subject(subject)
    ids = list(dict.fromkeys(attachment_ids))
    if len(ids) > MAX_ATTACHMENTS:
        raise ValidationError(f"at most {MAX_ATTACHMENTS} attachments per message", field="attachment_ids")
    attachments = attachments_for(session, author, ids, partner_id=partner.id)
    default_subject = _check_topic(session, partner, topic, topic_id)

    if thread_id is not None:
        thread = get_thread(session, author, thread_id)
        if thread.partner_id != partner.id or thread.topic_type != topic.value or thread.topic_id != topic_id:
            raise NotFound(f"thread {thread_id} not found", field="thread_id")
    elif topic is TopicType.GENERAL:
        if title is None:
            raise ValidationError("a new conversation needs a subject", field="subject")
        thread = _open_thread(
            session, actor=author, partner=partner, topic_type=topic, topic_id=None, subject=title, now=now
        )
    else:
        assert topic_id is not None
        found = find_thread(session, partner_id=partner.id, topic_type=topic.value, topic_id=topic_id)
        thread = found or _open_thread(
            session,
            actor=author,
            partner=partner,
            topic_type=topic,
            topic_id=topic_id,
            subject=title or default_subject,
            now=now,
        )

    side = side_of(author)
    message = ThreadMessage(
        id=new_id("msg"),
        thread_id=thread.id,
        partner_id=partner.id,
        author_side=side,
        author_id=author.id,
        author_label=(author.label or author.id)[:320],
        body=text,
        created_at=now,
    )
    session.add(message)
    session.flush()
    if attachments:
        session.add_all(MessageAttachment(message_id=message.id, attachment_id=a.id) for a in attachments)
    # The writer has read everything before its own message; the other side has one more to read.
    other = MessageThread.staff_unread if side == "partner" else MessageThread.partner_unread
    mine = "partner_unread" if side == "partner" else "staff_unread"
    session.execute(
        update(MessageThread)
        .where(MessageThread.id == thread.id)
        .values(
            {
                other: other + 1,
                mine: 0,
                MessageThread.message_count: MessageThread.message_count + 1,
                MessageThread.last_message_at: now,
            }
        )
        .execution_options(synchronize_session=False)
    )
    session.expire(thread)
    audit.record(
        session,
        actor=author,
        action="message.post",
        object_type="message",
        object_id=message.id,
        program_id=partner.program_id,
        after={
            "thread_id": thread.id,
            "partner_id": partner.id,
            "side": side,
            "topic_type": topic.value,
            "topic_id": topic_id,
            "length": len(text),
            "attachment_ids": [a.id for a in attachments],
        },
        now=now,
    )
    if side == "partner":
        _tell_owner(session, partner, thread, message, now=now)
    else:
        from partnerpay.messaging.notify import notify_partner_event, portal_link

        notify_partner_event(
            session,
            partner_id=partner.id,
            kind="message.received",
            context={
                "subject": thread.subject,
                "author": message.author_label,
                "link": portal_link(f"/portal/messages/{thread.id}"),
            },
            now=now,
        )
    return message


def _tell_owner(
    session: Session, partner: Partner, thread: MessageThread, message: ThreadMessage, *, now: datetime
) -> None:
    """The partner's owner on the staff hears of the partner's message by email (others see it in Messages)."""
    if partner.owner_id is None:
        return
    owner_email = session.scalar(select(StaffUser.email).where(StaffUser.id == partner.owner_id))
    if owner_email is None:
        return
    from partnerpay.messaging.email import BASE_URL, enqueue_email

    excerpt = message.body if len(message.body) <= 2000 else message.body[:2000] + " …"
    enqueue_email(
        session,
        to=owner_email,
        subject=f"{partner.name}: {thread.subject}",
        text=f"{partner.name} wrote:\n\n{excerpt}\n\nAnswer in the console: {BASE_URL}/messages/{thread.id}\n",
        now=now,
    )


def mark_read(session: Session, *, actor: Actor, thread_id: str, now: datetime) -> MessageThread:
    """The actor's side has read the thread; audited when that changes anything."""
    thread = get_thread(session, actor, thread_id)
    side = "partner" if actor.type is ActorType.PARTNER else "staff"
    column = MessageThread.partner_unread if side == "partner" else MessageThread.staff_unread
    changed = session.scalars(
        update(MessageThread)
        .where(MessageThread.id == thread.id, column > 0)
        .values({column: 0})
        .returning(MessageThread.id)
        .execution_options(synchronize_session=False)
    ).all()
    session.expire(thread)
    if changed:
        audit.record(
            session,
            actor=actor,
            action="thread.read",
            object_type="thread",
            object_id=thread.id,
            program_id=thread.program_id,
            after={"side": side},
            now=now,
        )
    return thread
