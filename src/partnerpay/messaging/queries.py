"""Read side of messaging: inbox lists, unread counts, a thread with its messages, announcements."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.paging import Page, paginate
from partnerpay.messaging.models import (
    Announcement,
    AnnouncementRecipient,
    Attachment,
    MessageAttachment,
    MessageThread,
    ThreadMessage,
)
from partnerpay.messaging.threads import TopicType, get_thread
from partnerpay.partners.models import Partner, PartnerGroup

PAGE_ROWS = 100


@dataclass(frozen=True)
class ThreadRow:
    id: str
    partner_id: str
    partner_name: str
    topic_type: str
    topic_id: str | None
    subject: str
    last_message_at: datetime
    message_count: int
    unread: int  # for the side looking


@dataclass(frozen=True)
class MessageView:
    id: str
    author_side: str
    author_label: str
    body: str
    created_at: datetime
    attachments: list[Attachment] = field(default_factory=list)


@dataclass(frozen=True)
class ThreadView:
    thread: MessageThread
    partner_name: str
    messages: list[MessageView]


def _unread_column(actor: Actor) -> Any:
    return MessageThread.partner_unread if actor.type is ActorType.PARTNER else MessageThread.staff_unread


def _visible(stmt: Any, actor: Actor) -> Any:
    if actor.program_id is not None:
        stmt = stmt.where(MessageThread.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(MessageThread.partner_id == actor.partner_id)
    return stmt


def _filtered(
    stmt: Any,
    actor: Actor,
    *,
    program_id: str | None,
    partner_id: str | None,
    topic_type: str | None,
    unread: bool,
) -> Any:
    """`stmt` is any select over message_threads (one entity or several columns)."""
    stmt = _visible(stmt, actor)
    if program_id:
        stmt = stmt.where(MessageThread.program_id == program_id)
    if partner_id:
        stmt = stmt.where(MessageThread.partner_id == partner_id)
    if topic_type:
        if topic_type not in {t.value for t in TopicType}:
            raise ValidationError(f"topic must be general, deal or dispute, got {topic_type!r}", field="topic_type")
        stmt = stmt.where(MessageThread.topic_type == topic_type)
    if unread:
        stmt = stmt.where(_unread_column(actor) > 0)
    return stmt


def thread_rows(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    partner_id: str | None = None,
    topic_type: str | None = None,
    unread: bool = False,
    limit: int = PAGE_ROWS,
) -> list[ThreadRow]:
    """The inbox: newest conversation first, with the looking side's unread count."""
    base = select(MessageThread, Partner.name).join(Partner, Partner.id == MessageThread.partner_id)
    stmt = _filtered(base, actor, program_id=program_id, partner_id=partner_id, topic_type=topic_type, unread=unread)
    stmt = stmt.order_by(MessageThread.last_message_at.desc(), MessageThread.id.desc()).limit(limit)
    partner_side = actor.type is ActorType.PARTNER
    return [
        ThreadRow(
            id=t.id,
            partner_id=t.partner_id,
            partner_name=name,
            topic_type=t.topic_type,
            topic_id=t.topic_id,
            subject=t.subject,
            last_message_at=t.last_message_at,
            message_count=t.message_count,
            unread=t.partner_unread if partner_side else t.staff_unread,
        )
        for t, name in session.execute(stmt)
    ]


def thread_page(
    session: Session,
    actor: Actor,
    *,
    cursor: str | None,
    limit: int,
    program_id: str | None = None,
    partner_id: str | None = None,
    topic_type: str | None = None,
    unread: bool = False,
) -> Page[MessageThread]:
    """The API's list: threads by id (creation order), paged by cursor."""
    stmt = _filtered(
        select(MessageThread),
        actor,
        program_id=program_id,
        partner_id=partner_id,
        topic_type=topic_type,
        unread=unread,
    )
    return paginate(session, stmt, MessageThread.id, cursor=cursor, limit=limit)


def unread_threads(
    session: Session, actor: Actor, *, program_id: str | None = None, partner_id: str | None = None
) -> int:
    """How many threads hold messages the looking side has not read."""
    stmt = _filtered(
        select(func.count()).select_from(MessageThread),
        actor,
        program_id=program_id,
        partner_id=partner_id,
        topic_type=None,
        unread=True,
    )
    return int(session.scalar(stmt) or 0)


