"""A program's webhook subscriptions: created with a secret shown once, changed, and their secret rotated.

The secret is sealed with SecretBox (kit/crypto.py), like provider credentials; only its last four characters
are ever shown again. Rotating keeps the previous secret signing for a grace period (default 24 h), so a
receiver can switch over without refusing a delivery.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.programs.service import get_program
from partnerpay.webhooks_out.models import WebhookSubscription
from partnerpay.webhooks_out.signing import new_secret
from partnerpay.webhooks_out.types import EVENT_TYPES
from partnerpay.webhooks_out.urls import check_url

MAX_DESCRIPTION = 500
DEFAULT_GRACE_HOURS = 24
MAX_GRACE_HOURS = 168
MAX_PER_PROGRAM = 20


def hint(secret: str) -> str:
    return "••••" + secret[-4:]


def _need_write(actor: Actor) -> None:
    if actor.partner_id is not None or not actor.can("write"):
        raise Forbidden("managing webhook subscriptions needs the 'write' scope of a staff user or API key")


def check_event_types(raw: Any) -> list[str]:
    if not isinstance(raw, list) or not raw or not all(isinstance(t, str) for t in raw):
        raise ValidationError(f"event_types must be a non-empty list of: {', '.join(EVENT_TYPES)}", field="event_types")
    unknown = sorted({t for t in raw if t not in EVENT_TYPES})
    if unknown:
        raise ValidationError(
            f"unknown event type(s) {', '.join(unknown)}; known: {', '.join(EVENT_TYPES)}", field="event_types"
        )
    return [t for t in EVENT_TYPES if t in raw]  # one order, no duplicates


def _check_description(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, str) or len(raw.strip()) > MAX_DESCRIPTION:
        raise ValidationError(f"description must be text of at most {MAX_DESCRIPTION} characters", field="description")
    return raw.strip()


def open_secrets(subscription: WebhookSubscription, box: SecretBox, now: datetime) -> list[str]:
    """The secrets that sign a delivery now: the current one first, then rotated-out ones still in grace."""
    return secrets_of(subscription.sealed, box, now)


def secrets_of(sealed: str, box: SecretBox, now: datetime) -> list[str]:
    stored = box.decrypt(sealed).get("secrets", [])
    return [s["secret"] for s in stored if s.get("expires_at") is None or datetime.fromisoformat(s["expires_at"]) > now]


def snapshot(sub: WebhookSubscription) -> dict[str, Any]:
    """What the audit log keeps of a subscription (never the secret)."""
    return {
        "url": sub.url,
        "event_types": list(sub.event_types),
        "description": sub.description,
        "active": sub.active,
        "secret": sub.secret_hint,
    }


def get_subscription(session: Session, actor: Actor, subscription_id: str) -> WebhookSubscription:
    sub = session.get(WebhookSubscription, subscription_id)
    if sub is None or actor.partner_id is not None or not actor.sees_program(sub.program_id):
        raise NotFound(f"webhook subscription {subscription_id} not found", field="subscription_id")
    return sub


def list_subscriptions(session: Session, actor: Actor, program_id: str | None) -> Sequence[WebhookSubscription]:
    stmt = select(WebhookSubscription).order_by(WebhookSubscription.created_at, WebhookSubscription.id)
    if program_id is not None:
        get_program(session, actor, program_id)
        stmt = stmt.where(WebhookSubscription.program_id == program_id)
    elif actor.program_id is not None:
        stmt = stmt.where(WebhookSubscription.program_id == actor.program_id)
    return session.scalars(stmt).all()


def create_subscription(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    program_id: str,
    url: str,
    event_types: Any,
    description: Any = None,
    now: datetime,
    allow_private: bool = False,
) -> tuple[WebhookSubscription, str]:
    """A new subscription and its secret, in clear this once (the caller shows it and forgets it).
    `allow_private`: the outgoing_webhook_allow_private_targets setting (urls.check_url)."""
    _need_write(actor)
    program = get_program(session, actor, program_id)
    checked_url = check_url(url, allow_private=allow_private)
    types, text = check_event_types(event_types), _check_description(description)
    count = len(
        session.scalars(select(WebhookSubscription.id).where(WebhookSubscription.program_id == program.id)).all()
    )
    if count >= MAX_PER_PROGRAM:
        raise ValidationError(f"a program has at most {MAX_PER_PROGRAM} webhook subscriptions", field="program_id")
    secret = new_secret()
    sub = WebhookSubscription(
        id=new_id("whs"),
        program_id=program.id,
        url=checked_url,
        event_types=types,
        description=text,
        sealed=box.encrypt({"secrets": [{"secret": secret, "expires_at": None}]}),
        secret_hint=hint(secret),
        active=True,
        created_by=actor.id,
        created_at=now,
        updated_at=now,
    )
    session.add(sub)
    session.flush()
    audit.record(session, actor=actor, action="webhook_subscription.create", object_type="webhook_subscription",
                 object_id=sub.id, program_id=program.id, now=now, after=snapshot(sub))  # fmt: skip
    return sub, secret


def update_subscription(
    session: Session,
    *,
    actor: Actor,
    subscription_id: str,
    changes: dict[str, Any],
    now: datetime,
    allow_private: bool = False,
) -> WebhookSubscription:
    """Change url, event_types, description or active (a field left out keeps its value)."""
    _need_write(actor)
    sub = get_subscription(session, actor, subscription_id)
    known = {"url", "event_types", "description", "active"}
    for name in changes:
        if name not in known:
            raise ValidationError(f"{name} is not a field of a subscription; known: {', '.join(sorted(known))}",
                                  field=name)  # fmt: skip
    before = snapshot(sub)
    if "url" in changes:
        sub.url = check_url(changes["url"], allow_private=allow_private)
    if "event_types" in changes:
        sub.event_types = check_event_types(changes["event_types"])
    if "description" in changes:
        sub.description = _check_description(changes["description"])
    if "active" in changes:
        if not isinstance(changes["active"], bool):
            raise ValidationError("active must be true or false", field="active")
        sub.active = changes["active"]
    after = snapshot(sub)
    if after != before:
        sub.updated_at = now
        audit.record(session, actor=actor, action="webhook_subscription.update", object_type="webhook_subscription",
                     object_id=sub.id, program_id=sub.program_id, now=now, before=before, after=after)  # fmt: skip
    return sub


def rotate_secret(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    subscription_id: str,
    previous_secret_hours: Any = DEFAULT_GRACE_HOURS,
    now: datetime,
) -> tuple[WebhookSubscription, str]:
    """A new current secret (returned in clear this once); the old one signs too until the grace ends."""
    _need_write(actor)
    sub = get_subscription(session, actor, subscription_id)
    hours = previous_secret_hours
    if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= MAX_GRACE_HOURS:
        raise ValidationError(
            f"previous_secret_hours must be an integer from 0 to {MAX_GRACE_HOURS}", field="previous_secret_hours"
        )
    current = open_secrets(sub, box, now)
    secret = new_secret()
    until = (now + timedelta(hours=hours)).isoformat()
    # Only the secret being replaced keeps a grace; one rotated out earlier ends now (two at most sign).
    kept = [{"secret": current[0], "expires_at": until}] if current and hours else []
    before = sub.secret_hint
    sub.sealed = box.encrypt({"secrets": [{"secret": secret, "expires_at": None}, *kept]})
    sub.secret_hint, sub.rotated_at, sub.updated_at = hint(secret), now, now
    audit.record(session, actor=actor, action="webhook_subscription.rotate_secret",
                 object_type="webhook_subscription", object_id=sub.id, program_id=sub.program_id, now=now,
                 before={"secret": before},
                 after={"secret": sub.secret_hint, "previous_valid_until": until if kept else None})  # fmt: skip
    return sub, secret
