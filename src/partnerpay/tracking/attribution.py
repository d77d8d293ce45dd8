"""Deciding which partner a customer belongs to, and recording why.

A decision is made at a customer's event when it has no current partner (never attributed, or its
attribution expired). The evidence, strongest first:

1. deal: an open/won deal or an accepted lead whose domain is the customer's domain and whose
   protection covers the event (a lead's protected_until; a deal without a lead is protected for the
   program's lead_protection_days from its registration);
2. coupon and clicks: a coupon beats the link when the program's coupon_overrides_link, else the link
   wins; among the customer's clicks valid at the event (click.at <= occurred_at <= click.at +
   cookie_days, both ends inclusive) the program's model picks the first or the last one;
3. an explicit partner_id or referral_code on the event.

Clicks are remembered per customer (customer_clicks: every click id any of its events carried), so a
signup with ?ref=clk_… and a payment weeks later without it are decided on the same clicks.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions import plan_earn
from partnerpay.commissions.explain import with_attribution
from partnerpay.commissions.models import CommissionLine
from partnerpay.deals.models import Deal, Lead, LeadStatus
from partnerpay.events.models import Customer, Event
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.programs.tracking_settings import normalise_host
from partnerpay.tracking.attribution_models import Attribution, CustomerClick, Rule
from partnerpay.tracking.models import Click, Coupon

# Addresses at these domains say nothing about the company: never a deal domain, never self-referral.
FREE_MAIL = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "live.com",
        "msn.com",
        "yahoo.com",
        "icloud.com",
        "me.com",
        "aol.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "proton.me",
        "protonmail.com",
    }
)


@dataclass(frozen=True)
class DomainClaim:
    partner_id: str
    domain: str
    protected_until: datetime
    lead_id: str | None = None
    deal_id: str | None = None
    company: str = ""


@dataclass(frozen=True)
class Evidence:
    """What one event and the customer's history offer for a decision (all already checked)."""

    occurred_at: datetime
    event_type: str
    clicks: list[Click] = field(default_factory=list)  # known clicks of this program with a partner
    coupon: Coupon | None = None  # active coupons only
    claim: DomainClaim | None = None
    named: Partner | None = None
    named_rule: Rule | None = None  # partner_id | referral_code


@dataclass(frozen=True)
class Decision:
    partner_id: str
    rule: Rule
    reason: str
    click_id: str | None = None
    coupon_id: str | None = None
    lead_id: str | None = None
    deal_id: str | None = None


NO_EVIDENCE = "no deal, coupon, click or partner named"


def add_months(at: datetime, months: int) -> datetime:
    """Calendar months, the day clamped to the month's end (31 Jan + 1 month = 28/29 Feb)."""
    total = at.month - 1 + months
    year, month = at.year + total // 12, total % 12 + 1
    return at.replace(year=year, month=month, day=min(at.day, calendar.monthrange(year, month)[1]))


def click_valid(click_at: datetime, occurred_at: datetime, cookie_days: int) -> bool:
    """Inclusive at both ends: a click counts up to the exact instant its cookie expires."""
    return click_at <= occurred_at <= click_at + timedelta(days=cookie_days)


def span(delta: timedelta) -> str:
    """3 days, 5 hours, 12 minutes, 40 seconds: the largest whole unit, for reasons people read."""
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds >= size:
            n = seconds // size
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return f"{seconds} second{'s' if seconds != 1 else ''}"


def _click_reason(click: Click, rule: Rule, ev: Evidence, cookie_days: int, extra: str = "") -> str:
    word = "first" if rule is Rule.FIRST_CLICK else "last"
    return (
        f"{word} click {span(ev.occurred_at - click.at)} before {ev.event_type.replace('_', ' ')} "
        f"on link {click.code} (cookie window {cookie_days} days){extra}"
    )


