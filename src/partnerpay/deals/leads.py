"""Registering leads (with conflict detection) and the team's accept / reject decisions."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.deals.access import get_lead, require_staff_write
from partnerpay.deals.models import Deal, Lead
from partnerpay.deals.rules import (
    LEAD_MACHINE,
    ConflictKind,
    DealStatus,
    LeadState,
    company_key,
    conflict,
    domain_of,
    protection_active,
)
from partnerpay.deals.timeline import add_line
from partnerpay.events.models import Customer
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import check_currency
from partnerpay.partners.models import Partner
from partnerpay.partners.service import check_email
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.programs.tracking_settings import deal_stages

OPEN_LEAD = (LeadState.REGISTERED.value, LeadState.ACCEPTED.value)


def _text(value: str | None, field: str, max_length: int, *, required: bool = False) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise ValidationError(f"{field} is required", field=field)
        return None
    if len(text) > max_length:
        raise ValidationError(f"{field} must have at most {max_length} characters", field=field)
    return text


def _partner_for(session: Session, actor: Actor, program: Program, partner_id: str | None) -> Partner:
    """A partner registers for itself; staff and API keys name the partner."""
    if actor.partner_id is not None:
        if partner_id not in (None, actor.partner_id):
            raise NotFound(f"partner {partner_id} not found", field="partner_id")
        partner_id = actor.partner_id
    elif not actor.can("write"):
        raise Forbidden(f"registering a lead needs the 'write' scope, which {actor.type.value} {actor.id} lacks")
    if partner_id is None:
        raise ValidationError("partner_id is required: whose lead is it?", field="partner_id")
    partner = session.get(Partner, partner_id)
    if partner is None or partner.program_id != program.id:
        raise NotFound(f"partner {partner_id} not found in this program", field="partner_id")
    if partner.status != "active":
        raise ValidationError(
            f"{partner.name} is {partner.status}: only active partners register leads", field="partner_id"
        )
    return partner


def find_conflicts(
    session: Session, *, program_id: str, partner_id: str, domain: str | None, key: str, now: datetime,
    exclude_lead_id: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Everything a new lead for (domain, company key) collides with; flagged for the team, never dropped."""
    found: list[dict[str, Any]] = []
    same = [Lead.company_key == key] + ([Lead.domain == domain] if domain else [])
    leads = session.scalars(
        select(Lead)
        .where(Lead.program_id == program_id, Lead.status.in_(OPEN_LEAD), or_(*same))
        .order_by(Lead.created_at, Lead.id)
    ).all()
    # An accepted lead whose deal is closed claims nothing any more: won is a customer (below), lost is free.
    closed = set(
        session.scalars(
            select(Deal.lead_id).where(Deal.lead_id.in_([x.id for x in leads]), Deal.status != DealStatus.OPEN.value)
        )
    )
    for other in leads:
        if other.id == exclude_lead_id or other.id in closed:
            continue
        if other.partner_id == partner_id:
            found.append(conflict(ConflictKind.OWN_DUPLICATE, "lead", other.id, other.partner_id,
                                  f"you registered {other.company} already ({other.status})"))  # fmt: skip
        elif other.status == LeadState.REGISTERED:
            found.append(conflict(ConflictKind.OTHER_PARTNER_LEAD, "lead", other.id, other.partner_id,
                                  f"another partner registered {other.company} first (no decision yet)"))  # fmt: skip
        elif protection_active(other.protected_until, now):
            assert other.protected_until is not None
            found.append(conflict(ConflictKind.OTHER_PARTNER_LEAD, "lead", other.id, other.partner_id,
                                  f"{other.company} is protected for another partner until "
                                  f"{other.protected_until:%d %b %Y}"))  # fmt: skip
    if domain:
        customer_id = session.scalar(
            select(Customer.id).where(Customer.program_id == program_id, Customer.external_id == domain)
        )
        if customer_id is not None:
            found.append(conflict(ConflictKind.EXISTING_CUSTOMER, "customer", customer_id, None,
                                  f"{domain} is already a customer"))  # fmt: skip
        deals = session.scalars(
            select(Deal).where(Deal.program_id == program_id, Deal.domain == domain).order_by(Deal.created_at, Deal.id)
        ).all()
        for deal in deals:
            if deal.status == DealStatus.WON:
                found.append(conflict(ConflictKind.EXISTING_CUSTOMER, "deal", deal.id, deal.partner_id,
                                      f"{deal.company} became a customer (deal won)"))  # fmt: skip
            elif deal.status == DealStatus.OPEN and deal.crm_id is not None:
                found.append(conflict(ConflictKind.CRM_DEAL, "deal", deal.id, deal.partner_id,
                                      f"an open deal in the CRM ({deal.crm_id}) for {deal.company}"))  # fmt: skip
            elif deal.status == DealStatus.OPEN and deal.lead_id is None and deal.partner_id != partner_id:
                # A deal made from a lead is covered by that lead (and its protection window) above.
                found.append(conflict(ConflictKind.OTHER_PARTNER_DEAL, "deal", deal.id, deal.partner_id,
                                      f"another partner has an open deal for {deal.company}"))  # fmt: skip
    return found


