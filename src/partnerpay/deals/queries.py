"""Read side of leads and deals: lists for the API, the pipeline board, the conflicts queue, portal tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, or_, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.deals.models import Deal, Lead, UpdateRequest
from partnerpay.deals.rules import DealStatus, LeadState
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.programs.tracking_settings import deal_stages


def _scoped(stmt: Select[Any], model: Any, actor: Actor) -> Select[Any]:
    if actor.program_id is not None:
        stmt = stmt.where(model.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(model.partner_id == actor.partner_id)
    return stmt


def list_leads(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = None,
    conflicted: bool | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Lead]:
    stmt = _scoped(select(Lead), Lead, actor)
    if program_id:
        stmt = stmt.where(Lead.program_id == program_id)
    if partner_id:
        stmt = stmt.where(Lead.partner_id == partner_id)
    if status:
        stmt = stmt.where(Lead.status == status)
    page = paginate(session, stmt, Lead.id, cursor=cursor, limit=limit)
    if conflicted is not None:
        # Conflicts are a JSON list; filtering in Python keeps SQLite and PostgreSQL alike (pages may run short).
        page.data = [lead for lead in page.data if bool(lead.conflicts) == conflicted]
    return page


def list_deals(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    partner_id: str | None = None,
    status: str | None = None,
    stage: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Deal]:
    stmt = _scoped(select(Deal), Deal, actor)
    for column, value in ((Deal.program_id, program_id), (Deal.partner_id, partner_id), (Deal.status, status),
                          (Deal.stage, stage)):  # fmt: skip
        if value:
            stmt = stmt.where(column == value)
    return paginate(session, stmt, Deal.id, cursor=cursor, limit=limit)


@dataclass
class Card:
    deal: Deal
    partner: Partner
    owner_id: str | None
    conflicts: int


@dataclass
class Board:
    program: Program
    columns: list[tuple[str, list[Card]]]
    won: int = 0
    lost: int = 0
    registered: list[tuple[Lead, Partner]] = field(default_factory=list)


def board(
    session: Session, actor: Actor, program: Program, *, partner_id: str | None = None, owner_id: str | None = None
) -> Board:
    """Open deals by stage, with counts of won and lost, and the leads still waiting for a decision."""
    stmt = select(Deal, Partner).join(Partner, Partner.id == Deal.partner_id).where(Deal.program_id == program.id)
    if partner_id:
        stmt = stmt.where(Deal.partner_id == partner_id)
    if owner_id:
        stmt = stmt.where(Partner.owner_id == owner_id)
    rows = session.execute(stmt.order_by(Deal.last_update_at, Deal.id)).all()
    leads = {
        lead.id: lead
        for lead in session.scalars(select(Lead).where(Lead.id.in_([d.lead_id for d, _ in rows if d.lead_id])))
    }
    stages = deal_stages(program)
    columns: dict[str, list[Card]] = {s: [] for s in stages}
    result = Board(program, [])
    for deal, partner in rows:
        if deal.status == DealStatus.WON:
            result.won += 1
        elif deal.status == DealStatus.LOST:
            result.lost += 1
        else:
            lead = leads.get(deal.lead_id or "")
            card = Card(deal, partner, partner.owner_id, len(lead.conflicts or []) if lead else 0)
            # A stage removed from the program's pipeline keeps its cards visible in a column of its own.
            columns.setdefault(deal.stage, []).append(card)
    result.columns = list(columns.items())
    waiting = select(Lead, Partner).join(Partner, Partner.id == Lead.partner_id)
    waiting = waiting.where(Lead.program_id == program.id, Lead.status == LeadState.REGISTERED.value)
    if partner_id:
        waiting = waiting.where(Lead.partner_id == partner_id)
    if owner_id:
        waiting = waiting.where(Partner.owner_id == owner_id)
    result.registered = [(lead, p) for lead, p in session.execute(waiting.order_by(Lead.created_at, Lead.id)).all()]
    return result


@dataclass
class ConflictCase:
    lead: Lead
    partner: Partner
    others: list[tuple[dict[str, Any], Lead | Deal | None, Partner | None]]


def conflict_queue(session: Session, actor: Actor, *, program_id: str | None = None) -> list[ConflictCase]:
    """Registered leads with flagged conflicts, each beside what it conflicts with, oldest first."""
    stmt = _scoped(select(Lead), Lead, actor).where(Lead.status == LeadState.REGISTERED.value)
    if program_id:
        stmt = stmt.where(Lead.program_id == program_id)
    cases: list[ConflictCase] = []
    for lead in session.scalars(stmt.order_by(Lead.created_at, Lead.id)):
        if not lead.conflicts:
            continue
        partner = session.get(Partner, lead.partner_id)
        assert partner is not None
        others: list[tuple[dict[str, Any], Lead | Deal | None, Partner | None]] = []
        for item in lead.conflicts:
            ref: Lead | Deal | None = None
            if item.get("ref_type") == "lead":
                ref = session.get(Lead, item["ref_id"])
            elif item.get("ref_type") == "deal":
                ref = session.get(Deal, item["ref_id"])
            owner = session.get(Partner, item["partner_id"]) if item.get("partner_id") else None
            others.append((item, ref, owner))
        cases.append(ConflictCase(lead, partner, others))
    return cases


def open_requests(session: Session, partner_id: str) -> list[tuple[UpdateRequest, str]]:
    """The partner's unanswered update requests with the company they are about, oldest first."""
    rows = session.scalars(
        select(UpdateRequest)
        .where(UpdateRequest.partner_id == partner_id, UpdateRequest.answered_at.is_(None))
        .order_by(UpdateRequest.asked_at, UpdateRequest.id)
    ).all()
    result = []
    for item in rows:
        subject = session.get(Deal, item.deal_id) if item.deal_id else session.get(Lead, item.lead_id or "")
        result.append((item, subject.company if subject else ""))
    return result


def requests_for(session: Session, *, lead_id: str | None, deal_id: str | None) -> list[UpdateRequest]:
    conditions = []
    if lead_id:
        conditions.append(UpdateRequest.lead_id == lead_id)
    if deal_id:
        conditions.append(UpdateRequest.deal_id == deal_id)
    if not conditions:
        return []
    stmt = select(UpdateRequest).where(or_(*conditions)).order_by(UpdateRequest.asked_at.desc(), UpdateRequest.id)
    return list(session.scalars(stmt))


def partner_leads(session: Session, partner_id: str) -> list[tuple[Lead, Deal | None]]:
    """The portal's list: every lead of the partner with its deal, newest first."""
    rows = session.execute(
        select(Lead, Deal)
        .outerjoin(Deal, Deal.lead_id == Lead.id)
        .where(Lead.partner_id == partner_id)
        .order_by(Lead.created_at.desc(), Lead.id.desc())
        .limit(500)
    ).all()
    return [(lead, deal) for lead, deal in rows]
