"""The indexed history (commissions/history_index.py) against a plain recount over the same records, and the
remembering plan chooser of a replay against plan_rules.

`naive_context` is the engine's context computed the obvious way, by scanning every record of the partner
for every event (what history.py did before it was indexed). Random histories are built and asked about
in between: records out of time order, several records of one event, the asked-about event already in the
history, times in other zones across month, quarter and year boundaries, two plan versions, and a version
asked about with other rules later. Each answer must be the recount's, exactly.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from partnerpay.commissions.engine_inputs import EarlierLine, EventFacts, PartnerContext, PlanRules
from partnerpay.commissions.history import (
    EARNING,
    History,
    Made,
    PartnerFacts,
    context_for,
    period_start,
)
from partnerpay.commissions.plan_earn import plan_chooser, plan_rules
from partnerpay.kit.money import Rounding, percent_of
from partnerpay.partners.models import Partner
from partnerpay.plans.models import Plan, PlanAssignment, PlanVersion
from partnerpay.plans.resolve import PlanBook
from partnerpay.plans.rules import Period, TierMode, parse_rules

PARTNER = PartnerFacts("prt_1", "active", "grp_1", "prt_0")
# Around the turn of a year, a quarter and months, in UTC and in zones either side of it.
BASE = datetime(2025, 12, 31, 22, 0, tzinfo=UTC)
ZONES = [UTC, timezone(timedelta(hours=5)), timezone(timedelta(hours=-8))]


def naive_context(
    history: History, *, partner: PartnerFacts, event: EventFacts, plan: PlanRules, rounding: Rounding
) -> PartnerContext:
    at, customer = event.occurred_at, event.customer_id
    paying = [p for p in history.paying.get(partner.id, ()) if p.occurred_at <= at and p.event_id != event.id]
    others = [p for p in paying if p.customer_id != customer]
    period_customers = {
        period: len({p.customer_id for p in others if p.occurred_at >= period_start(period, at)}) for period in Period
    }
    mine = [
        m
        for m in history.lines.get(partner.id, ())
        if m.plan_version_id == plan.version_id and m.event_at <= at and m.event_id != event.id
    ]
    paid_to_customer: dict[int, int] = defaultdict(int)
    earned_in_cap_period: dict[int, int] = defaultdict(int)
    earlier: dict[int, list[EarlierLine]] = {}
    for number, rule in enumerate(plan.rules, start=1):
        under = [m for m in mine if m.rule_number == number]
        paid_to_customer[number] = sum(m.amount for m in under if m.kind == "commission" and m.customer_id == customer)
        since = period_start(rule.caps.period, at)
        earned_in_cap_period[number] = sum(m.amount for m in under if m.kind in EARNING and m.event_at >= since)
        if rule.tier_mode is TierMode.RETROACTIVE and rule.tier_period is not None:
            start = period_start(rule.tier_period, at)
            ordered = sorted((m for m in under if m.event_at >= start and m.kind in EARNING), key=lambda m: m.event_at)
            bases: list[int] = []
            earned: list[int] = []
            for m in ordered:
                if m.kind == "commission":
                    bases.append(m.base)
                    earned.append(m.amount)
                else:
                    earned = [max(e, percent_of(b, m.rate_bp, rounding)) for b, e in zip(bases, earned, strict=True)]
            earlier[number] = [EarlierLine(b, e) for b, e in zip(bases, earned, strict=True)]
    return PartnerContext(
        partner_id=partner.id,
        status=partner.status,
        group_id=partner.group_id,
        period_customers=period_customers,
        paid_to_customer=dict(paid_to_customer),
        earned_in_cap_period=dict(earned_in_cap_period),
        customers_before=len({p.customer_id for p in others}),
        earlier_in_period=earlier,
        recruiter_id=partner.recruiter_id,
    )


def rules(periods: Sequence[tuple[str, str]]) -> list[Any]:
    """Rule 1 capped per partner period, rule 2 retroactive by tier period, rule 3 marginal tiers."""
    (cap1, tier2), (cap3, _) = periods[0], periods[1]
    tiers = [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 2, "percent_bp": 2500}]
    return parse_rules(
        [
            {"trigger": "invoice_paid", "percent_bp": 1000, "caps": {"per_partner_period": 10_000, "period": cap1}},
            {"trigger": "invoice_paid", "tiers": tiers, "tier_period": tier2, "tier_mode": "retroactive"},
            {"trigger": "deal_won", "flat": 500, "caps": {"period": cap3}},
        ]
    )


periods = st.sampled_from(["month", "quarter", "year"])
times = st.builds(
    lambda hours, zone: (BASE + timedelta(hours=hours)).astimezone(zone),
    st.integers(min_value=-24 * 100, max_value=24 * 100).map(lambda h: h - h % 7),  # ties happen
    st.sampled_from(ZONES),
)
# Few enough that one event has several records and the asked-about event is often among them, enough that
# it often is not (the index's fast path).
event_ids = st.integers(min_value=0, max_value=40).map(lambda i: f"evt_{i}")
customers = st.sampled_from(["cus_a", "cus_b", "cus_c", "cus_d", None])
partners = st.sampled_from(["prt_1", "prt_1", "prt_1", "prt_2"])
versions = st.sampled_from(["plv_1", "plv_1", "plv_2"])


def made(partner: str, customer: str | None, event: str, at: datetime, kind: str, amount: int, base: int,
         rate: int, version: str, number: int) -> Made:  # fmt: skip
    return Made(partner, customer, event, at, kind, amount, base, rate, version, number)


lines = st.builds(
    made,
    partners,
    customers,
    event_ids,
    times,
    st.sampled_from(["commission", "commission", "commission", "true_up", "true_up", "bonus", "two_tier"]),
    st.integers(min_value=-500, max_value=5_000),
    st.integers(min_value=0, max_value=50_000),
    st.sampled_from([0, 1000, 2500, 3333]),
    versions,
    st.integers(min_value=1, max_value=4),  # 4: a rule number the plan's three rules do not have
)
payments = st.tuples(st.just("pay"), partners, customers.filter(lambda c: c is not None), event_ids, times)
questions = st.tuples(st.just("ask"), event_ids, customers.filter(lambda c: c is not None), times, st.integers(0, 2))
steps = st.lists(st.one_of(payments, st.tuples(st.just("line"), lines), questions, st.just(("ask-last",))), max_size=60)


@settings(max_examples=400, deadline=None)
@given(steps=steps, plan_periods=st.lists(st.tuples(periods, periods), min_size=3, max_size=3),
       rounding=st.sampled_from(list(Rounding)))  # fmt: skip
def test_the_indexed_context_is_the_recount_of_the_records(
    steps: list[tuple[Any, ...]], plan_periods: list[tuple[str, str]], rounding: Rounding
) -> None:
    # plv_1 asked about with two rule lists: a version's rules read later with other periods are indexed too.
    plans = [
        PlanRules("plv_1", "Standard", 1, rules(plan_periods[0:2])),
        PlanRules("plv_2", "Standard", 2, rules(plan_periods[1:3])),
        PlanRules("plv_1", "Standard", 1, rules([plan_periods[2], plan_periods[0]])),
    ]
    history = History()
    last: tuple[str, str, datetime] | None = None
    for step in steps:
        if step[0] == "pay":
            _, partner, customer, event_id, at = step
            history.add_paying(partner, customer, event_id, at)
            last = (event_id, customer, at)
        elif step[0] == "line":
            m: Made = step[1]
            history.lines[m.partner_id].append(m)  # as load_history appends
        else:
            if step[0] == "ask":
                _, event_id, customer, at, which = step
            elif last is not None:  # the newest payment asks about itself, as live evaluation does
                (event_id, customer, at), which = last, 0
            else:
                continue
            event = EventFacts(event_id, "invoice_paid", "INV", at, 100, "EUR", customer, "ext")
            plan = plans[which]
            fast = context_for(history, partner=PARTNER, event=event, plan=plan, rounding=rounding)
            slow = naive_context(history, partner=PARTNER, event=event, plan=plan, rounding=rounding)
            assert fast == slow


one_month_lines = st.lists(
    st.tuples(
        st.sampled_from(["commission", "commission", "true_up"]),
        st.integers(min_value=0, max_value=27),  # the day in January
        st.integers(min_value=0, max_value=5_000),
        st.integers(min_value=0, max_value=50_000),
        st.sampled_from([1000, 2500, 3333]),
    ),
    max_size=30,
)


@settings(max_examples=300, deadline=None)
@given(arriving=one_month_lines, rounding=st.sampled_from(list(Rounding)))
def test_a_retroactive_period_is_refolded_when_a_line_arrives_out_of_order(
    arriving: list[tuple[str, int, int, int, int]], rounding: Rounding
) -> None:
    """One rule, one month, asked after every line: the kept-up fold and sums stay the recount's."""
    plan = PlanRules("plv_1", "Standard", 1, rules([("month", "month"), ("month", "month")]))
    history = History()
    end = datetime(2026, 1, 31, tzinfo=UTC)
    for n, (kind, day, amount, base, rate) in enumerate(arriving):
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day)
        history.lines["prt_1"].append(made("prt_1", "cus_a", f"evt_{n}", at, kind, amount, base, rate, "plv_1", 2))
        event = EventFacts("evt_new", "invoice_paid", "INV", end, 100, "EUR", "cus_a", "ext")
        fast = context_for(history, partner=PARTNER, event=event, plan=plan, rounding=rounding)
        assert fast == naive_context(history, partner=PARTNER, event=event, plan=plan, rounding=rounding)


