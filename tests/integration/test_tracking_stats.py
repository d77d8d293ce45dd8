"""Tracking figures by day on a real database: day boundaries in UTC, empty days, the partner filter,
unattributed clicks, money per currency, distinct paying customers, top partners, range validation."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import ValidationError
from partnerpay.tracking.stats import DayRange, Ratio, TrackingStats, day_range, tracking_stats
from tests import factories
from tests.stats_rows import Rows

START, END = date(2026, 1, 10), date(2026, 1, 14)


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def world(session: Session, clock: FixedClock) -> tuple[Rows, dict[str, str]]:
    """Two partners and an unattributed visitor in one program, and a second program that must not leak in."""
    now = clock.now()
    program = factories.program(session, now, name="Main")
    other = factories.program(session, now, name="Other")
    acme = factories.partner(session, program, now, name="Acme")
    beta = factories.partner(session, program, now, name="Beta")
    stranger = factories.partner(session, other, now, name="Stranger")
    owner = create_staff_user(
        session, actor=SYSTEM, email="pm@example.com", role="manager", password="correct horse battery", now=now
    )
    beta.owner_id = owner.id
    session.flush()
    rows = Rows(session)
    p, a, b = program.id, acme.id, beta.id
    # Day boundaries: 23:59:59 belongs to the 10th, 00:00:00 to the 11th; the 9th and 15th are outside.
    rows.click(p, a, at(10, 23, 59, 59), 3)
    rows.click(p, a, at(11, 0, 0, 0))
    rows.click(p, a, at(9, 23, 59, 59))
    rows.click(p, a, at(15, 0, 0, 0))
    rows.click(p, b, at(12), 2)
    rows.click(p, None, at(10, 8), 2)  # an unknown code: a click, never an attributed one
    rows.click(other.id, stranger.id, at(10), 5)
    rows.event(p, a, "signup", at(10, 23, 59, 59))
    rows.event(p, a, "signup", at(11, 0, 0, 0))
    rows.event(p, b, "signup", at(12))
    rows.event(p, None, "signup", at(12))
    rows.event(p, a, "invoice_paid", at(11), customer="alpha", amount=10_000, currency="EUR")
    rows.event(p, a, "invoice_paid", at(11, 18), customer="alpha", amount=2_500, currency="EUR")
    rows.event(p, a, "invoice_paid", at(13), customer="alpha", amount=700, currency="USD")
    rows.event(p, b, "invoice_paid", at(13), customer="bravo", amount=1_234, currency="EUR")
    rows.event(other.id, stranger.id, "signup", at(12))
    rows.lead(p, a, at(10, 0, 0, 0))
    rows.lead(p, a, at(12), status="rejected")
    rows.lead(p, b, at(12))
    rows.lead(p, b, at(14, 23, 59, 59))
    rows.deal(p, b, "won", at(13), 50_000, "EUR")
    rows.deal(p, b, "won", at(13), 9_900, "USD")
    rows.deal(p, b, "won", at(14), None, None)  # won without an amount: counted, no money
    rows.deal(p, a, "lost", None)
    rows.deal(p, a, "open", None)
    rows.deal(other.id, stranger.id, "won", at(13), 1, "EUR")
    session.commit()
    return rows, {"program": p, "acme": a, "beta": b, "other": other.id, "owner": owner.email}


def figures_of(stats: TrackingStats) -> dict[str, object]:
    def one(f: object) -> dict[str, object]:
        keys = ("clicks", "attributed_clicks", "signups", "leads", "deals_won")
        out: dict[str, object] = {k: getattr(f, k) for k in keys}
        return out | {"paying": f.paying_customers, "won": f.won, "revenue": f.revenue}  # type: ignore[attr-defined]

    return {"days": {d.day: one(d) for d in stats.days}, "totals": one(stats.totals)}


class TestTrackingStats:
    def test_program_figures_match_the_rows_day_by_day(self, session: Session, world: tuple[Rows, dict[str, str]]):
        rows, ids = world
        stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END))
        assert figures_of(stats) == rows.expected(ids["program"], START, END)

    def test_a_second_before_midnight_and_midnight_fall_on_their_own_days(self, session, world):
        _, ids = world
        stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END), partner_id=ids["acme"])
        by_day = {d.day: d for d in stats.days}
        assert (by_day[date(2026, 1, 10)].clicks, by_day[date(2026, 1, 11)].clicks) == (3, 1)
        assert (by_day[date(2026, 1, 10)].signups, by_day[date(2026, 1, 11)].signups) == (1, 1)
        assert stats.totals.clicks == 4  # the 9th at 23:59:59 and the 15th at 00:00:00 are outside the range

    def test_days_without_anything_are_present_with_zeros(self, session, world):
        _, ids = world
        empty = DayRange(date(2025, 12, 1), date(2025, 12, 3))
        stats = tracking_stats(session, program_id=ids["program"], days=empty)
        assert [d.day for d in stats.days] == empty.dates
        assert all(
            (d.clicks, d.signups, d.leads, d.deals_won, d.won, d.revenue) == (0, 0, 0, 0, {}, {}) for d in stats.days
        )
        assert stats.top_partners == []
        assert stats.conversion["signups_per_click"].basis_points is None

    def test_one_partner_sees_only_its_own_rows(self, session, world):
        rows, ids = world
        for name in ("acme", "beta"):
            stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END), partner_id=ids[name])
            assert figures_of(stats) == rows.expected(ids["program"], START, END, ids[name])
            assert stats.top_partners == []

    def test_unattributed_clicks_count_as_clicks_but_not_as_attributed(self, session, world):
        rows, ids = world
        stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END))
        unattributed = sum(1 for p, ptn, when in rows.clicks if p == ids["program"] and ptn is None)
        assert unattributed and stats.totals.clicks - stats.totals.attributed_clicks == unattributed

    def test_a_customer_paying_on_two_days_is_one_paying_customer_of_the_range(self, session, world):
        _, ids = world
        stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END), partner_id=ids["acme"])
        assert sum(d.paying_customers for d in stats.days) == 2 and stats.totals.paying_customers == 1
        assert stats.totals.revenue == {"EUR": 12_500, "USD": 700}

    def test_conversion_rates_are_exact_ratios_of_the_totals(self, session, world):
        rows, ids = world
        stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END))
        expected = rows.expected(ids["program"], START, END)["totals"]
        assert stats.conversion["signups_per_click"] == Ratio(expected["signups"], expected["clicks"])
        assert stats.conversion["won_deals_per_lead"] == Ratio(expected["deals_won"], expected["leads"])

    def test_top_partners_rank_by_won_deals_then_signups_with_their_owner(self, session, world):
        rows, ids = world
        stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END))
        beta, acme = stats.top_partners
        assert (beta.partner_id, beta.owner_email, acme.partner_id, acme.owner_email) == (
            ids["beta"], ids["owner"], ids["acme"], None,
        )  # fmt: skip
        for top in (beta, acme):
            mine = rows.expected(ids["program"], START, END, top.partner_id)["totals"]
            assert (top.clicks, top.signups, top.leads, top.deals_won) == (
                mine["clicks"], mine["signups"], mine["leads"], mine["deals_won"],
            )  # fmt: skip

    def test_many_clicks_are_counted_in_one_pass(self, session, world):
        rows, ids = world
        for day in range(10, 15):
            rows.click(ids["program"], ids["acme"], at(day, 3), 250)  # COPY on PostgreSQL
        session.commit()
        stats = tracking_stats(session, program_id=ids["program"], days=DayRange(START, END))
        assert figures_of(stats) == rows.expected(ids["program"], START, END)


class TestDayRange:
    TODAY = date(2026, 1, 15)

    def test_default_is_the_last_30_days_ending_today(self):
        assert day_range(None, None, today=self.TODAY) == DayRange(self.TODAY - timedelta(days=29), self.TODAY)
        assert len(day_range("", "", today=self.TODAY).dates) == 30

    def test_from_alone_runs_30_days_but_not_past_today(self):
        assert day_range("2025-10-01", None, today=self.TODAY) == DayRange(date(2025, 10, 1), date(2025, 10, 30))
        assert day_range("2026-01-10", None, today=self.TODAY) == DayRange(date(2026, 1, 10), self.TODAY)

    def test_to_alone_ends_the_30_days(self):
        assert day_range(None, "2025-06-30", today=self.TODAY) == DayRange(date(2025, 6, 1), date(2025, 6, 30))

    def test_366_days_are_allowed_and_367_are_refused_naming_to(self):
        assert len(day_range("2024-01-01", "2024-12-31", today=self.TODAY).dates) == 366
        with pytest.raises(ValidationError) as err:
            day_range("2024-01-01", "2025-01-01", today=self.TODAY)
        assert err.value.field == "to" and "367 days" in err.value.message

    def test_from_after_to_is_refused_naming_from(self):
        with pytest.raises(ValidationError) as err:
            day_range("2026-01-05", "2026-01-04", today=self.TODAY)
        assert err.value.field == "from"

    @pytest.mark.parametrize(
        ("start", "end", "field"),
        [
            ("2026-13-01", None, "from"),
            ("20260101", None, "from"),
            (None, "yesterday", "to"),
            (None, "2026-02-30", "to"),
        ],
    )
    def test_a_malformed_date_is_refused_naming_its_field(self, start, end, field):
        with pytest.raises(ValidationError) as err:
            day_range(start, end, today=self.TODAY)
        assert err.value.field == field and "2026-03-01" in err.value.message


class TestRatio:
    @pytest.mark.parametrize(
        ("numerator", "denominator", "bp", "percent"),
        [
            (1, 3, 3333, "33.3 %"),
            (2, 3, 6667, "66.7 %"),
            (1, 8, 1250, "12.5 %"),
            (1, 16, 625, "6.2 %"),  # 6.25 % to one decimal, half-even: 6.2
            (3, 16, 1875, "18.8 %"),  # 18.75 %: half-even rounds up to the even 18.8
            (1, 20_000, 0, "0.0 %"),  # half a basis point: half-even gives 0
            (3, 20_000, 2, "0.0 %"),  # one and a half basis points: 2
            (5, 4, 12500, "125.0 %"),
        ],
    )
    def test_rates_round_half_even_from_the_exact_ratio(self, numerator, denominator, bp, percent):
        ratio = Ratio(numerator, denominator)
        assert (ratio.basis_points, ratio.percent) == (bp, percent)

    def test_nothing_to_convert_has_no_rate(self):
        assert (Ratio(0, 0).basis_points, Ratio(0, 0).percent) == (None, "n/a")