def decide(ev: Evidence, *, model: str, coupon_overrides_link: bool, cookie_days: int) -> Decision | None:
    """The one partner the evidence points to, or None; a pure function of its arguments."""
    if ev.claim is not None:
        c = ev.claim
        what = f"deal {c.deal_id}" if c.deal_id else f"accepted lead {c.lead_id}"
        return Decision(
            c.partner_id,
            Rule.DEAL,
            f"{what} for {c.company or c.domain} registered for domain {c.domain}, "
            f"protected until {c.protected_until:%d %b %Y}",
            lead_id=c.lead_id,
            deal_id=c.deal_id,
        )
    valid = sorted(
        (k for k in ev.clicks if k.partner_id and click_valid(k.at, ev.occurred_at, cookie_days)),
        key=lambda k: (k.at, k.id),
    )
    rule = Rule.FIRST_CLICK if model == "first_click" else Rule.LAST_CLICK
    chosen = (valid[0] if rule is Rule.FIRST_CLICK else valid[-1]) if valid else None
    if ev.coupon is not None and (chosen is None or coupon_overrides_link):
        beaten = f"; it overrides link {chosen.code} (coupon_overrides_link)" if chosen is not None else ""
        return Decision(
            ev.coupon.partner_id,
            Rule.COUPON,
            f"coupon {ev.coupon.code} used on {ev.event_type.replace('_', ' ')}{beaten}",
            coupon_id=ev.coupon.id,
        )
    if chosen is not None:
        assert chosen.partner_id is not None
        extra = f"; the link wins over coupon {ev.coupon.code} (coupon_overrides_link off)" if ev.coupon else ""
        return Decision(
            chosen.partner_id, rule, _click_reason(chosen, rule, ev, cookie_days, extra), click_id=chosen.id
        )
    if ev.named is not None and ev.named_rule is not None:
        how = "partner_id" if ev.named_rule is Rule.PARTNER_ID else f"referral code {ev.named.referral_code}"
        return Decision(ev.named.id, ev.named_rule, f"named on the {ev.event_type.replace('_', ' ')} event by {how}")
    return None


def email_domain(email: str | None) -> str | None:
    if not email or "@" not in email:
        return None
    return normalise_host(email.rsplit("@", 1)[1]) or None


def company_domain(email: str | None, domain: str | None) -> str | None:
    """The customer's company domain: the one given, else its email's unless that is free mail."""
    if domain:
        return normalise_host(domain) or None
    found = email_domain(email)
    return found if found and found not in FREE_MAIL else None


def is_self_referral(partner: Partner, *, email: str | None, domain: str | None) -> bool:
    """The customer is the partner: same email, or the company domain is the partner's own."""
    if email and email.strip().lower() == partner.email.strip().lower():
        return True
    if domain is None or domain in FREE_MAIL:
        return False
    own = {email_domain(partner.email), normalise_host(partner.website) if partner.website else None}
    return domain in (own - {None} - FREE_MAIL)


def domain_claim(session: Session, program: Program, domain: str | None, at: datetime) -> DomainClaim | None:
    """The earliest deal or accepted lead protecting `domain` at `at`, if any."""
    if not domain:
        return None
    protection = timedelta(days=program.lead_protection_days)
    claims: list[tuple[datetime, DomainClaim]] = []
    deals = session.execute(
        select(Deal, Lead)
        .outerjoin(Lead, Lead.id == Deal.lead_id)
        .where(Deal.program_id == program.id, Deal.domain == domain, Deal.status.in_(("open", "won")))
    ).all()
    for deal, lead in deals:
        until = lead.protected_until if lead is not None else deal.created_at + protection
        start = lead.created_at if lead is not None else deal.created_at
        if until is not None and start <= at <= until:
            claims.append((start, DomainClaim(deal.partner_id, domain, until, deal.lead_id, deal.id, deal.company)))
    leads = session.scalars(
        select(Lead).where(
            Lead.program_id == program.id,
            Lead.domain == domain,
            Lead.status == LeadStatus.ACCEPTED,
            Lead.created_at <= at,
            Lead.protected_until >= at,
        )
    ).all()
    for lead in leads:
        assert lead.protected_until is not None
        claims.append(
            (lead.created_at, DomainClaim(lead.partner_id, domain, lead.protected_until, lead.id, None, lead.company))
        )
    if not claims:
        return None
    # First come, first served; a deal beats its own lead at the same instant (it carries both ids).
    claims.sort(key=lambda c: (c[0], c[1].deal_id is None))
    return claims[0][1]