def test_a_history_asked_in_time_order_counts_each_customer_once_per_period() -> None:
    """A worked case: three customers over two months, one paying twice, asked at each payment."""
    history = History()
    plan = PlanRules("plv_1", "Standard", 1, rules([("month", "month"), ("quarter", "month")]))
    jan, feb = datetime(2026, 1, 10, tzinfo=UTC), datetime(2026, 2, 10, tzinfo=UTC)
    seen = []
    for event_id, customer, at in [("e1", "a", jan), ("e2", "b", jan), ("e3", "a", feb), ("e4", "c", feb)]:
        event = EventFacts(event_id, "invoice_paid", "INV", at, 100, "EUR", customer, "ext")
        context = context_for(history, partner=PARTNER, event=event, plan=plan, rounding=Rounding.HALF_EVEN)
        seen.append((context.period_customers[Period.MONTH], context.period_customers[Period.QUARTER],
                     context.customers_before))  # fmt: skip
        history.add_paying(PARTNER.id, customer, event_id, at)
    # e2: a this month; e3: in February nobody else yet, this quarter b (a is itself); e4: a, then a and b.
    assert seen == [(0, 0, 0), (1, 1, 1), (0, 1, 1), (1, 2, 2)]


day_offsets = st.integers(min_value=0, max_value=60)


