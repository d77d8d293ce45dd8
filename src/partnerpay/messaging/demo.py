"""The demo's conversations: the portal partner asked about its next payout and got an answer, another partner's
question waits for the team, and an announcement went to every partner (`partnerpay demo`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.demo.data import PORTAL_PARTNER
from partnerpay.demo.onboarding import Cast, Extra
from partnerpay.messaging.announcements import announce
from partnerpay.messaging.threads import post_message
from partnerpay.partners.models import Partner, PartnerUser

ASKING_PARTNER = 2


def _partner_actor(session: Session, partner_id: str) -> Actor:
    partner = session.get(Partner, partner_id)
    assert partner is not None
    user = session.scalars(select(PartnerUser).where(PartnerUser.partner_id == partner_id)).first()
    return Actor(ActorType.PARTNER, user.id if user else partner.id, frozenset({"read"}), partner.program_id,
                 partner.id, user.email if user else partner.email)  # fmt: skip


def _payout_question(session: Session, cast: Cast, at: datetime) -> None:
    partner_id = cast.partner_ids.get(PORTAL_PARTNER)
    if partner_id is None:
        return
    first = post_message(session, author=_partner_actor(session, partner_id), partner_id=partner_id,
                         topic_type="general", topic_id=None, subject="When is the next payout?",
                         body="Hi team, when will the commissions approved this month be paid? Thanks!",
                         now=at)  # fmt: skip
    post_message(session, author=cast.finance, partner_id=partner_id, topic_type="general", topic_id=None,
                 thread_id=first.thread_id, now=at + timedelta(hours=3),
                 body="Hello! Approved lines past their hold go into the payout run on the 1st; the bank transfer "
                 "usually arrives two working days later. Your Earnings page shows the date per line.")  # fmt: skip


def _open_question(session: Session, cast: Cast, at: datetime) -> None:
    partner_id = cast.partner_ids.get(ASKING_PARTNER)
    if partner_id is None:
        return
    post_message(session, author=_partner_actor(session, partner_id), partner_id=partner_id, topic_type="general",
                 topic_id=None, subject="Co-marketing budget for Q3?",
                 body="We would like to run a webinar with you in Q3. Is there a co-marketing budget?",
                 now=at)  # fmt: skip


def _announcement(session: Session, cast: Cast, at: datetime) -> None:
    announce(session, actor=cast.manager, program_id=cast.program_id, subject="New commission tiers from next month",
             body="From next month, partners with ten or more paying customers in a quarter earn 30 % instead of "
             "20 %. Nothing changes for lines already earned.", now=at)  # fmt: skip


def extras(now: datetime) -> list[Extra]:
    return [
        Extra(now - timedelta(days=12), "an announcement to every partner", _announcement),
        Extra(now - timedelta(days=6), "the portal partner asks about its payout", _payout_question),
        Extra(now - timedelta(hours=5), "a partner's question waits for the team", _open_question),
    ]
