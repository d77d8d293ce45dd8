"""Properties of the rule evaluator over generated rules, amounts and partner histories."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from partnerpay.commissions.engine import tier_for
from partnerpay.commissions.engine_inputs import CustomerContext, EarlierLine, PartnerContext, ProgramTerms
from partnerpay.commissions.service import commission_for
from partnerpay.kit.money import Rounding, percent_of
from partnerpay.partners.models import Partner
from partnerpay.plans.rules import Tier
from partnerpay.programs.models import Program
from tests.unit.engine_helpers import PROGRAM, invoice, run

amounts = st.integers(min_value=0, max_value=10**12)
bps = st.integers(min_value=0, max_value=10_000)
money = st.integers(min_value=0, max_value=10**9)
roundings = st.sampled_from([r.value for r in Rounding])


@st.composite
def tier_tables(draw: st.DrawFn) -> list[dict[str, int]]:
    """Valid tables: from 0, strictly increasing, any rates (a higher band may even pay less)."""
    starts = draw(st.lists(st.integers(min_value=1, max_value=500), max_size=6, unique=True))
    return [{"from_customers": s, "percent_bp": draw(bps)} for s in [0, *sorted(starts)]]


@st.composite
def caps(draw: st.DrawFn) -> dict[str, Any]:
    return {
        "per_event": draw(st.none() | money),
        "per_customer": draw(st.none() | money),
        "per_partner_period": draw(st.none() | money),
        "period": draw(st.sampled_from(["month", "quarter", "year"])),
    }


@given(amount=amounts, bp=bps, flat=st.none() | money, rounding=roundings, cap=caps(), paid=money, earned=money)
def test_lines_are_whole_non_negative_amounts_within_every_cap(
    amount: int, bp: int, flat: int | None, rounding: str, cap: dict[str, Any], paid: int, earned: int
) -> None:
    rule = {"trigger": "invoice_paid", "percent_bp": bp, "flat": flat, "caps": cap}
    partner = PartnerContext("prt_1", "active", paid_to_customer={1: paid}, earned_in_cap_period={1: earned})
    program = replace(PROGRAM, rounding=rounding)
    lines = run([rule], event=invoice(amount=amount), partner=partner, program=program)
    assert len(lines) <= 1
    for line in lines:
        got = line.draft.amount
        assert type(got) is int and got > 0
        assert got <= percent_of(amount, bp, Rounding(rounding)) + (flat or 0)
        if cap["per_event"] is not None:
            assert got <= cap["per_event"]
        if cap["per_customer"] is not None:
            assert got <= cap["per_customer"] - paid
        if cap["per_partner_period"] is not None:
            assert got <= cap["per_partner_period"] - earned


@given(amount=amounts, bp=st.integers(min_value=1, max_value=10_000), rounding=roundings)
def test_a_percent_rule_pays_percent_of_its_base(amount: int, bp: int, rounding: str) -> None:
    program = replace(PROGRAM, rounding=rounding)
    lines = run([{"trigger": "invoice_paid", "percent_bp": bp}], event=invoice(amount=amount), program=program)
    expected = percent_of(amount, bp, Rounding(rounding))
    assert [x.draft.amount for x in lines] == ([expected] if expected else [])
    for line in lines:
        assert (line.draft.base_amount, line.draft.rate_bp) == (amount, bp)


@given(table=tier_tables(), before=st.integers(min_value=0, max_value=1_000), amount=amounts)
def test_tiers_pick_the_band_the_customer_falls_in(table: list[dict[str, int]], before: int, amount: int) -> None:
    # The band is [from_customers, next tier's from_customers): found here by its bounds, not by a scan.
    bounds = [t["from_customers"] for t in table] + [10**9]
    (band,) = [t for t, lo, hi in zip(table, bounds, bounds[1:], strict=False) if lo <= before < hi]
    assert tier_for([Tier(**t) for t in table], before).percent_bp == band["percent_bp"]
    rule = {"trigger": "invoice_paid", "tiers": table, "tier_period": "quarter"}
    lines = run(
        [rule],
        event=invoice(amount=amount),
        partner=PartnerContext("p", "active", period_customers={"quarter": before}),
    )
    expected = percent_of(amount, band["percent_bp"])
    assert [(x.draft.amount, x.draft.rate_bp) for x in lines] == ([(expected, band["percent_bp"])] if expected else [])


@given(
    bases=st.lists(st.integers(min_value=0, max_value=10**9), min_size=1, max_size=8),
    low=st.integers(min_value=0, max_value=5_000),
    lift=st.integers(min_value=0, max_value=5_000),
)
def test_a_retroactive_true_up_brings_earlier_events_exactly_to_the_new_rate(
    bases: list[int], low: int, lift: int
) -> None:
    high = low + lift
    table = [{"from_customers": 0, "percent_bp": low}, {"from_customers": len(bases), "percent_bp": high}]
    earlier = [EarlierLine(b, percent_of(b, low)) for b in bases]
    rule = {"trigger": "invoice_paid", "tiers": table, "tier_period": "month", "tier_mode": "retroactive"}
    partner = PartnerContext("p", "active", period_customers={"month": len(bases)}, earlier_in_period={1: earlier})
    lines = run([rule], partner=partner)
    true_up = sum(x.draft.amount for x in lines if x.draft.kind == "true_up")
    assert true_up == sum(percent_of(b, high) - percent_of(b, low) for b in bases)
    # Evaluating again with the lifted amounts as earned pays no second true-up.
    lifted = [EarlierLine(b, percent_of(b, high)) for b in bases]
    again = run(
        [rule],
        partner=PartnerContext("p", "active", period_customers={"month": len(bases)}, earlier_in_period={1: lifted}),
    )
    assert [x.draft.kind for x in again if x.draft.kind == "true_up"] == []


@given(
    amount=amounts,
    bp=bps,
    hold=st.integers(min_value=0, max_value=3650),
    rounding=roundings,
    status=st.sampled_from(["active", "suspended", "applied"]),
    currency=st.sampled_from(["EUR", "JPY", "BHD"]),
)
def test_no_plan_is_exactly_the_default_rate(
    amount: int, bp: int, hold: int, rounding: str, status: str, currency: str
) -> None:
    terms = ProgramTerms("prg_1", currency, rounding, hold, bp)
    event = invoice(amount=amount, currency=currency)
    lines = run(None, event=event, partner=PartnerContext("prt_1", status), program=terms, customer=CustomerContext())
    program = Program(id="prg_1", currency=currency, rounding=rounding, hold_days=hold, default_percent_bp=bp)
    today = commission_for(
        program,
        Partner(id="prt_1", status=status),
        customer_id="cus_1",
        customer_external_id="acme",
        event=event,
        now=event.occurred_at,
    )
    if today is None:
        assert lines == []
        return
    (line,) = lines
    assert line.plan_version_id is None and line.rule_number is None
    mine, theirs = line.draft, today
    fields = ("amount", "currency", "base_amount", "rate_bp", "rounding", "hold_until", "explanation", "kind")
    assert [getattr(mine, f) for f in fields] == [getattr(theirs, f) for f in fields]
