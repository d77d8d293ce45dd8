"""The commission rule evaluator: one event, its plan's rules and the facts around it → line drafts.

Pure: no session, no clock, no I/O. The caller gathers the counts (customers this period, what was already
paid) into an `Evaluation`; live ingest, recalculation and a backtest then share this one implementation.
With no plan the program's default rate applies through `commission_for`, so nothing changes for programs
without plans.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from partnerpay.commissions.engine_inputs import (
    EarlierLine,
    EngineLine,
    Evaluation,
    EventFacts,
    PartnerContext,
    RuleCheck,
)
from partnerpay.commissions.explain import hold_text, money_text, percent_text
from partnerpay.commissions.models import LineStatus
from partnerpay.commissions.service import LineDraft, commission_for
from partnerpay.events.schemas import EventType
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import percent_of
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.plans.overlap import winners
from partnerpay.plans.rules import Rule, Tier, TierMode
from partnerpay.programs.models import Program

_ACTIVE, _PENDING = PartnerStatus.ACTIVE.value, LineStatus.PENDING.value
# Enum members read once: on Python 3.11 each `EventType.X` is a descriptor call, and these run per event.
_INVOICE_PAID, _RETROACTIVE = EventType.INVOICE_PAID.value, TierMode.RETROACTIVE


def evaluate(ev: Evaluation) -> list[EngineLine]:
    """Every line one event makes: commissions, true-ups, bonuses and the recruiter's two-tier share."""
    if ev.plan is None:
        return _default_rate(ev)
    if ev.partner.status != _ACTIVE:
        return []
    base = program_amount(ev)
    # The trigger first: most of a plan's rules are for other event types.
    candidates = ev.plan.by_trigger.get(ev.event.type)
    if not candidates:
        return []
    matched = matching(candidates, ev, base)
    if not matched:
        return []
    # Which of them pay depends on the rules alone: worked out once per combination of a version's rules.
    key = tuple(n for n, _ in matched)
    paying = ev.plan.paying.get(key)
    if paying is None:
        chosen = {id(rule) for rule in winners([rule for _, rule in matched])}
        paying = ev.plan.paying[key] = tuple((n, rule) for n, rule in matched if id(rule) in chosen)
    lines: list[EngineLine] = []
    for n, rule in paying:
        lines.extend(_rule_lines(ev, rule, n, base))
    return lines


def _default_rate(ev: Evaluation) -> list[EngineLine]:
    """Today's behaviour exactly: the default rate on a paying event, through the very same function."""
    event = ev.event
    if event.type != _INVOICE_PAID or event.amount is None or event.currency is None:
        return []
    # Transient objects, never added to a session: commission_for reads only these attributes.
    program = Program(
        id=ev.program.id,
        currency=ev.program.currency,
        rounding=ev.program.rounding,
        hold_days=ev.program.hold_days,
        default_percent_bp=ev.program.default_percent_bp,
    )
    partner = Partner(id=ev.partner.partner_id, status=ev.partner.status, group_id=ev.partner.group_id)
    draft = commission_for(
        program,
        partner,
        customer_id=event.customer_id,
        customer_external_id=event.customer_external_id,
        event=event,
        now=ev.now or event.occurred_at,
        converted=ev.converted,
    )
    return [] if draft is None else [EngineLine(draft)]


def program_amount(ev: Evaluation) -> int | None:
    """The event amount in the program currency: the conversion's result when the currencies differ."""
    event = ev.event
    if event.amount is None:
        return None
    if ev.converted is not None:
        if ev.converted.currency != ev.program.currency or ev.converted.from_amount != event.amount:
            raise ValidationError(
                f"the conversion given is of {ev.converted.from_amount} {ev.converted.from_currency} to "
                f"{ev.converted.currency}, not of this event's {event.amount} {event.currency} to the program's "
                f"{ev.program.currency}",
                field="converted",
            )
        return ev.converted.amount
    if event.currency != ev.program.currency:
        raise ValidationError(
            f"event {event.external_id} is in {event.currency}, the program in {ev.program.currency}: "
            "convert the amount first (fx.service.convert)",
            field="converted",
        )
    return event.amount


def matching(checks: Sequence[RuleCheck], ev: Evaluation, base: int | None) -> list[tuple[int, Rule]]:
    """Of the rules of the event's trigger, those whose conditions the event meets and, for a recurring rule,
    still within its months (month N+1 on matches nothing, so a lower-priority rule may take over)."""
    event, found = ev.event, []
    for n, rule, products, skus, countries, first_only, min_amount, group_ids, metadata, months in checks:
        if products and event.product not in products:
            continue
        if skus and event.sku not in skus:
            continue
        if countries and event.customer_country not in countries:
            continue
        if first_only and not ev.customer.first_payment:
            continue
        if min_amount is not None and (base is None or base < min_amount):
            continue
        if group_ids and ev.partner.group_id not in group_ids:
            continue
        if metadata and not _metadata_equal(event.metadata, metadata):
            continue
        if months is not None and month_number(ev) > months:
            continue
        found.append((n, rule))
    return found


