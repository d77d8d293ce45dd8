"""Live evaluation: an attributed event, the plan version in effect for its partner, and the partner's history
read from the database → stored, posted and audited commission lines.

With no plan for the partner the program's default rate applies to paying events exactly as before
(commissions.service.earn_on_payment). The evaluation itself is commissions/engine.py, and the counts it
reads come from commissions/history.py, the same two a backtest uses.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.commissions.engine import evaluate
from partnerpay.commissions.engine_inputs import (
    EngineLine,
    Evaluation,
    EventFacts,
    PartnerContext,
    PlanRules,
    ProgramTerms,
)
from partnerpay.commissions.history import History, Made, PartnerFacts, context_for, customer_context, earliest_needed
from partnerpay.commissions.models import CommissionLine
from partnerpay.commissions.service import earn_on_payment, line_snapshot, post_lines
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import PAYING
from partnerpay.fx.service import Converted, to_program_currency
from partnerpay.partners.models import Partner
from partnerpay.plans.resolve import PlanBook, load_book
from partnerpay.plans.rules import NOT_TRIGGERS
from partnerpay.programs import terms
from partnerpay.programs.models import Program

PAYING_TYPES = tuple(t.value for t in PAYING)


def program_terms(program: Program) -> ProgramTerms:
    return ProgramTerms(
        id=program.id,
        currency=program.currency,
        rounding=program.rounding,
        hold_days=program.hold_days,
        default_percent_bp=program.default_percent_bp,
    )


def event_facts(event: Event, customer_external_id: str) -> EventFacts:
    """The event as the engine reads it; a customer's name and country come from the event's metadata
    (`customer_name`, `customer_country`), as billing systems send them with the payment."""
    metadata = event.metadata_json or {}
    name, country = metadata.get("customer_name"), metadata.get("customer_country")
    return EventFacts(
        id=event.id,
        type=event.type,
        external_id=event.external_id,
        occurred_at=event.occurred_at,
        amount=event.amount,
        currency=event.currency,
        customer_id=event.customer_id,
        customer_external_id=customer_external_id,
        product=event.product,
        metadata=metadata,
        customer_name=name if isinstance(name, str) else None,
        customer_country=country.upper() if isinstance(country, str) else None,
    )


def partner_facts(partner: Partner) -> PartnerFacts:
    return PartnerFacts(partner.id, partner.status, partner.group_id, partner.recruited_by_id)


def plan_rules(book: PlanBook, partner: Partner, at: datetime) -> PlanRules | None:
    choice = book.choose(partner.id, partner.group_id, at)
    if choice is None:
        return None
    return PlanRules(choice.version.id, choice.how.plan_name, choice.version.version, book.rules(choice.version))


def plan_chooser(book: PlanBook) -> Callable[[Partner, datetime], PlanRules | None]:
    """plan_rules for the many events of a replay: the same answer, remembered per partner and group between the
    book's boundaries. A choice compares the time only with these (an assignment's start, end and expiry, a
    version's effective_from), so two times with the same boundaries at or before them get the same choice."""
    bounds = sorted(
        {t for a in book.assignments for t in (a.effective_from, a.ended_at, a.expires_at) if t is not None}
        | {v.effective_from for versions in book.versions.values() for v in versions if v.effective_from is not None}
    )
    memo: dict[tuple[str, str | None, int], PlanRules | None] = {}

    def choose(partner: Partner, at: datetime) -> PlanRules | None:
        key = (partner.id, partner.group_id, bisect_right(bounds, at))
        if key not in memo:
            memo[key] = plan_rules(book, partner, at)
        return memo[key]

    return choose