def remember_click(session: Session, *, customer: Customer, click_id: str, event_id: str, now: datetime) -> None:
    exists = session.scalar(
        select(CustomerClick.id).where(CustomerClick.customer_id == customer.id, CustomerClick.click_id == click_id)
    )
    if exists is None:
        session.add(
            CustomerClick(
                program_id=customer.program_id,
                customer_id=customer.id,
                click_id=click_id,
                event_id=event_id,
                seen_at=now,
            )
        )
        session.flush()


def known_clicks(session: Session, customer: Customer) -> list[Click]:
    """The clicks this customer's events named that the redirect has written, in this program."""
    return list(
        session.scalars(
            select(Click)
            .join(CustomerClick, CustomerClick.click_id == Click.id)
            .where(CustomerClick.customer_id == customer.id, Click.program_id == customer.program_id)
        ).all()
    )


def current_partner_id(customer: Customer, at: datetime) -> str | None:
    """The customer's partner at `at`; one attributed before decisions were recorded keeps it for ever."""
    if customer.partner_id is None:
        return None
    if customer.attributed_until is not None and at >= customer.attributed_until:
        return None
    return customer.partner_id


def apply_decision(
    session: Session, *, program: Program, customer: Customer, event: Event, decision: Decision, self_referral: bool
) -> Attribution:
    """Store the decision and make it the customer's current one."""
    decided_at = event.occurred_at
    expires = add_months(decided_at, program.attribution_months) if program.attribution_months else None
    row = Attribution(
        id=new_id("att"),
        program_id=program.id,
        customer_id=customer.id,
        partner_id=decision.partner_id,
        rule=decision.rule.value,
        click_id=decision.click_id,
        coupon_id=decision.coupon_id,
        lead_id=decision.lead_id,
        deal_id=decision.deal_id,
        reason=decision.reason,
        decided_at=decided_at,
        expires_at=expires,
        event_id=event.id,
        self_referral=self_referral,
    )
    session.add(row)
    customer.partner_id = decision.partner_id
    customer.attribution_id = row.id
    customer.attributed_until = expires
    customer.attribution = decision.reason[:200]
    session.flush()
    return row


def unattributed_note(
    *,
    customer: Customer,
    click_id: str | None,
    clicks: list[Click],
    ev: Evidence,
    cookie_days: int,
    deactivated_coupon: Coupon | None,
    expired_partner: str | None,
) -> str:
    """Why an event has no partner, in words staff can act on."""
    notes: list[str] = []
    if expired_partner is not None and customer.attributed_until is not None:
        notes.append(f"the attribution to partner {expired_partner} expired on {customer.attributed_until:%d %b %Y}")
    if click_id is not None:
        click = next((k for k in clicks if k.id == click_id), None)
        if click is None:
            notes.append(
                f"click {click_id} is not known (yet): it may still be in the redirect's write buffer "
                "or come from another system"
            )
        elif click.partner_id is None:
            notes.append(f"click {click_id} was on the unknown code {click.code!r}")
        elif not click_valid(click.at, ev.occurred_at, cookie_days):
            notes.append(f"click {click_id} on link {click.code} is outside the {cookie_days}-day cookie window")
    if deactivated_coupon is not None:
        notes.append(f"coupon {deactivated_coupon.code} is deactivated")
    return "; ".join(notes) or NO_EVIDENCE


def history(session: Session, customer_id: str) -> list[Attribution]:
    return list(
        session.scalars(
            select(Attribution).where(Attribution.customer_id == customer_id).order_by(Attribution.decided_at)
        ).all()
    )


def earn(
    session: Session,
    *,
    actor: Actor,
    program: Program,
    partner: Partner,
    customer: Customer,
    event: Event,
    now: datetime,
) -> list[CommissionLine]:
    """Commission on an attributed event (by the partner's plan, else the default rate on payments), its
    explanation citing why the customer is this partner's."""
    lines = plan_earn.earn(
        session, actor=actor, program=program, partner=partner, customer=customer, event=event, now=now
    )
    decision = session.get(Attribution, event.attribution_id) if event.attribution_id else None
    reason = decision.reason if decision is not None else customer.attribution
    for line in lines:
        line.explanation = with_attribution(line.explanation, partner_name=partner.name, reason=reason)
    if lines:
        session.flush()
    return lines
