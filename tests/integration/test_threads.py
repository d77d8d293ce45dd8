"""Message threads: per partner, general or per deal/dispute, read state per side, audited, private to the partner."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.auth.service import create_staff_user
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.disputes.models import Dispute
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.messaging.attachments import AttachmentStore, store_attachment
from partnerpay.messaging.models import MessageAttachment, MessageThread, ThreadMessage
from partnerpay.messaging.threads import get_thread, mark_read, post_message
from partnerpay.partners.admin import assign_owner
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from tests import factories

STAFF = Actor(ActorType.STAFF, "usr_staff", frozenset({"read", "write"}), label="pm@example.com")
VIEWER = Actor(ActorType.STAFF, "usr_viewer", frozenset({"read"}), label="viewer@example.com")


def as_partner(partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, "pu_" + partner.id[4:], frozenset({"read"}), program_id=partner.program_id,
                 partner_id=partner.id, label=f"{partner.name}@portal")  # fmt: skip


@pytest.fixture
def world(session: Session, clock: FixedClock) -> tuple[Program, Partner, Partner]:
    prog = factories.program(session, clock.now(), name="Acme Cloud")
    ada = factories.partner(session, prog, clock.now(), "Ada Blog")
    return prog, ada, factories.partner(session, prog, clock.now(), "Beta")


def jobs(session: Session, kind: str) -> list[OutboxJob]:
    return list(session.scalars(select(OutboxJob).where(OutboxJob.kind == kind).order_by(OutboxJob.id)))


class TestPostMessage:
    def test_a_partner_opens_a_general_thread_and_staff_sees_it_unread(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, ada, _ = world
        msg = post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="general", topic_id=None,
                           subject="Payout question", body="When is my next payout?", now=clock.now())  # fmt: skip
        thread = session.get(MessageThread, msg.thread_id)
        assert thread is not None and thread.subject == "Payout question" and thread.topic_type == "general"
        assert (thread.staff_unread, thread.partner_unread, thread.message_count) == (1, 0, 1)
        assert msg.author_side == "partner" and msg.body == "When is my next payout?"
        assert jobs(session, "email.send") == []  # the partner wrote: no mail to the partner
        actions = session.scalars(select(AuditEntry.action).order_by(AuditEntry.seq)).all()
        assert actions[-2:] == ["thread.open", "message.post"]

    def test_a_staff_reply_counts_for_the_partner_and_emails_them(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, ada, _ = world
        first = post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="general", topic_id=None,
                             subject="Payout question", body="When?", now=clock.now())  # fmt: skip
        post_message(session, author=STAFF, partner_id=ada.id, topic_type="general", topic_id=None,
                     thread_id=first.thread_id, body="On the 15th.", now=clock.now())  # fmt: skip
        thread = session.get(MessageThread, first.thread_id)
        assert thread is not None and (thread.staff_unread, thread.partner_unread, thread.message_count) == (0, 1, 2)
        (mail,) = jobs(session, "email.send")
        assert mail.payload["to"] == "ada.blog@example.com" and mail.payload["kind"] == "message.received"
        assert mail.payload["subject"] == "New message: Payout question (Acme Cloud)"
        assert f"/portal/messages/{thread.id}" in mail.payload["text"]
        assert mail.payload["unsubscribe"] == {"partner_id": ada.id, "kind": "message.received"}
        (notice,) = jobs(session, "notify.partner")
        assert notice.payload["partner_id"] == ada.id

    def test_a_deal_has_one_thread_opened_on_first_use(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        prog, ada, _ = world
        lead = register_lead(session, actor=as_partner(ada), program_id=prog.id, company="Globex",
                             domain="globex.com", now=clock.now())  # fmt: skip
        (deal,) = accept_leads(session, actor=SYSTEM, lead_ids=[lead.id], now=clock.now())
        a = post_message(session, author=STAFF, partner_id=ada.id, topic_type="deal", topic_id=deal.id,
                         body="Any news?", now=clock.now())  # fmt: skip
        b = post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="deal", topic_id=deal.id,
                         body="Signed next week", now=clock.now())  # fmt: skip
        assert a.thread_id == b.thread_id
        thread = session.get(MessageThread, a.thread_id)
        assert thread is not None and thread.subject == f"Deal {deal.id}" and thread.topic_id == deal.id

    def test_another_partners_deal_is_404(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        prog, ada, beta = world
        lead = register_lead(session, actor=as_partner(ada), program_id=prog.id, company="Globex",
                             domain="globex.com", now=clock.now())  # fmt: skip
        (deal,) = accept_leads(session, actor=SYSTEM, lead_ids=[lead.id], now=clock.now())
        with pytest.raises(NotFound, match="deal"):
            post_message(session, author=as_partner(beta), partner_id=beta.id, topic_type="deal", topic_id=deal.id,
                         body="mine?", now=clock.now())  # fmt: skip

    def test_a_dispute_thread_is_found_again_by_its_id(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        prog, ada, _ = world
        dispute_id = new_id("dsp")
        session.add(Dispute(id=dispute_id, program_id=prog.id, partner_id=ada.id, kind="missing_commission",
                            currency="EUR", description="Acme was not credited", due_at=clock.now(),
                            opened_by="pu_x", opened_by_type="partner", created_at=clock.now(),
                            updated_at=clock.now()))  # fmt: skip
        session.flush()
        a = post_message(session, author=SYSTEM, partner_id=ada.id, topic_type="dispute", topic_id=dispute_id,
                         body="We received your dispute.", now=clock.now())  # fmt: skip
        b = post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="dispute",
                         topic_id=dispute_id, body="Evidence attached.", now=clock.now())  # fmt: skip
        assert a.thread_id == b.thread_id and a.author_side == "system"
        with pytest.raises(NotFound, match="dispute"):
            post_message(session, author=STAFF, partner_id=ada.id, topic_type="dispute", topic_id=new_id("dsp"),
                         body="unknown", now=clock.now())  # fmt: skip

    def test_a_partner_cannot_write_into_another_partners_thread(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, ada, beta = world
        msg = post_message(session, author=STAFF, partner_id=ada.id, topic_type="general", topic_id=None,
                           subject="Hello", body="Welcome", now=clock.now())  # fmt: skip
        with pytest.raises(NotFound):
            post_message(session, author=as_partner(beta), partner_id=ada.id, topic_type="general", topic_id=None,
                         thread_id=msg.thread_id, body="sneaky", now=clock.now())  # fmt: skip
        with pytest.raises(NotFound):
            post_message(session, author=as_partner(beta), partner_id=beta.id, topic_type="general", topic_id=None,
                         thread_id=msg.thread_id, body="sneaky", now=clock.now())  # fmt: skip
        with pytest.raises(NotFound):
            get_thread(session, as_partner(beta), msg.thread_id)

    @pytest.mark.parametrize(
        ("kw", "field"),
        [
            ({"body": "   "}, "body"),
            ({"body": "x" * 20_001}, "body"),
            ({"subject": None}, "subject"),
            ({"topic_type": "gossip"}, "topic_type"),
            ({"topic_type": "deal"}, "topic_id"),
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock, kw: dict[str, object],
        field: str,
    ) -> None:  # fmt: skip
        _, ada, _ = world
        args: dict[str, object] = {"topic_type": "general", "topic_id": None, "subject": "Hi", "body": "Hello"}
        args.update(kw)
        with pytest.raises(ValidationError) as caught:
            post_message(session, author=STAFF, partner_id=ada.id, now=clock.now(), **args)  # type: ignore[arg-type]
        assert caught.value.field == field
        assert session.scalar(select(ThreadMessage.id)) is None

    def test_a_read_only_staff_user_cannot_write(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, ada, _ = world
        with pytest.raises(Forbidden):
            post_message(session, author=VIEWER, partner_id=ada.id, topic_type="general", topic_id=None,
                         subject="Hi", body="Hello", now=clock.now())  # fmt: skip

    def test_attachments_go_with_the_message_and_must_be_the_partners(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock, tmp_path: Path
    ) -> None:
        prog, ada, beta = world
        store = AttachmentStore(root=tmp_path)
        mine = store_attachment(session, store, actor=as_partner(ada), program_id=prog.id, partner_id=ada.id,
                                filename="a.txt", declared_type="text/plain", data=b"hello",
                                now=clock.now())  # fmt: skip
        theirs = store_attachment(session, store, actor=as_partner(beta), program_id=prog.id, partner_id=beta.id,
                                  filename="b.txt", declared_type="text/plain", data=b"hi",
                                  now=clock.now())  # fmt: skip
        msg = post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="general", topic_id=None,
                           subject="Files", body="See attached", attachment_ids=[mine.id], now=clock.now())  # fmt: skip
        linked = session.scalars(select(MessageAttachment.attachment_id).where(MessageAttachment.message_id == msg.id))
        assert list(linked) == [mine.id]
        with pytest.raises(NotFound):
            post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="general", topic_id=None,
                         subject="Files", body="x", attachment_ids=[theirs.id], now=clock.now())  # fmt: skip
        with pytest.raises(NotFound):
            post_message(session, author=STAFF, partner_id=ada.id, topic_type="general", topic_id=None,
                         subject="Files", body="x", attachment_ids=[theirs.id], now=clock.now())  # fmt: skip


class TestMarkRead:
    def test_each_side_reads_its_own_count_and_only_a_change_is_audited(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, ada, _ = world
        msg = post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="general", topic_id=None,
                           subject="Q", body="?", now=clock.now())  # fmt: skip
        post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="general", topic_id=None,
                     thread_id=msg.thread_id, body="??", now=clock.now())  # fmt: skip
        thread = mark_read(session, actor=as_partner(ada), thread_id=msg.thread_id, now=clock.now())
        assert thread.staff_unread == 2
        thread = mark_read(session, actor=STAFF, thread_id=msg.thread_id, now=clock.now())
        assert thread.staff_unread == 0
        mark_read(session, actor=STAFF, thread_id=msg.thread_id, now=clock.now())
        reads = session.scalars(select(AuditEntry.actor_id).where(AuditEntry.action == "thread.read")).all()
        assert reads == [STAFF.id]


class TestOwnerIsTold:
    def test_the_partners_owner_gets_an_email_when_the_partner_writes(
        self, session: Session, world: tuple[Program, Partner, Partner], clock: FixedClock
    ) -> None:
        _, ada, beta = world
        owner = create_staff_user(session, actor=SYSTEM, email="owner@acme.example", role="manager",
                                  password="long enough pw", now=clock.now())  # fmt: skip
        assign_owner(session, actor=SYSTEM, partner_ids=[ada.id], owner_id=owner.id, now=clock.now())
        msg = post_message(session, author=as_partner(ada), partner_id=ada.id, topic_type="general", topic_id=None,
                           subject="Co-marketing", body="Webinar in Q3?", now=clock.now())  # fmt: skip
        post_message(session, author=as_partner(beta), partner_id=beta.id, topic_type="general", topic_id=None,
                     subject="No owner", body="Anyone?", now=clock.now())  # fmt: skip
        (mail,) = jobs(session, "email.send")
        assert mail.payload["to"] == "owner@acme.example" and mail.payload["subject"] == "Ada Blog: Co-marketing"
        assert "Webinar in Q3?" in mail.payload["text"] and f"/messages/{msg.thread_id}" in mail.payload["text"]
