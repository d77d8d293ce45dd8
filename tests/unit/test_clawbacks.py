"""The pure clawback arithmetic (commissions/clawbacks.py): allocation, cumulative targets, windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partnerpay.commissions.clawbacks import (
    Candidate,
    allocate,
    cancellation_claws,
    clawback_due,
    in_window,
    stop_note,
    stopped_by,
    waived,
)
from partnerpay.kit.errors import ValidationError
from partnerpay.plans.rules import Rule

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_allocate_takes_in_order_what_is_still_refundable() -> None:
    got = allocate(150_00, [Candidate("e3", 100_00, 30_00), Candidate("e2", 100_00, 0), Candidate("e1", 50_00, 0)])
    assert [(a.event_id, a.amount, a.refunded_before, a.refunded_total) for a in got] == [
        ("e3", 70_00, 30_00, 100_00),
        ("e2", 80_00, 0, 80_00),
    ]


def test_allocate_refuses_more_than_refundable_naming_the_amounts() -> None:
    with pytest.raises(ValidationError) as err:
        allocate(120_00, [("e1", 100_00, 10_00)], kind="chargeback", currency="EUR", customer_external_id="acme")
    assert err.value.field == "amount"
    assert "chargeback of €120.00 exceeds the €90.00 still refundable for customer acme" in str(err.value)


@pytest.mark.parametrize(
    ("line", "clawed", "refunded", "original", "rounding", "due"),
    [
        (20_00, 0, 100_00, 100_00, "half_even", -20_00),  # in full
        (20_00, 0, 33_33, 100_00, "half_even", -6_67),  # 666.6 → 667
        (20_00, 6_67, 66_66, 100_00, "half_even", -6_66),  # cumulative: 1333.2 → 1333, minus 667
        (20_00, 13_33, 100_00, 100_00, "half_even", -6_67),  # the rest, never a cent more
        (20_00, 20_00, 100_00, 100_00, "half_even", 0),
        (1, 0, 1, 2, "half_even", 0),  # 0.5 → 0 (even)
        (1, 0, 1, 2, "half_up", -1),
        (1, 0, 1, 2, "down", 0),
        (0, 0, 5, 10, "half_even", 0),
    ],
)
def test_clawback_due_is_a_cumulative_target(
    line: int, clawed: int, refunded: int, original: int, rounding: str, due: int
) -> None:
    assert clawback_due(line, clawed, refunded, original, rounding) == due


@settings(max_examples=200, deadline=None)
@given(
    line=st.integers(1, 10**9),
    original=st.integers(1, 10**9),
    parts=st.lists(st.integers(1, 10**9), min_size=1, max_size=8),
    rounding=st.sampled_from(["half_even", "half_up", "down"]),
)
def test_partial_refunds_never_claw_more_than_the_line(
    line: int, original: int, parts: list[int], rounding: str
) -> None:
    clawed, refunded = 0, 0
    for part in parts:
        refunded = min(original, refunded + part)
        due = clawback_due(line, clawed, refunded, original, rounding)
        assert due <= 0
        clawed -= due
        assert clawed <= line
    if refunded == original:
        assert clawed == line


def test_windows_and_waiver() -> None:
    rule = Rule(trigger="invoice_paid", percent_bp=2000, clawback_days=60, waive_clawback_after_days=365)
    plain = Rule(trigger="invoice_paid", percent_bp=2000)
    assert in_window(rule, T0, T0 + timedelta(days=60))
    assert not in_window(rule, T0, T0 + timedelta(days=60, seconds=1))
    assert in_window(rule, T0, T0 - timedelta(days=1))  # out of order: within
    assert in_window(plain, T0, T0 + timedelta(days=9999)) and in_window(None, T0, T0 + timedelta(days=9999))
    assert not waived(rule, T0 + timedelta(days=365), T0)
    assert waived(rule, T0 + timedelta(days=366), T0)
    assert not waived(rule, T0, None) and not waived(None, T0, T0 - timedelta(days=9999))
    assert cancellation_claws(rule, T0, T0 + timedelta(days=60))
    assert not cancellation_claws(rule, T0, T0 + timedelta(days=61))
    assert not cancellation_claws(plain, T0, T0) and not cancellation_claws(None, T0, T0)


def test_stopped_by_says_why() -> None:
    rule = Rule(trigger="invoice_paid", percent_bp=2000, clawback_days=60, waive_clawback_after_days=90)
    later = T0 + timedelta(days=61)
    assert stopped_by(rule, original_at=T0, reversal_at=later, first_paid_at=T0) == ("after the 60-day clawback window")
    assert stopped_by(rule, original_at=T0, reversal_at=later, first_paid_at=T0, cancellation=True) is None
    assert stopped_by(rule, original_at=later, reversal_at=T0 + timedelta(days=91), first_paid_at=T0) == (
        "after the customer paid for more than 90 days (clawback waived)"
    )
    assert stopped_by(None, original_at=T0, reversal_at=later, first_paid_at=T0) is None
    why = "after the 60-day clawback window"
    note = stop_note(
        kind="refund", external_id="re3", why=why, plan_name="Standard", version=2, rule_number=1,
        line_kinds=["commission", "two_tier"],
    )  # fmt: skip
    assert note == (
        "refund re3 after the 60-day clawback window of plan Standard v2 rule 1: commission and two-tier kept"
    )
