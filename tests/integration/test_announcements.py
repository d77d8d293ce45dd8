"""Announcements: to every active partner of a program, a group or a pilot, written as a set; emailed to those
who did not turn announcements off, with a one-click unsubscribe."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.messaging.announcements import (
    announce,
    get_announcement_for_partner,
    mark_announcement_read,
    unread_announcements,
)
from partnerpay.messaging.models import AnnouncementRecipient
from partnerpay.messaging.preferences import set_preferences
from partnerpay.partners.groups import create_group, move_partners
from partnerpay.partners.lifecycle import change_status
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.programs.models import Program
from tests import factories

STAFF = Actor(ActorType.STAFF, "usr_staff", frozenset({"read", "write"}), label="pm@example.com")
VIEWER = Actor(ActorType.STAFF, "usr_viewer", frozenset({"read"}), label="viewer@example.com")


def as_partner(partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, "pu_" + partner.id[4:], frozenset({"read"}), program_id=partner.program_id,
                 partner_id=partner.id, label=partner.email)  # fmt: skip


@pytest.fixture
def world(session: Session, clock: FixedClock) -> tuple[Program, list[Partner]]:
    prog = factories.program(session, clock.now(), name="Acme Cloud")
    partners = [factories.partner(session, prog, clock.now(), name) for name in ("Ada", "Ben", "Cy", "Dee")]
    change_status(session, actor=STAFF, partner_id=partners[3].id, to=PartnerStatus.SUSPENDED, now=clock.now(),
                  reason="fraud review")  # fmt: skip
    return prog, partners


def recipients(session: Session, announcement_id: str) -> list[str]:
    rows = session.scalars(
        select(AnnouncementRecipient.partner_id).where(AnnouncementRecipient.announcement_id == announcement_id)
    )
    return sorted(rows)


def emails(session: Session) -> list[OutboxJob]:
    return list(session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send").order_by(OutboxJob.id)))


class TestAnnounce:
    def test_every_active_partner_of_the_program_gets_it_and_an_email(
        self, session: Session, world: tuple[Program, list[Partner]], clock: FixedClock
    ) -> None:
        prog, (ada, ben, cy, _dee) = world
        done = announce(session, actor=STAFF, program_id=prog.id, subject="New tiers", body="From May", now=clock.now())
        assert recipients(session, done.announcement.id) == sorted([ada.id, ben.id, cy.id])  # not suspended Dee
        assert (done.recipients, done.emailed) == (3, 3)
        assert (done.announcement.recipients, done.announcement.emailed) == (3, 3)
        mails = emails(session)
        assert sorted(m.payload["to"] for m in mails) == sorted(p.email for p in (ada, ben, cy))
        assert {m.payload["subject"] for m in mails} == {"New tiers (Acme Cloud)"}
        assert all(m.payload["unsubscribe"]["kind"] == "announcement" for m in mails)
        assert f"/portal/messages/announcements/{done.announcement.id}" in mails[0].payload["text"]
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "announcement.send")).one()
        assert (audit.after or {})["recipients"] == 3

    def test_a_group_or_a_pilot_gets_it_alone(
        self, session: Session, world: tuple[Program, list[Partner]], clock: FixedClock
    ) -> None:
        prog, (ada, ben, _cy, _dee) = world
        pilot = create_group(session, actor=STAFF, program_id=prog.id, name="Pilot Q3", is_pilot=True, size_cap=5,
                             now=clock.now())  # fmt: skip
        move_partners(session, actor=STAFF, partner_ids=[ada.id, ben.id], group_id=pilot.id, now=clock.now())
        done = announce(session, actor=STAFF, program_id=prog.id, group_id=pilot.id, subject="Pilot starts",
                        body="Monday", now=clock.now())  # fmt: skip
        assert recipients(session, done.announcement.id) == sorted([ada.id, ben.id])
        assert done.announcement.group_id == pilot.id

    def test_partners_who_turned_announcements_off_see_it_but_get_no_email(
        self, session: Session, world: tuple[Program, list[Partner]], clock: FixedClock
    ) -> None:
        prog, (ada, ben, cy, _dee) = world
        set_preferences(session, actor=as_partner(ben), partner_id=ben.id, subscribed={"announcement": False},
                        now=clock.now())  # fmt: skip
        done = announce(session, actor=STAFF, program_id=prog.id, subject="News", body="Text", now=clock.now())
        assert (done.recipients, done.emailed) == (3, 2)
        assert sorted(m.payload["to"] for m in emails(session)) == sorted([ada.email, cy.email])

    def test_the_portal_read_state_is_per_partner(
        self, session: Session, world: tuple[Program, list[Partner]], clock: FixedClock
    ) -> None:
        prog, (ada, ben, _cy, dee) = world
        done = announce(session, actor=STAFF, program_id=prog.id, subject="News", body="Text", now=clock.now())
        assert unread_announcements(session, ada.id) == 1
        mark_announcement_read(session, actor=as_partner(ada), announcement_id=done.announcement.id, now=clock.now())
        assert unread_announcements(session, ada.id) == 0 and unread_announcements(session, ben.id) == 1
        with pytest.raises(NotFound):
            get_announcement_for_partner(session, as_partner(dee), done.announcement.id)

    def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(
        self, session: Session, world: tuple[Program, list[Partner]], clock: FixedClock
    ) -> None:
        prog, _ = world
        empty = create_group(session, actor=STAFF, program_id=prog.id, name="Empty", now=clock.now())
        other = factories.program(session, clock.now(), name="Other")
        elsewhere = create_group(session, actor=STAFF, program_id=other.id, name="Elsewhere", now=clock.now())
        with pytest.raises(ValidationError) as caught:
            announce(session, actor=STAFF, program_id=prog.id, subject=" ", body="x", now=clock.now())
        assert caught.value.field == "subject"
        with pytest.raises(ValidationError) as caught:
            announce(session, actor=STAFF, program_id=prog.id, subject="s", body="", now=clock.now())
        assert caught.value.field == "body"
        with pytest.raises(ValidationError, match="no active partner") as caught:
            announce(session, actor=STAFF, program_id=prog.id, group_id=empty.id, subject="s", body="b",
                     now=clock.now())  # fmt: skip
        assert caught.value.field == "group_id"
        with pytest.raises(NotFound):
            announce(session, actor=STAFF, program_id=prog.id, group_id=elsewhere.id, subject="s", body="b",
                     now=clock.now())  # fmt: skip
        with pytest.raises(Forbidden):
            announce(session, actor=VIEWER, program_id=prog.id, subject="s", body="b", now=clock.now())