def _metadata_equal(metadata: Mapping[str, object], wanted: Sequence[tuple[str, object]]) -> bool:
    for key, value in wanted:
        actual = metadata.get(key)
        # Same type too: JSON true is not the number 1, nor "1" the number 1.
        if type(actual) is not type(value) or actual != value:
            return False
    return True


def month_number(ev: Evaluation) -> int:
    """Month 1 is the month of the customer's first payment."""
    return ev.customer.months_since_first + 1


def tier_for(tiers: list[Tier], customers_before: int) -> Tier:
    """The tier this customer falls in: the last whose from_customers the partner's other customers in the
    period reach. "20 % up to 10 customers, 30 % above" is [0: 20 %, 10: 30 %]; the 11th customer has 10
    before it, so 30 %. Tables are validated to start at 0 and increase, so there is always one."""
    chosen = tiers[0]
    for tier in tiers:
        if tier.from_customers <= customers_before:
            chosen = tier
    return chosen


@dataclass(frozen=True, slots=True)
class Capped:
    amount: int
    text: str  # ", capped at €X (per-customer cap)" or ""


def apply_caps(
    rule: Rule,
    number: int,
    raw: int,
    partner: PartnerContext,
    currency: str,
    *,
    used: int = 0,
    period_only: bool = False,
) -> Capped:
    """The amount after the rule's caps, never negative; `used` is what this event already took of the
    partner's period cap (a true-up after its own commission line). `period_only`: a true-up, whose per-event
    and per-customer caps belong to the earlier events themselves."""
    amount, which = raw, ""
    caps = rule.caps
    limits = []
    if caps.per_event is not None and not period_only:
        limits.append((caps.per_event, "per-event cap"))
    if caps.per_customer is not None and not period_only:
        limits.append((caps.per_customer - partner.paid_to_customer.get(number, 0), "per-customer cap"))
    if caps.per_partner_period is not None:
        spent = partner.earned_in_cap_period.get(number, 0) + used
        limits.append((caps.per_partner_period - spent, f"per-partner cap for the {caps.period}"))
    for limit, label in limits:
        limit = max(0, limit)
        if amount > limit:
            amount, which = limit, label
    return Capped(amount, f", capped at {money_text(amount, currency)} ({which})" if which else "")


def _noun(event: EventFacts) -> str:
    kind = "invoice" if event.type == _INVOICE_PAID else event.type.replace("_", " ")
    return f"{kind} {event.external_id}"


def _who(event: EventFacts) -> str:
    return event.customer_name or f"customer {event.customer_external_id}"


@dataclass(frozen=True, slots=True)
class _Maker:
    """Builds the drafts of one rule on one event: shared hold date, plan citation and ids."""

    ev: Evaluation
    rule: Rule
    number: int

    @property
    def hold_days(self) -> int:
        return self.rule.hold_days if self.rule.hold_days is not None else self.ev.program.hold_days

    def cite(self) -> str:
        assert self.ev.plan is not None
        return self.ev.plan.citations[self.number]

    def line(
        self,
        *,
        kind: str,
        amount: int,
        base: int,
        rate_bp: int,
        text: str,
        capped: Capped | None = None,
        raw: int = 0,
        partner_id: str = "",
    ) -> EngineLine:
        """`text` says what was computed; the explanation adds the result (before and after a cap) and the hold."""
        ev, plan = self.ev, self.ev.plan
        assert plan is not None
        hold_days = self.hold_days
        hold_until = ev.event.occurred_at + timedelta(days=hold_days)
        currency = ev.program.currency
        result = f"{money_text(raw, currency)}{capped.text}" if capped and capped.text else money_text(amount, currency)
        explanation = f"{text} = {result}; {hold_text(hold_until, hold_days)}"
        draft = LineDraft(
            id=new_id("com"),
            program_id=ev.program.id,
            partner_id=partner_id or ev.partner.partner_id,
            customer_id=ev.event.customer_id,
            event_id=ev.event.id,
            kind=kind,
            amount=amount,
            currency=currency,
            base_amount=base,
            rate_bp=rate_bp,
            rounding=ev.program.rounding_mode.value,
            status=_PENDING,
            hold_until=hold_until,
            explanation=explanation,
            created_at=ev.now or ev.event.occurred_at,
            plan_version_id=plan.version_id,
            rule_number=self.number,
        )
        return EngineLine(draft, plan.version_id, plan.plan_name, plan.version, self.number)