def load_history(session: Session, *, partner_id: str, customer_id: str, plan: PlanRules, at: datetime) -> History:
    """The partner's paying events and lines under this plan version that a context at `at` can read.

    Of the partner's other customers one row each is read: their latest payment at or before `at` in the
    window. Every period a context counts ends at `at`, so "paid in the period" is "latest payment on or after
    the period's start" — the counts are those of all the rows, for a fraction of the reading.
    """
    since = earliest_needed(plan.rules, at)
    history = History()
    paying = (Event.type.in_(PAYING_TYPES), Event.occurred_at <= at)
    own = select(Event.id, Event.partner_id, Event.occurred_at).where(Event.customer_id == customer_id, *paying)
    for event_id, owner, occurred_at in session.execute(own):
        history.add_paying(owner if owner == partner_id else None, customer_id, event_id, occurred_at)
    latest = (
        select(Event.customer_id, func.max(Event.occurred_at), func.max(Event.id))
        .where(Event.partner_id == partner_id, Event.customer_id != customer_id, *paying)
        .group_by(Event.customer_id)
    )
    if since is not None:
        latest = latest.where(Event.occurred_at >= since)
    for cust, occurred_at, event_id in session.execute(latest):
        history.add_paying(partner_id, cust, event_id, occurred_at)
    c = CommissionLine
    lines = (
        select(c.customer_id, c.event_id, Event.occurred_at, c.kind, c.amount, c.base_amount, c.rate_bp, c.rule_number)
        .join(Event, Event.id == c.event_id)
        .where(
            c.partner_id == partner_id,
            c.plan_version_id == plan.version_id,
            c.status != "rejected",
            not_reversed(),
            Event.occurred_at <= at,
        )
        .order_by(Event.occurred_at, c.created_at, c.id)
    )
    if since is not None:
        lines = lines.where(or_(Event.occurred_at >= since, c.customer_id == customer_id))
    made = history.lines[partner_id]
    for line_customer, line_event, event_at, kind, amount, base, rate_bp, number in session.execute(lines):
        assert number is not None  # a line citing a plan version cites its rule
        made.append(
            Made(
                partner_id,
                line_customer,
                line_event,
                event_at,
                kind,
                amount,
                base or 0,
                rate_bp or 0,
                plan.version_id,
                number,
            )
        )
    return history


def not_reversed() -> ColumnElement[bool]:
    """A line no recalculation has reversed (commissions/recalculate.py): a reversed line's replacement counts
    instead. NOT EXISTS on the indexed reverses_line_id, so it costs a look-up per line, not a scan of all lines."""
    reversal = aliased(CommissionLine)
    return ~exists().where(reversal.reverses_line_id == CommissionLine.id, reversal.kind == "reversal")


def evaluation_for(
    program: Program,
    partner: Partner,
    event: EventFacts,
    plan: PlanRules | None,
    history: History,
    now: datetime | None,
    *,
    converted: Converted | None = None,
    terms: ProgramTerms | None = None,
    facts: PartnerFacts | None = None,
) -> Evaluation:
    """The one way an Evaluation is put together, live or replayed; no plan: the program's default rate.

    `converted` is the event amount in the program currency (fx.service.to_program_currency) when the event
    is in another currency; the lines are then made on it. `terms` and `facts` are program_terms(program) and
    partner_facts(partner) when the caller already has them (a replay reads them once, not per event)."""
    paying = event.type in PAYING_TYPES
    terms = terms if terms is not None else program_terms(program)
    facts = facts if facts is not None else partner_facts(partner)
    context = (
        PartnerContext(facts.id, facts.status, facts.group_id)
        if plan is None
        else context_for(history, partner=facts, event=event, plan=plan, rounding=terms.rounding_mode)
    )
    return Evaluation(
        program=terms,
        event=event,
        customer=customer_context(history, event, paying),
        partner=context,
        plan=plan,
        converted=converted,
        now=now,
    )


def store_lines(
    session: Session, *, actor: Actor, program: Program, lines: Sequence[EngineLine], now: datetime
) -> list[CommissionLine]:
    made = [line.draft.model() for line in lines]
    if not made:
        return []
    session.add_all(made)
    session.flush()
    post_lines(session, program.id, made, now)
    audit.record_many(
        session,
        actor=actor,
        action="commission.create",
        now=now,
        items=[
            ("commission_line", x.id, x.program_id, None, {**line_snapshot(x), "rule_number": x.rule_number})
            for x in made
        ],
    )
    return made


def earn(
    session: Session,
    *,
    actor: Actor,
    program: Program,
    partner: Partner,
    customer: Customer,
    event: Event,
    now: datetime,
    book: PlanBook | None = None,
) -> list[CommissionLine]:
    """Every line an attributed event makes for its partner (and the partner's recruiter)."""
    if event.type in {t.value for t in NOT_TRIGGERS}:
        return []
    plan = plan_rules(book or load_book(session, program.id), partner, event.occurred_at)
    if plan is None:
        if event.type not in PAYING_TYPES:
            return []
        return earn_on_payment(
            session, actor=actor, program=program, partner=partner, customer=customer, event=event, now=now
        )
    facts = event_facts(event, customer.external_id)
    history = load_history(session, partner_id=partner.id, customer_id=customer.id, plan=plan, at=event.occurred_at)
    converted = to_program_currency(
        session, program, amount=event.amount, currency=event.currency, at=event.occurred_at
    )
    lines = evaluate(evaluation_for(program, partner, facts, plan, history, now, converted=converted))
    if not lines or not terms.may_earn(session, actor=actor, partner=partner, event=event, now=now):
        return []
    return store_lines(session, actor=actor, program=program, lines=lines, now=now)
