"""Who may see and act on a dispute: a partner only its own (404 otherwise); the program team decides."""

from __future__ import annotations

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.disputes.models import Dispute
from partnerpay.kit.errors import Forbidden, NotFound


def get_dispute(session: Session, actor: Actor, dispute_id: str, *, field: str = "dispute_id") -> Dispute:
    dispute = session.get(Dispute, dispute_id)
    if dispute is None or not actor.sees(dispute.program_id, dispute.partner_id):
        raise NotFound(f"dispute {dispute_id} not found", field=field)
    return dispute


def is_partner(actor: Actor) -> bool:
    return actor.type is ActorType.PARTNER or actor.partner_id is not None


def require_team(actor: Actor, what: str) -> None:
    """Reviewing and resolving is the program team's work (the 'write' scope), never a partner's."""
    if is_partner(actor):
        raise Forbidden(f"{what} is done by the program team")
    if not actor.can("write"):
        raise Forbidden(f"{what} needs the 'write' scope, which {actor.type.value} {actor.id} lacks")
