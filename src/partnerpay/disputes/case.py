"""What the team needs to decide a dispute, side by side.

A disputed line: the line with its explanation, its event, the plan version and rule that made it, the customer
with its attribution decisions. A missing-commission claim: the customers matching what the partner named (external
id, email, email domain), each with its decisions and why it did or did not credit this partner, their events around
the date, and the clicks on this partner's links around the date.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.models import CommissionLine
from partnerpay.disputes.models import Dispute
from partnerpay.events.customers import CustomerView, customer_view
from partnerpay.events.models import Customer, Event
from partnerpay.partners.models import Partner
from partnerpay.plans.describe import describe_rule
from partnerpay.plans.models import Plan, PlanVersion
from partnerpay.plans.rules import parse_rule
from partnerpay.tracking.models import Click

WINDOW = timedelta(days=14)  # how far around the claimed date events and clicks are shown
MAX_MATCHES = 10
MAX_CLICKS = 50


@dataclass(frozen=True, slots=True)
class PlanRule:
    plan_name: str
    version: int
    rule_number: int
    text: str


@dataclass(frozen=True, slots=True)
class Match:
    """A customer matching the claim and the verdict in words: credited to this partner, to another, or to nobody."""

    view: CustomerView
    credited_here: bool
    verdict: str
    events_near: list[Event]


@dataclass
class Case:
    line: CommissionLine | None = None
    event: Event | None = None
    plan_rule: PlanRule | None = None
    customer: CustomerView | None = None
    matches: list[Match] = field(default_factory=list)
    clicks: list[Click] = field(default_factory=list)
    clicks_total: int = 0
    window: tuple[datetime, datetime] | None = None


def plan_rule(session: Session, line: CommissionLine, currency: str) -> PlanRule | None:
    if line.plan_version_id is None or line.rule_number is None:
        return None
    row = session.execute(
        select(Plan.name, PlanVersion.version, PlanVersion.rules)
        .join(Plan, Plan.id == PlanVersion.plan_id)
        .where(PlanVersion.id == line.plan_version_id)
    ).first()
    if row is None:
        return None
    name, version, rules = row
    index = line.rule_number - 1
    text = f"Rule {line.rule_number}"
    if 0 <= index < len(rules):
        rule = parse_rule(rules[index], index=index, custom_types=[rules[index].get("trigger", "")])
        text = describe_rule(rule, currency, number=line.rule_number)
    return PlanRule(name, version, line.rule_number, text)


def _matching_customers(session: Session, program_id: str, ref: str) -> list[Customer]:
    text = ref.strip().lower()
    domain = text.rsplit("@", 1)[-1] if "@" in text else text
    terms = [
        func.lower(Customer.external_id).contains(text, autoescape=True),
        func.lower(func.coalesce(Customer.email, "")).contains(text, autoescape=True),
        func.lower(func.coalesce(Customer.domain, "")).contains(domain, autoescape=True),
    ]
    stmt = select(Customer).where(Customer.program_id == program_id, or_(*terms)).order_by(Customer.id)
    return list(session.scalars(stmt.limit(MAX_MATCHES)))


def verdict(view: CustomerView, partner_id: str, names: dict[str, str]) -> tuple[bool, str]:
    decision = view.decision
    if view.customer.partner_id == partner_id:
        why = f" ({decision.rule}: {decision.reason})" if decision else ""
        return True, f"credited to this partner{why}"
    if view.customer.partner_id is not None:
        who = names.get(view.customer.partner_id, view.customer.partner_id)
        why = f" by {decision.rule}: {decision.reason}" if decision else ""
        return False, f"credited to another partner, {who}{why}"
    notes = sorted({e.event.unattributed_reason for e in view.timeline if e.event.unattributed_reason})
    return False, "credited to nobody: " + ("; ".join(notes) if notes else "no event named a partner")


def build_case(session: Session, actor: Actor, dispute: Dispute) -> Case:
    """The evidence from our own data; staff only (the caller checks), so decisions of other partners show."""
    case = Case()
    if dispute.line_id is not None:
        line = session.get(CommissionLine, dispute.line_id)
        assert line is not None
        case.line = line
        case.event = session.get(Event, line.event_id) if line.event_id else None
        case.plan_rule = plan_rule(session, line, line.currency)
        if line.customer_id is not None:
            case.customer = customer_view(session, actor, line.customer_id)
        return case
    at = dispute.event_date or dispute.created_at
    start, end = at - WINDOW, at + WINDOW
    case.window = (start, end)
    found = _matching_customers(session, dispute.program_id, dispute.customer_ref or "")
    views = [customer_view(session, actor, c.id) for c in found]
    ids = {v.customer.partner_id for v in views if v.customer.partner_id}
    names = dict(session.execute(select(Partner.id, Partner.name).where(Partner.id.in_(sorted(ids)))).all())
    for v in views:
        here, text = verdict(v, dispute.partner_id, names)
        near = [e.event for e in v.timeline if start <= e.event.occurred_at <= end]
        case.matches.append(Match(v, here, text, near))
    in_window = (Click.partner_id == dispute.partner_id, Click.at >= start, Click.at <= end)
    case.clicks_total = int(session.scalar(select(func.count()).select_from(Click).where(*in_window)) or 0)
    case.clicks = list(session.scalars(select(Click).where(*in_window).order_by(Click.at.desc()).limit(MAX_CLICKS)))
    return case