def thread_view(session: Session, actor: Actor, thread_id: str) -> ThreadView:
    """A thread (404 if not the actor's to see) with its messages, oldest first, and their attachments."""
    thread = get_thread(session, actor, thread_id)
    partner_name = session.scalar(select(Partner.name).where(Partner.id == thread.partner_id)) or ""
    messages = list(
        session.scalars(
            select(ThreadMessage)
            .where(ThreadMessage.thread_id == thread.id)
            .order_by(ThreadMessage.created_at, ThreadMessage.id)
        )
    )
    files: dict[str, list[Attachment]] = {}
    if messages:
        rows = session.execute(
            select(MessageAttachment.message_id, Attachment)
            .join(Attachment, Attachment.id == MessageAttachment.attachment_id)
            .where(MessageAttachment.message_id.in_([m.id for m in messages]))
            .order_by(Attachment.id)
        )
        for message_id, attachment in rows:
            files.setdefault(message_id, []).append(attachment)
    views = [
        MessageView(
            id=m.id,
            author_side=m.author_side,
            author_label=m.author_label,
            body=m.body,
            created_at=m.created_at,
            attachments=files.get(m.id, []),
        )
        for m in messages
    ]
    return ThreadView(thread, partner_name, views)


def message_attached(session: Session, attachment_id: str, thread_id: str) -> bool:
    """Whether the attachment belongs to a message of the thread (downloads go through their thread)."""
    found = session.scalar(
        select(MessageAttachment.message_id)
        .join(ThreadMessage, ThreadMessage.id == MessageAttachment.message_id)
        .where(MessageAttachment.attachment_id == attachment_id, ThreadMessage.thread_id == thread_id)
        .limit(1)
    )
    return found is not None


@dataclass(frozen=True)
class AnnouncementRow:
    id: str
    subject: str
    body: str
    created_at: datetime
    audience: str
    recipients: int
    emailed: int
    read_at: datetime | None = None


def partner_announcements(session: Session, partner_id: str, *, limit: int = PAGE_ROWS) -> list[AnnouncementRow]:
    rows = session.execute(
        select(Announcement, AnnouncementRecipient.read_at)
        .join(AnnouncementRecipient, AnnouncementRecipient.announcement_id == Announcement.id)
        .where(AnnouncementRecipient.partner_id == partner_id)
        .order_by(Announcement.created_at.desc(), Announcement.id.desc())
        .limit(limit)
    )
    return [
        AnnouncementRow(a.id, a.subject, a.body, a.created_at, "", a.recipients, a.emailed, read_at)
        for a, read_at in rows
    ]


def program_announcements(session: Session, actor: Actor, *, limit: int = PAGE_ROWS) -> list[AnnouncementRow]:
    stmt = (
        select(Announcement, PartnerGroup.name, PartnerGroup.is_pilot)
        .outerjoin(PartnerGroup, PartnerGroup.id == Announcement.group_id)
        .order_by(Announcement.created_at.desc(), Announcement.id.desc())
        .limit(limit)
    )
    if actor.program_id is not None:
        stmt = stmt.where(Announcement.program_id == actor.program_id)
    out = []
    for a, group_name, is_pilot in session.execute(stmt):
        audience = "all partners" if group_name is None else f"{'pilot' if is_pilot else 'group'} {group_name}"
        out.append(AnnouncementRow(a.id, a.subject, a.body, a.created_at, audience, a.recipients, a.emailed))
    return out


def partner_unread(session: Session, partner_id: str) -> int:
    """Conversations and announcements the partner has not read yet (the portal home's To do)."""
    threads = session.scalar(
        select(func.count())
        .select_from(MessageThread)
        .where(MessageThread.partner_id == partner_id, MessageThread.partner_unread > 0)
    )
    announcements = session.scalar(
        select(func.count())
        .select_from(AnnouncementRecipient)
        .where(AnnouncementRecipient.partner_id == partner_id, AnnouncementRecipient.read_at.is_(None))
    )
    return int(threads or 0) + int(announcements or 0)