@st.composite
def plan_books(draw: st.DrawFn) -> PlanBook:
    """Two plans with versions taking effect, assigned to the program, a group and a partner, some ended or
    expiring: the boundaries plan_chooser remembers between."""
    plans = {pid: Plan(id=pid, program_id="prg_1", name=pid, created_at=BASE) for pid in ("pln_a", "pln_b")}
    versions: dict[str, list[PlanVersion]] = {}
    for pid in plans:
        made = [
            PlanVersion(id=f"{pid}_v{n}", plan_id=pid, version=n, status="published", rules=[],
                        effective_from=BASE + timedelta(days=draw(day_offsets)), created_at=BASE)
            for n in range(1, draw(st.integers(min_value=1, max_value=3)) + 1)
        ]  # fmt: skip
        versions[pid] = sorted(made, key=lambda v: (v.effective_from, v.version), reverse=True)
    assignments = []
    for n in range(draw(st.integers(min_value=0, max_value=5))):
        scope = draw(st.sampled_from(["program", "group", "partner"]))
        start = BASE + timedelta(days=draw(day_offsets))
        assignments.append(
            PlanAssignment(
                id=f"pla_{n}", program_id="prg_1", plan_id=draw(st.sampled_from(list(plans))), scope=scope,
                group_id="grp_1" if scope == "group" else None, partner_id="prt_1" if scope == "partner" else None,
                effective_from=start, created_at=BASE, created_by="test",
                ended_at=draw(st.none() | st.just(start + timedelta(days=draw(day_offsets)))),
                expires_at=draw(st.none() | st.just(start + timedelta(days=draw(day_offsets)))),
            )
        )  # fmt: skip
    book = PlanBook(plans, assignments, versions)
    for plan_versions in versions.values():
        for version in plan_versions:
            book._rules[version.id] = []  # rules are not what is compared here
    return book


@settings(max_examples=200, deadline=None)
@given(book=plan_books(), asks=st.lists(st.tuples(st.integers(0, 130), st.sampled_from([None, "grp_1"])), max_size=40))
def test_the_remembering_chooser_answers_as_plan_rules(book: PlanBook, asks: list[tuple[int, str | None]]) -> None:
    choose = plan_chooser(book)
    for days, group in asks:
        partner = Partner(id="prt_1", group_id=group)
        at = BASE + timedelta(days=days / 2)  # half days: on and between the boundaries
        assert choose(partner, at) == plan_rules(book, partner, at)
