"""Calendar feed URLs: made, rotated and revoked by their owner; only a SHA-256 of the token is stored.

A token carries 256 random bits, so a fast hash is enough (as for API keys) and a lookup is one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import ROLE_SCOPES, Actor, ActorType
from partnerpay.auth.models import StaffUser
from partnerpay.calendars.models import CalendarFeed
from partnerpay.kit.errors import Forbidden
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner, PartnerUser

STAFF = "staff"
PARTNER_USER = "partner_user"
TOKEN_BYTES = 32  # 256 bits; the brief asks at least 128


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _owner(actor: Actor) -> tuple[str, str]:
    if actor.type is ActorType.STAFF:
        return STAFF, actor.id
    if actor.type is ActorType.PARTNER and actor.partner_id is not None:
        return PARTNER_USER, actor.id
    raise Forbidden("a calendar feed belongs to a console or portal user; an API key has none")


def active_feed(session: Session, actor: Actor) -> CalendarFeed | None:
    owner_type, owner_id = _owner(actor)
    return session.scalar(
        select(CalendarFeed).where(
            CalendarFeed.owner_type == owner_type, CalendarFeed.owner_id == owner_id, CalendarFeed.revoked_at.is_(None)
        )
    )


def _revoke_all(session: Session, owner_type: str, owner_id: str, now: datetime) -> list[str]:
    ids = list(
        session.scalars(
            select(CalendarFeed.id).where(
                CalendarFeed.owner_type == owner_type,
                CalendarFeed.owner_id == owner_id,
                CalendarFeed.revoked_at.is_(None),
            )
        )
    )
    if ids:
        session.execute(update(CalendarFeed).where(CalendarFeed.id.in_(ids)).values(revoked_at=now))
    return ids


def rotate_feed(session: Session, *, actor: Actor, now: datetime) -> str:
    """A new secret feed URL token (shown once); any earlier URL of this user stops working at once."""
    owner_type, owner_id = _owner(actor)
    revoked = _revoke_all(session, owner_type, owner_id, now)
    token = secrets.token_urlsafe(TOKEN_BYTES)
    feed = CalendarFeed(
        id=new_id("cal"), owner_type=owner_type, owner_id=owner_id, token_hash=hash_token(token), created_at=now
    )
    session.add(feed)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="calendar_feed.rotate" if revoked else "calendar_feed.create",
        object_type="calendar_feed",
        object_id=feed.id,
        program_id=actor.program_id,
        now=now,
        before={"revoked": revoked} if revoked else None,
        after={"owner": f"{owner_type}:{owner_id}"},
    )
    return token


def revoke_feed(session: Session, *, actor: Actor, now: datetime) -> int:
    """Turn the user's feed URL off; how many were active (0 or 1)."""
    owner_type, owner_id = _owner(actor)
    revoked = _revoke_all(session, owner_type, owner_id, now)
    for feed_id in revoked:
        audit.record(session, actor=actor, action="calendar_feed.revoke", object_type="calendar_feed",
                     object_id=feed_id, program_id=actor.program_id, now=now)  # fmt: skip
    return len(revoked)


def feed_actor(session: Session, token: str) -> Actor | None:
    """Whose feed a token opens, as that user acts now (role changes apply); None when unknown or revoked."""
    if not token or len(token) > 200:
        return None
    feed = session.scalar(
        select(CalendarFeed).where(CalendarFeed.token_hash == hash_token(token), CalendarFeed.revoked_at.is_(None))
    )
    if feed is None:
        return None
    if feed.owner_type == STAFF:
        staff = session.get(StaffUser, feed.owner_id)
        if staff is None:
            return None
        return Actor(ActorType.STAFF, staff.id, ROLE_SCOPES[staff.role], label=staff.email)
    user = session.get(PartnerUser, feed.owner_id)
    partner = session.get(Partner, user.partner_id) if user is not None else None
    if user is None or partner is None:
        return None
    return Actor(ActorType.PARTNER, user.id, frozenset({"read"}), program_id=partner.program_id,
                 partner_id=partner.id, label=user.email)  # fmt: skip
