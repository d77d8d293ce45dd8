"""Reading customers: lists by program (status, partner, search) and one customer with its event timeline,
the attribution decisions behind it and the commission lines each event made."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import PAYING, REVERSING
from partnerpay.kit.errors import NotFound, ValidationError
from partnerpay.kit.paging import Page, check_limit
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program
from partnerpay.tracking.attribution_models import Attribution

# The lifecycle (events/lifecycle.py) moves a customer between these; a new customer is a lead.
STATUSES = ("lead", "trial", "active", "past_due", "canceled", "refunded")
# The partner filter's value for "customers without a partner".
NO_PARTNER = "none"
PAYING_TYPES = tuple(t.value for t in PAYING)
REVERSING_TYPES = tuple(t.value for t in REVERSING)


@dataclass(frozen=True, slots=True)
class CustomerRow:
    customer: Customer
    partner_name: str | None
    currency: str  # the program's: lifetime revenue is kept in it


@dataclass(frozen=True, slots=True)
class TimelineEntry:
    event: Event
    partner_name: str | None
    decision: Attribution | None  # the attribution the event's partner came from
    lines: list[CommissionLine]


@dataclass(frozen=True, slots=True)
class Totals:
    events: int
    paid: dict[str, int] = field(default_factory=dict)  # per currency, never mixed
    reversed: dict[str, int] = field(default_factory=dict)  # refunds and chargebacks
    commissions: dict[str, int] = field(default_factory=dict)  # every line, clawbacks negative


@dataclass(frozen=True, slots=True)
class CustomerView:
    customer: Customer
    program: Program
    partner: Partner | None
    decision: Attribution | None  # the current one
    history: list[Attribution]  # every decision, oldest first
    timeline: list[TimelineEntry]  # newest first
    totals: Totals


def check_status(status: str | None) -> str | None:
    if status and status not in STATUSES:
        raise ValidationError(f"status must be one of {', '.join(STATUSES)}, not {status!r}", field="status")
    return status or None


def visible(actor: Actor, customer: Customer) -> bool:
    """Staff see every customer of their programs; a partner only those attributed to it now."""
    if not actor.sees_program(customer.program_id):
        return False
    return actor.partner_id is None or actor.partner_id == customer.partner_id


def get_customer(session: Session, actor: Actor, customer_id: str) -> Customer:
    """The customer, or 404 when it does not exist or the actor may not see it."""
    customer = session.get(Customer, customer_id)
    if customer is None or not visible(actor, customer):
        raise NotFound(f"customer {customer_id} not found", field="customer_id")
    return customer


def _filtered(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None,
    status: str | None,
    partner_id: str | None,
    q: str | None,
) -> Select[Any]:
    stmt = select(Customer)
    if program_id:
        stmt = stmt.where(Customer.program_id == get_program(session, actor, program_id).id)
    elif actor.program_id is not None:
        stmt = stmt.where(Customer.program_id == actor.program_id)
    if actor.partner_id is not None:
        stmt = stmt.where(Customer.partner_id == actor.partner_id)
    if check_status(status):
        stmt = stmt.where(Customer.status == status)
    if partner_id == NO_PARTNER:
        stmt = stmt.where(Customer.partner_id.is_(None))
    elif partner_id:
        stmt = stmt.where(Customer.partner_id == partner_id)
    text = (q or "").strip().lower()
    if text:
        stmt = stmt.where(
            or_(
                func.lower(Customer.external_id).contains(text, autoescape=True),
                func.lower(func.coalesce(Customer.email, "")).contains(text, autoescape=True),
            )
        )
    return stmt


def list_customers(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    status: str | None = None,
    partner_id: str | None = None,
    q: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
    newest_first: bool = False,
) -> Page[CustomerRow]:
    """One page of customers by id (time-sortable): oldest first for the API, newest first for the console."""
    check_limit(limit)
    stmt = _filtered(session, actor, program_id=program_id, status=status, partner_id=partner_id, q=q)
    if cursor:
        stmt = stmt.where(Customer.id < cursor if newest_first else Customer.id > cursor)
    order = Customer.id.desc() if newest_first else Customer.id
    found = list(session.scalars(stmt.order_by(order).limit(limit + 1)))
    more = len(found) > limit
    found = found[:limit]
    partners = _partner_names(session, {c.partner_id for c in found if c.partner_id})
    currencies = dict(
        session.execute(
            select(Program.id, Program.currency).where(Program.id.in_(sorted({c.program_id for c in found})))
        ).all()
    )
    rows = [
        CustomerRow(c, partners.get(c.partner_id) if c.partner_id else None, currencies.get(c.program_id, ""))
        for c in found
    ]
    return Page(rows, found[-1].id if more and found else None)


def count_customers(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    partner_id: str | None = None,
    q: str | None = None,
) -> dict[str, int]:
    """Customers per status under the same filters (every status included), for the filter bar."""
    stmt = _filtered(session, actor, program_id=program_id, status=None, partner_id=partner_id, q=q).subquery()
    found = {s: 0 for s in STATUSES}
    for status, n in session.execute(select(stmt.c.status, func.count()).group_by(stmt.c.status)).all():
        found[status] = int(n)
    return found


def customer_view(session: Session, actor: Actor, customer_id: str) -> CustomerView:
    """The customer, its partner and decisions, and its events newest first, each with its commission lines.

    A partner sees only its own events, decisions and lines of the customer (not an earlier partner's).
    """
    customer = get_customer(session, actor, customer_id)
    program = session.get(Program, customer.program_id)
    assert program is not None
    mine = actor.partner_id
    events_stmt = select(Event).where(Event.customer_id == customer.id)
    if mine is not None:
        events_stmt = events_stmt.where(Event.partner_id == mine)
    events = list(session.scalars(events_stmt.order_by(Event.occurred_at.desc(), Event.id.desc())))
    lines_stmt = select(CommissionLine).where(CommissionLine.customer_id == customer.id)
    if mine is not None:
        lines_stmt = lines_stmt.where(CommissionLine.partner_id == mine)
    by_event: dict[str, list[CommissionLine]] = defaultdict(list)
    commissions: dict[str, int] = defaultdict(int)
    for line in session.scalars(lines_stmt.order_by(CommissionLine.id)):
        if line.event_id:
            by_event[line.event_id].append(line)
        commissions[line.currency] += line.amount
    history = [a for a in _history(session, customer.id) if mine is None or a.partner_id == mine]
    decisions = {a.id: a for a in history}
    names = _partner_names(session, {e.partner_id for e in events if e.partner_id} | {a.partner_id for a in history})
    timeline = [
        TimelineEntry(
            e,
            names.get(e.partner_id) if e.partner_id else None,
            decisions.get(e.attribution_id) if e.attribution_id else None,
            by_event.get(e.id, []),
        )
        for e in events
    ]
    return CustomerView(
        customer=customer,
        program=program,
        partner=session.get(Partner, customer.partner_id) if customer.partner_id else None,
        decision=decisions.get(customer.attribution_id) if customer.attribution_id else None,
        history=history,
        timeline=timeline,
        totals=Totals(
            events=len(events),
            paid=_sum(events, PAYING_TYPES),
            reversed=_sum(events, REVERSING_TYPES),
            commissions=dict(commissions),
        ),
    )


def _history(session: Session, customer_id: str) -> list[Attribution]:
    stmt = select(Attribution).where(Attribution.customer_id == customer_id)
    return list(session.scalars(stmt.order_by(Attribution.decided_at, Attribution.id)))


def _sum(events: list[Event], types: tuple[str, ...]) -> dict[str, int]:
    found: dict[str, int] = defaultdict(int)
    for e in events:
        if e.type in types and e.amount is not None and e.currency:
            found[e.currency] += e.amount
    return dict(found)


def _partner_names(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict(session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(sorted(ids)))).all())
