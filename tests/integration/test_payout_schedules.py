"""Payout schedules: next-run arithmetic on local calendars, the periodic scheduler's dedupe, scheduled runs."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.scheduler import PeriodicTask, Scheduler
from partnerpay.jobs.scheduler_models import SchedulerSlot
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import ValidationError
from partnerpay.ledger.verify import verify
from partnerpay.payouts.models import PayoutBatch, PayoutSettings
from partnerpay.payouts.scheduled_run import SCHEDULED_RUN_JOB, payout_runs_due
from partnerpay.payouts.schedules import Schedule, ScheduleKind, next_run, parse_schedule, runs_on
from partnerpay.payouts.settings import write_settings
from tests import factories
from tests.conftest import T0
from tests.integration.payout_helpers import approved_line

ZONES = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata", "Pacific/Apia"]
schedules = st.one_of(
    st.builds(Schedule, st.just(ScheduleKind.MONTHLY), day_of_month=st.integers(1, 31)),
    st.integers(1, 30).flatmap(
        lambda d: st.builds(
            Schedule, st.just(ScheduleKind.TWICE_MONTHLY), day_of_month=st.just(d), second_day=st.integers(d + 1, 31)
        )
    ),
    st.builds(Schedule, st.just(ScheduleKind.WEEKLY), weekday=st.integers(0, 6)),
    st.builds(Schedule, st.just(ScheduleKind.NET), net_days=st.integers(0, 60)),
).flatmap(
    lambda s: st.builds(
        lambda hour, tz: Schedule(s.kind, s.day_of_month, s.second_day, s.weekday, s.net_days, hour, tz),
        st.integers(0, 23),
        st.sampled_from(ZONES),
    )
)
instants = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 12, 31), timezones=st.just(UTC))


class TestNextRun:
    @given(schedule=schedules, after=instants)
    def test_the_first_matching_local_day_strictly_after(self, schedule: Schedule, after: datetime) -> None:
        """Oracle: walk the local calendar a day at a time from the day before `after`."""
        found = next_run(schedule, after)
        assert found is not None and found > after and found.tzinfo is not None
        tz = ZoneInfo(schedule.timezone)
        assert runs_on(schedule, found.astimezone(tz).date()) or found.astimezone(tz).hour != schedule.run_hour
        day = after.astimezone(tz).date() - timedelta(days=1)
        while True:
            if runs_on(schedule, day):
                at = datetime(day.year, day.month, day.day, schedule.run_hour, tzinfo=tz).astimezone(UTC)
                if at > after:
                    break
            day += timedelta(days=1)
        assert found == at

    @pytest.mark.parametrize(
        ("day", "after", "expected"),
        [
            (31, datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 2, 28, 8, tzinfo=UTC)),  # clamped; CET = UTC+1
            (31, datetime(2028, 2, 1, tzinfo=UTC), datetime(2028, 2, 29, 8, tzinfo=UTC)),  # leap year
            (1, datetime(2026, 3, 31, 12, tzinfo=UTC), datetime(2026, 4, 1, 7, tzinfo=UTC)),  # CEST = UTC+2
        ],
    )
    def test_monthly_days_clamp_to_month_end_in_local_time(self, day: int, after: datetime, expected: datetime) -> None:
        schedule = Schedule(ScheduleKind.MONTHLY, day_of_month=day, run_hour=9, timezone="Europe/Berlin")
        assert next_run(schedule, after) == expected

    def test_a_skipped_dst_hour_still_runs_once(self) -> None:
        schedule = Schedule(ScheduleKind.WEEKLY, weekday=6, run_hour=2, timezone="America/New_York")
        found = next_run(schedule, datetime(2026, 3, 7, tzinfo=UTC))  # Sunday 8 March 2026: 02:00 does not exist
        assert found is not None and found.astimezone(ZoneInfo("America/New_York")).date() == date(2026, 3, 8)

    def test_manual_never_runs(self) -> None:
        assert next_run(Schedule(ScheduleKind.MANUAL), T0) is None

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"schedule": "fortnightly"}, "schedule"),
            ({"schedule": "monthly"}, "day_of_month"),
            ({"schedule": "monthly", "day_of_month": 32}, "day_of_month"),
            ({"schedule": "twice_monthly", "day_of_month": 15, "second_day": 1}, "second_day"),
            ({"schedule": "weekly", "weekday": "someday"}, "weekday"),
            ({"schedule": "weekly", "weekday": "friday", "day_of_month": 3}, "day_of_month"),
            ({"schedule": "net", "net_days": -1}, "net_days"),
            ({"schedule": "net", "net_days": 30, "run_hour": 24}, "run_hour"),
            ({"schedule": "net", "net_days": 30, "timezone": "Mars/Olympus"}, "timezone"),
        ],
    )
    def test_bad_schedules_name_the_field(self, body: dict[str, object], field: str) -> None:
        with pytest.raises(ValidationError) as err:
            parse_schedule(body)
        assert err.value.field == field


def payout_scheduler() -> Scheduler:
    """Only the payout task (the default scheduler has others, e.g. approvals.sweep, due at once)."""
    return Scheduler([PeriodicTask("payouts.schedule", payout_runs_due)])


def monthly_program(session: Session, clock: FixedClock) -> str:
    now = clock.now()
    prog = factories.program(session, now)
    partner = factories.partner(session, prog, now)
    approved_line(session, prog.id, partner.id, 12_345, now)
    create_staff_user(session, actor=SYSTEM, email="fin@example.com", role="finance", password="pw-123456789", now=now)
    write_settings(session, actor=SYSTEM, program_id=prog.id, now=now,
                   data={"schedule": "monthly", "day_of_month": 1, "timezone": "Europe/Berlin",
                         "require_verified_method": False})  # fmt: skip
    session.commit()
    return prog.id


class TestScheduledRuns:
    def test_a_due_schedule_makes_one_run_and_asks_finance_to_approve(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with session_factory() as s:
            program_id = monthly_program(s, clock)
            slot_at = s.get(PayoutSettings, program_id).next_run_at  # type: ignore[union-attr]
        assert slot_at == datetime(2026, 2, 1, 8, tzinfo=UTC)  # T0 is 15 Jan 2026; 09:00 in Berlin
        worker = Worker(session_factory, build_registry(), clock=clock, scheduler=payout_scheduler())
        assert worker.run_periodic(force=True) == 0  # not due yet
        clock.set(slot_at + timedelta(minutes=3))
        assert worker.run_periodic(force=True) == 1
        assert worker.run_periodic(force=True) == 0  # the slot is taken; next_run_at moved to 1 March
        worker.run_pending()
        with session_factory() as s:
            batch = s.scalar(select(PayoutBatch))
            assert batch is not None and batch.scheduled_for == slot_at and batch.total == 12_345
            mails = s.scalars(select(OutboxJob.payload).where(OutboxJob.kind == "email.send")).all()
            assert any(m["to"] == "fin@example.com" and "to approve" in m["subject"] for m in mails)
            assert s.get(PayoutSettings, program_id).next_run_at == datetime(2026, 3, 1, 8, tzinfo=UTC)  # type: ignore[union-attr]
            assert verify(s).ok

    def test_two_workers_and_a_restart_enqueue_a_slot_once(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with session_factory() as s:
            program_id = monthly_program(s, clock)
        clock.set(datetime(2026, 2, 1, 9, tzinfo=UTC))
        barrier = threading.Barrier(2)
        counts: list[int] = []
        errors: list[BaseException] = []

        def worker() -> None:
            scheduler = payout_scheduler()  # each worker process has its own
            barrier.wait()
            try:
                counts.append(len(scheduler.run_due(session_factory, now=clock.now(), force=True)))
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=worker) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors and sorted(counts) == [0, 1]
        # A restarted worker that read the old next_run_at (put back here) finds the slot taken.
        with session_factory() as s:
            row = s.get(PayoutSettings, program_id)
            assert row is not None
            row.next_run_at = datetime(2026, 2, 1, 8, tzinfo=UTC)
            s.commit()
        assert payout_scheduler().run_due(session_factory, now=clock.now(), force=True) == []
        with session_factory() as s:
            jobs = s.scalar(select(func.count()).select_from(OutboxJob).where(OutboxJob.kind == SCHEDULED_RUN_JOB))
            assert jobs == 1
            assert s.scalar(select(func.count()).select_from(SchedulerSlot)) == 1
