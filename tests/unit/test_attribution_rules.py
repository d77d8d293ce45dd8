"""The decision rules as a pure function: properties over any mix of deal, coupon, clicks and a named partner."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from partnerpay.partners.models import Partner
from partnerpay.tracking.attribution import DomainClaim, Evidence, add_months, click_valid, decide, span
from partnerpay.tracking.attribution_models import Rule
from partnerpay.tracking.models import Click, Coupon

AT = datetime(2026, 3, 1, 12, tzinfo=UTC)
PARTNERS = ["ptn_a", "ptn_b", "ptn_c"]


def click(n: int, partner_id: str, seconds_before: int) -> Click:
    return Click(
        id=f"clk_{n:04d}", partner_id=partner_id, code=f"{partner_id}.x", at=AT - timedelta(seconds=seconds_before)
    )


clicks_st = st.lists(
    st.tuples(st.sampled_from(PARTNERS), st.integers(min_value=-86_400, max_value=60 * 86_400)), max_size=6
).map(lambda xs: [click(i, p, s) for i, (p, s) in enumerate(xs)])
coupon_st = st.none() | st.sampled_from(PARTNERS).map(lambda p: Coupon(id="cpn_1", partner_id=p, code="C"))
claim_st = st.none() | st.sampled_from(PARTNERS).map(
    lambda p: DomainClaim(p, "globex.com", AT + timedelta(days=1), lead_id="lead_1")
)
named_st = st.none() | st.sampled_from(PARTNERS).map(lambda p: Partner(id=p, referral_code=p))


@settings(max_examples=300, deadline=None)
@given(
    clicks=clicks_st,
    coupon=coupon_st,
    claim=claim_st,
    named=named_st,
    model=st.sampled_from(["first_click", "last_click"]),
    overrides=st.booleans(),
    cookie_days=st.integers(min_value=0, max_value=90),
)
def test_the_decision_follows_the_rule_order(
    clicks: list[Click],
    coupon: Coupon | None,
    claim: DomainClaim | None,
    named: Partner | None,
    model: str,
    overrides: bool,
    cookie_days: int,
) -> None:
    ev = Evidence(AT, "signup", clicks, coupon, claim, named, Rule.PARTNER_ID if named else None)
    got = decide(ev, model=model, coupon_overrides_link=overrides, cookie_days=cookie_days)
    valid = sorted((k for k in clicks if click_valid(k.at, AT, cookie_days)), key=lambda k: (k.at, k.id))
    if claim is not None:
        assert got is not None and (got.rule, got.partner_id) == (Rule.DEAL, claim.partner_id)
    elif coupon is not None and (overrides or not valid):
        assert got is not None and (got.rule, got.partner_id, got.coupon_id) == (
            Rule.COUPON,
            coupon.partner_id,
            "cpn_1",
        )
    elif valid:
        chosen = valid[0] if model == "first_click" else valid[-1]
        assert got is not None and got.rule == Rule(model) and got.click_id == chosen.id
        assert got.partner_id == chosen.partner_id
    elif named is not None:
        assert got is not None and (got.rule, got.partner_id) == (Rule.PARTNER_ID, named.id)
    else:
        assert got is None
    if got is not None:
        assert got.reason


@given(days=st.integers(min_value=1, max_value=400), offset=st.integers(min_value=-5, max_value=5))
def test_a_click_is_valid_exactly_from_its_instant_to_its_expiry(days: int, offset: int) -> None:
    at = AT
    expiry = at + timedelta(days=days)
    assert click_valid(at, expiry + timedelta(microseconds=offset), days) is (offset <= 0)
    assert click_valid(at, at + timedelta(microseconds=offset), days) is (0 <= offset <= days * 86_400_000_000)


def test_months_are_calendar_months_clamped_to_the_month_end() -> None:
    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)
    assert add_months(datetime(2026, 11, 15, tzinfo=UTC), 14) == datetime(2028, 1, 15, tzinfo=UTC)


def test_spans_read_as_the_largest_whole_unit() -> None:
    assert [span(timedelta(seconds=s)) for s in (1, 59, 60, 7_200, 86_400, 3 * 86_400 + 5)] == [
        "1 second", "59 seconds", "1 minute", "2 hours", "1 day", "3 days",
    ]  # fmt: skip
