"""Which non-transactional mail a partner wants, and one-click unsubscribe links (RFC 8058).

Money and account mail (approved, on hold, paid, failed, disputes, invitations) always goes; only the
kinds in templates.NON_TRANSACTIONAL can be turned off. No row means subscribed. An unsubscribe link
carries an HMAC-signed token naming the partner and the kind, so the public endpoint needs no login
and cannot be used to unsubscribe anyone else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.db.chunks import in_chunks
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.messaging.models import NotificationPreference
from partnerpay.messaging.templates import KINDS, NON_TRANSACTIONAL
from partnerpay.partners.models import Partner

TOKEN_PURPOSE = b"partnerpay.unsubscribe.v1"
UNSUBSCRIBE_PATH = "/unsubscribe/"


def _key(secret: str) -> bytes:
    # A key of its own, derived from the secret key: a session or CSRF signature is never a valid token.
    return hmac.new(secret.encode(), TOKEN_PURPOSE, hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def unsubscribe_token(secret: str, *, partner_id: str, kind: str) -> str:
    payload = f"{partner_id}:{kind}".encode()
    signature = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:20]
    return f"{_b64(payload)}.{_b64(signature)}"


def read_token(secret: str, token: str) -> tuple[str, str]:
    """(partner_id, kind) from a token; 404 for anything not signed by us (it names nothing that exists)."""
    try:
        payload_text, signature_text = token.split(".", 1)
        payload, signature = _unb64(payload_text), _unb64(signature_text)
        expected = hmac.new(_key(secret), payload, hashlib.sha256).digest()[:20]
        if not hmac.compare_digest(signature, expected):
            raise ValueError("bad signature")
        partner_id, kind = payload.decode().split(":", 1)
    except (ValueError, UnicodeDecodeError):
        raise NotFound("this unsubscribe link is not valid") from None
    if kind not in NON_TRANSACTIONAL:
        raise NotFound("this unsubscribe link is not valid")
    return partner_id, kind


def unsubscribe_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{UNSUBSCRIBE_PATH}{token}"


def preferences_of(session: Session, partner_id: str) -> dict[str, bool]:
    """Every optional kind → subscribed?"""
    stored = dict(
        session.execute(
            select(NotificationPreference.kind, NotificationPreference.subscribed).where(
                NotificationPreference.partner_id == partner_id
            )
        ).all()
    )
    return {kind: bool(stored.get(kind, True)) for kind in NON_TRANSACTIONAL}


def opted_out(session: Session, kind: str, partner_ids: Iterable[str]) -> set[str]:
    """The partners among `partner_ids` who turned `kind` off (always none for a transactional kind)."""
    if kind not in NON_TRANSACTIONAL:
        return set()
    ids = sorted(set(partner_ids))
    out: set[str] = set()
    for chunk in in_chunks(ids):
        out.update(
            session.scalars(
                select(NotificationPreference.partner_id).where(
                    NotificationPreference.kind == kind,
                    NotificationPreference.subscribed.is_(False),
                    NotificationPreference.partner_id.in_(chunk),
                )
            )
        )
    return out


def _write(
    session: Session, *, partner_id: str, changes: Mapping[str, bool], source: str, now: datetime
) -> dict[str, bool]:
    current = preferences_of(session, partner_id)
    changed = {k: v for k, v in changes.items() if current[k] != v}
    if changed:
        session.execute(
            delete(NotificationPreference).where(
                NotificationPreference.partner_id == partner_id, NotificationPreference.kind.in_(list(changed))
            )
        )
        session.add_all(
            NotificationPreference(partner_id=partner_id, kind=k, subscribed=v, source=source, updated_at=now)
            for k, v in changed.items()
        )
        session.flush()
    return changed


def set_preferences(
    session: Session, *, actor: Actor, partner_id: str, subscribed: Mapping[str, bool], now: datetime
) -> dict[str, bool]:
    """Set the partner's choices (a partner for itself, or staff); returns the kinds that changed."""
    partner = session.get(Partner, partner_id)
    if partner is None or not actor.sees(partner.program_id, partner.id):
        raise NotFound(f"partner {partner_id} not found", field="partner_id")
    if actor.type is not ActorType.PARTNER and not actor.can("write"):
        raise Forbidden("changing a partner's email preferences needs the manager, finance or owner role")
    for kind in subscribed:
        if kind not in KINDS:
            raise ValidationError(f"unknown notification kind {kind!r}", field=kind)
        if kind not in NON_TRANSACTIONAL:
            raise ValidationError(
                f"{KINDS[kind].label} emails are about money or your account and are always sent", field=kind
            )
    source = "portal" if actor.type is ActorType.PARTNER else "staff"
    changed = _write(session, partner_id=partner.id, changes=subscribed, source=source, now=now)
    if changed:
        audit.record(
            session,
            actor=actor,
            action="notification_preferences.update",
            object_type="partner",
            object_id=partner.id,
            program_id=partner.program_id,
            after={"subscribed": changed, "source": source},
            now=now,
        )
    return changed


def unsubscribe(session: Session, *, secret: str, token: str, now: datetime) -> tuple[Partner, str]:
    """Record a one-click unsubscribe from a signed link (no login); repeating it changes nothing."""
    partner_id, kind = read_token(secret, token)
    partner = session.get(Partner, partner_id)
    if partner is None:
        raise NotFound("this unsubscribe link is not valid")
    changed = _write(session, partner_id=partner.id, changes={kind: False}, source="unsubscribe_link", now=now)
    if changed:
        actor = Actor(
            ActorType.PARTNER,
            partner.id,
            program_id=partner.program_id,
            partner_id=partner.id,
            label="unsubscribe link",
        )
        audit.record(
            session,
            actor=actor,
            action="notification_preferences.unsubscribe",
            object_type="partner",
            object_id=partner.id,
            program_id=partner.program_id,
            after={"kind": kind, "source": "unsubscribe_link"},
            now=now,
        )
    return partner, kind
