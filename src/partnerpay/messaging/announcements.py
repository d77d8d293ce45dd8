"""Announcements from the team to every active partner of a program, of a group, or of a pilot group.

Recipients are written with one INSERT … SELECT (a program of 10,000 partners is one statement, not
10,000); the portal shows each recipient the announcement from that table. Those who did not turn off
announcement mail also get an email through the outbox, with a one-click unsubscribe link.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, insert, literal, select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.messaging.models import Announcement, AnnouncementRecipient
from partnerpay.messaging.notify import notify_partners, portal_link
from partnerpay.messaging.threads import check_body, check_subject
from partnerpay.partners.admin import need_write
from partnerpay.partners.groups import get_group
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs.service import get_program

ANNOUNCEMENT = "announcement"
CHUNK = 2000


@dataclass(frozen=True)
class Announced:
    announcement: Announcement
    recipients: int
    emailed: int


def announce(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    subject: str,
    body: str,
    now: datetime,
    group_id: str | None = None,
) -> Announced:
    """Announce to the program's active partners, or only to one group's (a pilot is a group)."""
    need_write(actor, "sending an announcement")
    program = get_program(session, actor, program_id)
    title = check_subject(subject)
    if title is None:
        raise ValidationError("the announcement needs a subject", field="subject")
    text = check_body(body)
    group = None
    if group_id:
        group = get_group(session, actor, group_id)
        if group.program_id != program.id:
            raise NotFound(f"group {group_id} not found", field="group_id")
    row = Announcement(
        id=new_id("ann"),
        program_id=program.id,
        group_id=group.id if group else None,
        subject=title,
        body=text,
        recipients=0,
        emailed=0,
        created_by=actor.id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    audience = select(literal(row.id), Partner.id).where(
        Partner.program_id == program.id, Partner.status == PartnerStatus.ACTIVE.value
    )
    if group is not None:
        audience = audience.where(Partner.group_id == group.id)
    session.execute(insert(AnnouncementRecipient).from_select(["announcement_id", "partner_id"], audience))
    recipient_ids = list(
        session.scalars(
            select(AnnouncementRecipient.partner_id)
            .where(AnnouncementRecipient.announcement_id == row.id)
            .order_by(AnnouncementRecipient.partner_id)
        )
    )
    if not recipient_ids:
        raise ValidationError(
            "nobody would receive this announcement: the "
            + ("group" if group else "program")
            + " has no active partner",
            field="group_id" if group else "program_id",
        )
    context = {"subject": title, "body": text, "link": portal_link(f"/portal/messages/announcements/{row.id}")}
    emailed = 0
    for start in range(0, len(recipient_ids), CHUNK):
        items = [(pid, context) for pid in recipient_ids[start : start + CHUNK]]
        emailed += notify_partners(session, kind=ANNOUNCEMENT, items=items, now=now, portal=False)
    session.execute(
        update(Announcement)
        .where(Announcement.id == row.id)
        .values(recipients=len(recipient_ids), emailed=emailed)
        .execution_options(synchronize_session=False)
    )
    session.expire(row)
    audit.record(
        session,
        actor=actor,
        action="announcement.send",
        object_type="announcement",
        object_id=row.id,
        program_id=program.id,
        after={
            "group_id": row.group_id,
            "subject": title,
            "recipients": len(recipient_ids),
            "emailed": emailed,
        },
        now=now,
    )
    return Announced(row, len(recipient_ids), emailed)


def get_announcement_for_partner(session: Session, actor: Actor, announcement_id: str) -> Announcement:
    """An announcement the partner received (404 otherwise)."""
    row = session.scalar(
        select(Announcement)
        .join(AnnouncementRecipient, AnnouncementRecipient.announcement_id == Announcement.id)
        .where(Announcement.id == announcement_id, AnnouncementRecipient.partner_id == actor.partner_id)
    )
    if row is None:
        raise NotFound(f"announcement {announcement_id} not found", field="announcement_id")
    return row


def mark_announcement_read(session: Session, *, actor: Actor, announcement_id: str, now: datetime) -> None:
    """The partner saw it (not audited: reading changes nothing anyone relies on)."""
    session.execute(
        update(AnnouncementRecipient)
        .where(
            AnnouncementRecipient.announcement_id == announcement_id,
            AnnouncementRecipient.partner_id == actor.partner_id,
            AnnouncementRecipient.read_at.is_(None),
        )
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )


def unread_announcements(session: Session, partner_id: str) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(AnnouncementRecipient)
            .where(AnnouncementRecipient.partner_id == partner_id, AnnouncementRecipient.read_at.is_(None))
        )
        or 0
    )
