"""The summed dashboard windows (reports/windows.py): a top-partners read of the last 7 or 30 days comes from
them once the rollup has run today, and always equals the ranking recounted from the raw rows."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.reports.models import PartnerWindow, WindowMark
from partnerpay.reports.queries import last_days, top_partners
from partnerpay.reports.rollups import reroll, roll_up
from partnerpay.reports.windows import WINDOWS
from tests.integration.test_rollups import PROGRAM_CURRENCY, T0, World, apply, new_world, step

Ranked = list[tuple[str, int, int, int, int, int, int]]


def recounted(world: World, start: date, end: date) -> Ranked:
    """The ranking from the test's own recount: revenue, conversions, clicks (descending), then partner id."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0] * 6)
    names = ("clicks", "signups", "conversions", "deals_won", "program_revenue", "program_commissions")
    for (partner, day), figures in world.expected()[0].items():
        if partner and start <= day <= end:
            for i, name in enumerate(names):
                sums[partner][i] += figures[name]
    ranked = sorted(sums.items(), key=lambda kv: (-kv[1][4], -kv[1][2], -kv[1][0], kv[0]))
    return [(pid, *figures) for pid, figures in ranked]  # type: ignore[misc]


def read(world: World, days: int, today: date, limit: int = 100) -> Ranked:
    start, end = last_days(days, today=today)
    top = top_partners(
        world.session, program_id=world.program_id, currency=PROGRAM_CURRENCY, start=start, end=end, limit=limit
    )
    return [(t.partner_id, t.clicks, t.signups, t.conversions, t.deals_won, t.revenue, t.commissions) for t in top]


def window_rows(world: World) -> int:
    return int(
        world.session.scalar(
            select(func.count()).select_from(PartnerWindow).where(PartnerWindow.program_id == world.program_id)
        )
        or 0
    )


def mark(world: World) -> date | None:
    return world.session.scalar(select(WindowMark.as_of).where(WindowMark.program_id == world.program_id))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(step, max_size=8), min_size=1, max_size=4), hours=st.integers(1, 30))
def test_window_reads_equal_the_recount_after_any_inserts_and_days(
    session_factory: sessionmaker[Session], batches: list[list[tuple[str, int | None, int, int, int, str]]], hours: int
) -> None:
    session = session_factory()
    try:
        world = new_world(session)
        for batch in batches:
            for args in batch:
                apply(world, *args)
            session.flush()
            world.roll_up()
            today = world.now.date()
            assert mark(world) == today  # the reads below come from the windows
            for days in WINDOWS:
                assert read(world, days, today) == recounted(world, *last_days(days, today=today))
            world.now += timedelta(hours=hours)  # sometimes into the next day: the windows move with it
    finally:
        session.rollback()
        session.close()


class TestWindows:
    def test_a_range_that_is_not_a_window_is_summed_from_the_days(self, session: Session) -> None:
        world = new_world(session)
        for i, partner in enumerate(world.partners):
            world.event(partner, "invoice_paid", T0 - timedelta(days=10 + i), 1000 * (i + 1), "EUR")
        session.flush()
        world.roll_up()
        assert 14 not in WINDOWS
        assert read(world, 14, T0.date()) == recounted(world, *last_days(14, today=T0.date()))
        assert [r[0] for r in read(world, 14, T0.date())] == list(reversed(world.partners))

    def test_a_re_roll_forgets_the_windows_until_they_are_summed_again(self, session: Session) -> None:
        world = new_world(session)
        a, b = world.partners[:2]
        world.event(a, "invoice_paid", T0 - timedelta(days=2), 5000, "EUR")
        session.flush()
        world.roll_up()
        assert mark(world) == T0.date() and window_rows(world) == 2  # a, in each window
        world.event(b, "invoice_paid", T0 - timedelta(days=1), 9000, "EUR")
        session.flush()
        reroll(session, world.program_id, (T0 - timedelta(days=1)).date(), (T0 - timedelta(days=1)).date())
        # Not refreshed yet: the read must not use the old windows (which lack b).
        assert mark(world) is None
        assert [r[0] for r in read(world, 30, T0.date())] == [b, a]
        world.roll_up()
        assert mark(world) == T0.date() and window_rows(world) == 4
        assert [r[0] for r in read(world, 30, T0.date())] == [b, a]

    def test_a_re_roll_of_days_no_window_covers_keeps_the_windows(self, session: Session) -> None:
        world = new_world(session)
        a, b = world.partners[:2]
        world.event(a, "invoice_paid", T0 - timedelta(days=2), 5000, "EUR")
        world.event(b, "invoice_paid", T0 - timedelta(days=40), 9000, "EUR")
        session.flush()
        world.roll_up()
        oldest = T0.date() - timedelta(days=max(WINDOWS) - 1)
        # A late change to a day before the 30-day window: the windows still hold, and are still read.
        world.event(b, "invoice_paid", T0 - timedelta(days=31), 100, "EUR")
        session.flush()
        reroll(session, world.program_id, oldest - timedelta(days=1), oldest - timedelta(days=1))
        assert mark(world) == T0.date()
        assert read(world, 30, T0.date()) == recounted(world, *last_days(30, today=T0.date()))
        # The window's first day is in it: forgotten until summed again.
        reroll(session, world.program_id, oldest, oldest)
        assert mark(world) is None

    def test_the_next_day_the_rollup_moves_the_windows_even_with_nothing_new(self, session: Session) -> None:
        world = new_world(session)
        world.event(world.partners[0], "invoice_paid", T0 - timedelta(days=6), 700, "EUR")
        session.flush()
        world.roll_up()
        assert read(world, 7, T0.date())[0][5] == 700
        world.now = T0 + timedelta(days=1)
        world.roll_up()
        assert mark(world) == (T0 + timedelta(days=1)).date()
        assert read(world, 7, (T0 + timedelta(days=1)).date()) == []  # the day fell out of the week
        assert read(world, 30, (T0 + timedelta(days=1)).date())[0][5] == 700

    def test_a_limit_reads_only_the_first_of_the_ranking(self, session: Session) -> None:
        world = new_world(session)
        for i, partner in enumerate(world.partners):
            world.clicks(partner, T0 - timedelta(hours=3), i + 1)
        session.flush()
        world.roll_up()
        full = recounted(world, *last_days(30, today=T0.date()))
        assert read(world, 30, T0.date(), limit=2) == full[:2]
        assert roll_up(session, now=T0, lag=timedelta(0)).rebuilt is False

    def test_the_read_of_a_window_comes_from_the_summed_rows(self, session: Session) -> None:
        """Proof that the window is what is read (not a second GROUP BY that happens to agree): a changed
        window row shows, until the next re-roll of the program forgets it."""
        world = new_world(session)
        world.event(world.partners[0], "invoice_paid", T0 - timedelta(days=1), 100, "EUR")
        session.flush()
        world.roll_up()
        session.execute(
            update(PartnerWindow)
            .where(PartnerWindow.program_id == world.program_id, PartnerWindow.days == 30)
            .values(program_revenue=999)
        )
        assert read(world, 30, T0.date())[0][5] == 999
        assert read(world, 7, T0.date())[0][5] == 100
        reroll(session, world.program_id, T0.date(), T0.date())
        assert read(world, 30, T0.date())[0][5] == 100
