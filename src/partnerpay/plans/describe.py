"""A rule in plain language, for the console, the API and the plan's history."""

from __future__ import annotations

from partnerpay.commissions.explain import percent_text
from partnerpay.kit.money import format_money
from partnerpay.plans.rules import Rule


def _amount(rule: Rule, currency: str) -> str:
    parts = []
    if rule.tiers is not None:
        steps = [f"{percent_text(t.percent_bp)} from {t.from_customers} customers" for t in rule.tiers]
        parts.append(
            f"{percent_text(rule.tiers[0].percent_bp)} of the amount, tiered by paying customers per {rule.tier_period}"
            f" ({'; '.join(steps)}; {rule.tier_mode.value})"
        )
    elif rule.percent_bp is not None:
        parts.append(f"{percent_text(rule.percent_bp)} of the amount")
    if rule.flat is not None:
        parts.append(f"{format_money(rule.flat, currency)} per event")
    return " plus ".join(parts)


def _conditions(rule: Rule) -> list[str]:
    c = rule.conditions
    out = []
    if c.products:
        out.append(f"product {' or '.join(c.products)}")
    if c.skus:
        out.append(f"SKU {' or '.join(c.skus)}")
    if c.customer_countries:
        out.append(f"customers in {', '.join(c.customer_countries)}")
    if c.first_payment_only:
        out.append("the customer's first payment only")
    if c.min_amount is not None:
        out.append(f"amount at least {c.min_amount} minor units")
    if c.partner_group_ids:
        out.append(f"partners of group {' or '.join(c.partner_group_ids)}")
    out.extend(f"metadata {k} = {v}" for k, v in sorted(c.metadata_equals.items()))
    return out


def describe_rule(rule: Rule, currency: str, *, number: int | None = None) -> str:
    """E.g. "Rule 1: 20 % of the amount on invoice_paid for product pro, for 12 months from the first payment"."""
    head = f"Rule {number}: " if number is not None else ""
    pays = _amount(rule, currency)
    text = f"{head}{pays} on {rule.trigger}" if pays else f"{head}on {rule.trigger}"
    conditions = _conditions(rule)
    if conditions:
        text += " for " + "; ".join(conditions)
    if rule.trigger == "invoice_paid":
        text += (
            f", for {rule.recurring_months} months from the first payment"
            if rule.recurring_months is not None
            else ", on every payment"
        )
    extras = []
    caps = rule.caps
    if caps.per_event is not None:
        extras.append(f"at most {format_money(caps.per_event, currency)} per event")
    if caps.per_customer is not None:
        extras.append(f"at most {format_money(caps.per_customer, currency)} per customer")
    if caps.per_partner_period is not None:
        extras.append(f"at most {format_money(caps.per_partner_period, currency)} per partner per {caps.period}")
    if rule.bonus is not None:
        extras.append(
            f"bonus {format_money(rule.bonus.amount, currency)} at the partner's {rule.bonus.first_customers}th "
            "paying customer"
        )
    if rule.two_tier_percent_bp is not None:
        extras.append(f"the recruiter earns {percent_text(rule.two_tier_percent_bp)} of it")
    if rule.hold_days is not None:
        extras.append(f"held {rule.hold_days} days")
    if rule.clawback_days is not None:
        extras.append(f"clawed back on refunds within {rule.clawback_days} days")
    if rule.waive_clawback_after_days is not None:
        extras.append(f"no clawback after {rule.waive_clawback_after_days} days")
    if rule.priority:
        extras.append(f"priority {rule.priority}")
    if extras:
        text += "; " + "; ".join(extras)
    return text + "."