def _rule_lines(ev: Evaluation, rule: Rule, number: int, base: int | None) -> list[EngineLine]:
    maker = _Maker(ev, rule, number)
    lines: list[EngineLine] = []
    if rule.pays_per_event:
        lines.extend(_commission(maker, base))
    if rule.bonus is not None and ev.customer.first_payment:
        nth = ev.partner.customers_before + 1
        if nth == rule.bonus.first_customers and rule.bonus.amount > 0:
            text = (
                f"bonus for the first {rule.bonus.first_customers} customers "
                f"({_who(ev.event)} is customer {nth}), {maker.cite()}"
            )
            lines.append(maker.line(kind="bonus", amount=rule.bonus.amount, base=0, rate_bp=0, text=text))
    recruiter, share = ev.partner.recruiter_id, rule.two_tier_percent_bp
    earned = sum(x.draft.amount for x in lines if x.draft.kind in ("commission", "true_up"))
    if recruiter and share and earned > 0:
        amount = percent_of(earned, share, ev.program.rounding_mode)
        if amount > 0:
            currency = ev.program.currency
            text = (
                f"{percent_text(share)} of {money_text(earned, currency)} earned by recruited partner "
                f"{ev.partner.partner_id} on {_noun(ev.event)} for {_who(ev.event)}, {maker.cite()}"
            )
            lines.append(
                maker.line(kind="two_tier", amount=amount, base=earned, rate_bp=share, text=text, partner_id=recruiter)
            )
    return lines


def _commission(maker: _Maker, base: int | None) -> list[EngineLine]:
    ev, rule, number = maker.ev, maker.rule, maker.number
    currency, rounding = ev.program.currency, ev.program.rounding_mode
    bp, tier_text, before = rule.percent_bp, "", 0
    if rule.tiers is not None:
        assert rule.tier_period is not None
        before = ev.partner.period_customers.get(rule.tier_period, 0)
        tier = tier_for(rule.tiers, before)
        bp = tier.percent_bp
        tier_text = f" (tier from {tier.from_customers} customers: customer {before + 1} this {rule.tier_period.value})"
    percent_part = percent_of(base, bp, rounding) if bp is not None and base is not None else 0
    flat = rule.flat or 0
    if (bp is None or base is None) and not flat:
        return []  # a percent-only rule on an event without an amount pays nothing
    raw = percent_part + flat
    capped = apply_caps(rule, number, raw, ev.partner, currency)
    lines = []
    if capped.amount > 0:  # explained only when it pays: a capped-out rule makes no line to explain
        text = _commission_text(maker, base, bp, flat, tier_text)
        lines.append(
            maker.line(
                kind="commission",
                amount=capped.amount,
                base=base or 0,
                rate_bp=bp or 0,
                text=text,
                capped=capped,
                raw=raw,
            )
        )
    if rule.tier_mode is _RETROACTIVE and bp is not None:
        true_up = _true_up(maker, bp, before, used=capped.amount)
        if true_up is not None:
            lines.append(true_up)
    return lines


def _commission_text(maker: _Maker, base: int | None, bp: int | None, flat: int, tier_text: str) -> str:
    ev, rule, event, currency = maker.ev, maker.rule, maker.ev.event, maker.ev.program.currency
    parts = []
    if bp is not None and base is not None:
        parts.append(f"{percent_text(bp)} of {money_text(base, currency)} {_noun(event)}{tier_text}")
        if flat:
            parts.append(f" + {money_text(flat, currency)} flat")
    else:
        parts.append(f"{money_text(flat, currency)} flat per {_noun(event)}")
    parts.append(f" for {_who(event)}")
    if rule.recurring_months is not None:
        parts.append(f" (first {rule.recurring_months} months, month {month_number(ev)} of {rule.recurring_months})")
    if ev.converted is not None and ev.converted.rate is not None:
        source = money_text(ev.converted.from_amount, ev.converted.from_currency)
        parts.append(f" (converted: {source} at {ev.converted.rate.describe()})")
    parts.append(f", {maker.cite()}")
    return "".join(parts)


def _true_up(maker: _Maker, bp: int, before: int, *, used: int) -> EngineLine | None:
    """Lift the period's earlier events to the tier rate this event reached: the difference between the new
    rate on each earlier base and what was already earned on it (never negative, so a tier never claws back)."""
    ev, rule, number = maker.ev, maker.rule, maker.number
    rounding, currency = ev.program.rounding_mode, ev.program.currency
    earlier: list[EarlierLine] = list(ev.partner.earlier_in_period.get(number, ()))
    lifted = [(x, percent_of(x.base, bp, rounding) - x.earned) for x in earlier]
    lifted = [(x, diff) for x, diff in lifted if diff > 0]
    if not lifted:
        return None
    raw = sum(diff for _, diff in lifted)
    base = sum(x.base for x, _ in lifted)
    already = sum(x.earned for x, _ in lifted)
    capped = apply_caps(rule, number, raw, ev.partner, currency, used=used, period_only=True)
    if capped.amount <= 0:
        return None
    assert rule.tier_period is not None
    text = (
        f"true-up to {percent_text(bp)} on {len(lifted)} earlier event(s) this {rule.tier_period.value} "
        f"(base {money_text(base, currency)}, earned {money_text(already, currency)}) on reaching the tier "
        f"with customer {before + 1}, {maker.cite()}"
    )
    return maker.line(kind="true_up", amount=capped.amount, base=base, rate_bp=bp, text=text, capped=capped, raw=raw)
