"""Who may see and change leads and deals: a partner sees only its own (404 otherwise), staff decide."""

from __future__ import annotations

from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.deals.models import Deal, Lead, UpdateRequest
from partnerpay.kit.errors import Forbidden, NotFound


def _visible(actor: Actor, program_id: str, partner_id: str) -> bool:
    if not actor.sees_program(program_id):
        return False
    return actor.partner_id is None or actor.partner_id == partner_id


def get_lead(session: Session, actor: Actor, lead_id: str, *, field: str = "lead_id") -> Lead:
    lead = session.get(Lead, lead_id)
    if lead is None or not _visible(actor, lead.program_id, lead.partner_id):
        raise NotFound(f"lead {lead_id} not found", field=field)
    return lead


def get_deal(session: Session, actor: Actor, deal_id: str, *, field: str = "deal_id") -> Deal:
    deal = session.get(Deal, deal_id)
    if deal is None or not _visible(actor, deal.program_id, deal.partner_id):
        raise NotFound(f"deal {deal_id} not found", field=field)
    return deal


def get_update_request(session: Session, actor: Actor, request_id: str) -> UpdateRequest:
    item = session.get(UpdateRequest, request_id)
    if item is None or not _visible(actor, item.program_id, item.partner_id):
        raise NotFound(f"update request {request_id} not found", field="update_request_id")
    return item


def require_staff_write(actor: Actor, what: str) -> None:
    """Deciding on leads and moving deals is the program team's work, never a partner's."""
    if actor.partner_id is not None:
        raise Forbidden(f"{what} is done by the program team")
    if not actor.can("write"):
        raise Forbidden(f"{what} needs the 'write' scope, which {actor.type.value} {actor.id} lacks")