def register_lead(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    company: str,
    partner_id: str | None = None,
    domain: str | None = None,
    contact_name: str | None = None,
    contact_email: str | None = None,
    expected_value: int | None = None,
    currency: str | None = None,
    notes: str | None = None,
    now: datetime,
) -> Lead:
    """A new lead, status registered, with every conflict found stored on it (the lead is kept either way)."""
    program = get_program(session, actor, program_id)
    partner = _partner_for(session, actor, program, partner_id)
    name = _text(company, "company", 200, required=True)
    assert name is not None
    key = company_key(name)
    if not key:
        raise ValidationError("company must contain letters or digits", field="company")
    host = domain_of(domain)
    email = _text(contact_email, "contact_email", 320)
    if email is not None:
        email = check_email(email, field="contact_email")
    if expected_value is not None:
        if isinstance(expected_value, bool) or not isinstance(expected_value, int) or expected_value < 0:
            raise ValidationError(
                "expected_value must be a whole number of minor units, 0 or more", field="expected_value"
            )
        currency = check_currency(currency or program.currency)
    elif currency:
        currency = check_currency(currency)
    conflicts = find_conflicts(session, program_id=program.id, partner_id=partner.id, domain=host, key=key, now=now)
    lead = Lead(
        id=new_id("lead"),
        program_id=program.id,
        partner_id=partner.id,
        company=name,
        company_key=key,
        domain=host,
        contact_name=_text(contact_name, "contact_name", 200),
        contact_email=email,
        expected_value=expected_value,
        currency=currency if expected_value is not None else None,
        notes=_text(notes, "notes", 5000) or "",
        status=LeadState.REGISTERED.value,
        conflicts=conflicts or None,
        created_at=now,
        created_by=actor.id,
        last_update_at=now,
    )
    session.add(lead)
    session.flush()
    audit.record(
        session, actor=actor, action="lead.register", object_type="lead", object_id=lead.id, program_id=program.id,
        now=now, after={"partner_id": partner.id, "company": name, "domain": host, "conflicts": conflicts},
    )  # fmt: skip
    flagged = f" ({len(conflicts)} possible conflict{'s' if len(conflicts) != 1 else ''} flagged)" if conflicts else ""
    add_line(session, lead=lead, kind="lead.registered", text=f"Lead registered{flagged}", actor=actor, now=now)
    return lead


def _decidable(session: Session, actor: Actor, lead_ids: list[str]) -> list[Lead]:
    if not lead_ids:
        raise ValidationError("choose at least one lead", field="ids")
    leads = [get_lead(session, actor, lead_id, field="ids") for lead_id in dict.fromkeys(lead_ids)]
    for lead in leads:
        if lead.status != LeadState.REGISTERED:
            raise InvalidTransition(
                f"lead {lead.id} ({lead.company}) is {lead.status}; only a registered lead is decided; "
                "nothing was changed",
                field="status",
            )
    return leads


def accept_leads(session: Session, *, actor: Actor, lead_ids: list[str], now: datetime) -> list[Deal]:
    """registered → accepted for all or none; each gets protection and a deal at the pipeline's first stage."""
    require_staff_write(actor, "accepting a lead")
    leads = _decidable(session, actor, lead_ids)
    deals: list[Deal] = []
    for lead in leads:
        program = session.get(Program, lead.program_id)
        assert program is not None
        until = now + timedelta(days=program.lead_protection_days)
        LEAD_MACHINE.transition(
            session, Lead, [lead.id], src=LeadState.REGISTERED, dst=LeadState.ACCEPTED,
            values={"decided_at": now, "decided_by": actor.id, "protected_until": until, "last_update_at": now},
        )  # fmt: skip
        deal = Deal(
            id=new_id("deal"),
            program_id=lead.program_id,
            partner_id=lead.partner_id,
            lead_id=lead.id,
            company=lead.company,
            domain=lead.domain,
            stage=deal_stages(program)[0],
            status=DealStatus.OPEN.value,
            amount=lead.expected_value,
            currency=lead.currency,
            created_at=now,
            updated_at=now,
            last_update_at=now,
        )
        session.add(deal)
        session.flush()
        audit.record(
            session, actor=actor, action="lead.accept", object_type="lead", object_id=lead.id,
            program_id=lead.program_id, now=now, before={"status": LeadState.REGISTERED.value},
            after={"status": LeadState.ACCEPTED.value, "protected_until": until.isoformat(), "deal_id": deal.id},
        )  # fmt: skip
        add_line(session, lead=lead, deal=deal, kind="lead.accepted",
                 text=f"Lead accepted; protected until {until:%d %b %Y}; deal opened at stage {deal.stage}",
                 actor=actor, now=now)  # fmt: skip
        deals.append(deal)
    return deals


def reject_leads(session: Session, *, actor: Actor, lead_ids: list[str], reason: str, now: datetime) -> list[Lead]:
    """registered → rejected for all or none, with the reason on the record and on the partner's timeline."""
    require_staff_write(actor, "rejecting a lead")
    why = _text(reason, "reason", 2000, required=True)
    leads = _decidable(session, actor, lead_ids)
    LEAD_MACHINE.transition(
        session, Lead, [lead.id for lead in leads], src=LeadState.REGISTERED, dst=LeadState.REJECTED,
        values={"decided_at": now, "decided_by": actor.id, "reason": why, "last_update_at": now},
    )  # fmt: skip
    for lead in leads:
        audit.record(
            session, actor=actor, action="lead.reject", object_type="lead", object_id=lead.id,
            program_id=lead.program_id, now=now, before={"status": LeadState.REGISTERED.value},
            after={"status": LeadState.REJECTED.value, "reason": why},
        )  # fmt: skip
        add_line(session, lead=lead, kind="lead.rejected", text=f"Lead rejected: {why}", actor=actor, now=now)
    return leads
