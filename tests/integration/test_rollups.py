"""Rollups on a real database: after any sequence of inserts (late data included: rows for days already
rolled up, deals won and then lost) the incremental rollup equals a recount from the raw rows."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnerpay.auth.actor import ROLE_SCOPES, Actor, ActorType
from partnerpay.cli import app
from partnerpay.commissions.decisions import reject_lines
from partnerpay.commissions.models import CommissionLine
from partnerpay.db.bulk import bulk_insert
from partnerpay.deals.models import Deal, Lead
from partnerpay.events.models import Customer, Event
from partnerpay.kit.ids import new_id, new_ids
from partnerpay.reports.models import CommissionStatusTotal, PartnerDay, PartnerMoney, ProgramDay, ProgramMoney
from partnerpay.reports.rollups import DAY_FIGURES, MONEY, id_floor, ranges, roll_up
from tests import factories
from tests.integration.test_cli import cli  # noqa: F401  (the fixture)

T0 = datetime(2026, 3, 20, 12, 0, tzinfo=UTC)
CLICK_COLUMNS = ("id", "program_id", "partner_id", "code", "at", "ua_class", "destination")
_programs = count()
PROGRAM_CURRENCY = "EUR"  # factories.program's
FINANCE = Actor(ActorType.STAFF, "usr_finance", ROLE_SCOPES["finance"])

Key = tuple[str, date]  # partner ('' for none) and day


@dataclass
class World:
    """The raw rows a test wrote, as plain figures: the recount the rollup must equal."""

    session: Session
    program_id: str
    partners: list[str]
    now: datetime = T0
    counts: dict[Key, dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(DAY_FIGURES, 0))
    )
    money: dict[tuple[str, date, str], dict[str, int]] = field(
        default_factory=lambda: defaultdict(lambda: dict.fromkeys(MONEY, 0))
    )
    won: list[tuple[str, str, date, int]] = field(default_factory=list)  # deal id, partner, day, amount

    def partner(self, index: int | None) -> str | None:
        return None if index is None else self.partners[index % len(self.partners)]

    def clicks(self, partner: str | None, at: datetime, n: int) -> None:
        rows = [(i, self.program_id, partner, "code", at, "desktop", "https://e.example/") for i in new_ids("clk", n)]
        bulk_insert(self.session, "clicks", CLICK_COLUMNS, rows)
        self.counts[(partner or "", at.date())]["clicks"] += n

    def event(self, partner: str | None, kind: str, at: datetime, amount: int, currency: str) -> None:
        customer = Customer(
            id=new_id("cus"),
            program_id=self.program_id,
            external_id=new_id("cus"),
            partner_id=partner,
            created_at=self.now,
            first_paid_at=at if kind == "invoice_paid" else None,
        )
        self.session.add(customer)
        self.session.flush()
        paid = kind == "invoice_paid"
        self.session.add(
            Event(
                id=new_id("evt"),
                program_id=self.program_id,
                type=kind,
                external_id=new_id("evt"),
                occurred_at=at,
                customer_id=customer.id,
                partner_id=partner,
                amount=amount if paid else None,
                currency=currency if paid else None,
                content_hash="0" * 64,
                created_at=self.now,
            )
        )
        key = (partner or "", at.date())
        if paid:
            self.counts[key]["conversions"] += 1
            self.counts[key]["customers_paid"] += 1
            self.money[(*key, currency)]["revenue"] += amount
            if currency == PROGRAM_CURRENCY:
                self.counts[key]["program_revenue"] += amount
        else:
            self.counts[key]["signups"] += 1

    def lead(self, partner: str, at: datetime) -> None:
        self.session.add(
            Lead(
                id=new_id("lead"),
                program_id=self.program_id,
                partner_id=partner,
                company="Acme",
                company_key="acme",
                created_at=at,
                created_by="test",
                last_update_at=at,
            )
        )
        self.counts[(partner, at.date())]["leads"] += 1

    def deal_won(self, partner: str, at: datetime, amount: int, currency: str) -> None:
        deal_id = new_id("deal")
        self.session.add(
            Deal(
                id=deal_id,
                program_id=self.program_id,
                partner_id=partner,
                company="Acme",
                stage="won",
                status="won",
                amount=amount,
                currency=currency,
                won_at=at,
                created_at=at,
                updated_at=self.now,
                last_update_at=self.now,
            )
        )
        self.counts[(partner, at.date())]["deals_won"] += 1
        self.money[(partner, at.date(), currency)]["won_amount"] += amount
        self.won.append((deal_id, partner, at.date(), amount, currency))  # type: ignore[arg-type]

    def deal_lost(self, index: int) -> None:
        """A deal won earlier is lost after all (changed in place: only its updated_at says so)."""
        if not self.won:
            return
        deal_id, partner, day, amount, currency = self.won.pop(index % len(self.won))  # type: ignore[misc]
        self.session.execute(update(Deal).where(Deal.id == deal_id).values(status="lost", updated_at=self.now))
        self.counts[(partner, day)]["deals_won"] -= 1
        self.money[(partner, day, currency)]["won_amount"] -= amount

    def line(self, partner: str, at: datetime, amount: int, currency: str, status: str) -> None:
        self.session.add(
            CommissionLine(
                id=new_id("com"),
                program_id=self.program_id,
                partner_id=partner,
                kind="commission",
                amount=amount,
                currency=currency,
                rounding="half_even",
                status=status,
                hold_until=at,
                explanation="test",
                created_at=at,
            )
        )
        if status != "rejected":
            self.money[(partner, at.date(), currency)]["commissions"] += amount
            if currency == PROGRAM_CURRENCY:
                self.counts[(partner, at.date())]["program_commissions"] += amount

    # --- what the rollup must hold --------------------------------------------------------------------

    def expected(self) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
        partner_days = {k: v for k, v in self.counts.items() if any(v.values())}
        partner_money = {k: v for k, v in self.money.items() if any(v.values())}
        program_days: dict[date, dict[str, int]] = defaultdict(lambda: dict.fromkeys(DAY_FIGURES, 0))
        for (_, day), figures in partner_days.items():
            for name, value in figures.items():
                program_days[day][name] += value
        program_money: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: dict.fromkeys(MONEY, 0))
        for (_, day, currency), figures in partner_money.items():
            for name, value in figures.items():
                program_money[(day, currency)][name] += value
        return partner_days, partner_money, dict(program_days), dict(program_money)

    def actual(self) -> tuple[dict[Any, Any], dict[Any, Any], dict[Any, Any], dict[Any, Any]]:
        s, p = self.session, self.program_id

        def figures(row: Any, names: tuple[str, ...]) -> dict[str, int]:
            return {n: int(getattr(row, n)) for n in names}

        partner_days = {
            (r.partner_id, r.day): figures(r, DAY_FIGURES)
            for r in s.scalars(select(PartnerDay).where(PartnerDay.program_id == p))
        }
        partner_money = {
            (r.partner_id, r.day, r.currency): figures(r, MONEY)
            for r in s.scalars(select(PartnerMoney).where(PartnerMoney.program_id == p))
        }
        program_days = {
            r.day: figures(r, DAY_FIGURES) for r in s.scalars(select(ProgramDay).where(ProgramDay.program_id == p))
        }
        program_money = {
            (r.day, r.currency): figures(r, MONEY)
            for r in s.scalars(select(ProgramMoney).where(ProgramMoney.program_id == p))
        }
        return partner_days, partner_money, program_days, program_money

    def roll_up(self) -> None:
        # lag=0: only what was written since the last run is read, so the incremental path is what is tested.
        self.session.expire_all()
        roll_up(self.session, now=self.now, lag=timedelta(0))
        self.session.expire_all()


def new_world(session: Session) -> World:
    n = next(_programs)
    program = factories.program(session, T0, name=f"Rollup {n}")
    partners = [factories.partner(session, program, T0, name=f"P{n} {i}").id for i in range(3)]
    return World(session, program.id, partners)


# --- one random step: a kind of row, for a partner, on a day up to 20 days back (late data) ------------------

step = st.tuples(
    st.sampled_from(["clicks", "signup", "invoice_paid", "lead", "deal_won", "deal_lost", "line", "line_rejected"]),
    st.one_of(st.none(), st.integers(0, 2)),
    st.integers(0, 20),  # days before now
    st.integers(0, 23),  # hour
    st.integers(1, 50_000),  # amount or count
    st.sampled_from(["EUR", "USD"]),
)


def apply(world: World, kind: str, who: int | None, days_back: int, hour: int, amount: int, currency: str) -> None:
    at = (world.now - timedelta(days=days_back)).replace(hour=hour, minute=30)
    partner = world.partner(who)
    named = world.partner(who or 0)
    assert named is not None
    if kind == "clicks":
        world.clicks(partner, at, 1 + amount % 5)
    elif kind in ("signup", "invoice_paid"):
        world.event(partner, kind, at, amount, currency)
    elif kind == "lead":
        world.lead(named, at)
    elif kind == "deal_won":
        world.deal_won(named, at, amount, currency)
    elif kind == "deal_lost":
        world.deal_lost(amount)
    else:
        world.line(named, at, amount, currency, "rejected" if kind == "line_rejected" else "pending")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=st.lists(st.lists(step, max_size=8), min_size=1, max_size=5))
def test_incremental_rollup_equals_a_recount_after_any_inserts(
    session_factory: sessionmaker[Session], batches: list[list[tuple[str, int | None, int, int, int, str]]]
) -> None:
    session = session_factory()
    try:
        world = new_world(session)
        for batch in batches:
            for args in batch:
                apply(world, *args)
            session.flush()
            world.roll_up()
            assert world.actual() == world.expected()
            world.now += timedelta(hours=1)
    finally:
        session.rollback()
        session.close()


class TestRollUp:
    def test_a_click_flushed_late_re_rolls_its_old_day_only(self, session: Session) -> None:
        world = new_world(session)
        a = world.partners[0]
        world.clicks(a, T0 - timedelta(days=3), 2)
        world.clicks(a, T0 - timedelta(days=1), 1)
        world.roll_up()
        world.clicks(a, T0 - timedelta(days=3, hours=2), 4)  # arrives now, for three days ago
        session.flush()
        session.expire_all()
        result = roll_up(session, now=T0, lag=timedelta(0))
        # The day of the late click; the day before yesterday was not touched (yesterday's click may share
        # the last run's millisecond, which lag 0 still reads again).
        assert (T0 - timedelta(days=3)).date() in result.days[world.program_id]
        assert (T0 - timedelta(days=2)).date() not in result.days[world.program_id]
        assert world.actual() == world.expected()

    def test_the_first_run_rebuilds_and_a_run_with_nothing_new_re_rolls_no_day(self, session: Session) -> None:
        world = new_world(session)
        world.event(world.partners[1], "invoice_paid", T0 - timedelta(days=40), 1234, "EUR")
        session.flush()
        assert roll_up(session, now=T0).rebuilt
        assert world.actual() == world.expected()
        again = roll_up(session, now=T0 + timedelta(hours=1), lag=timedelta(0))
        assert not again.rebuilt
        # lag 0 still reads the millisecond of the last id seen, so at most that id's day comes back.
        assert again.day_count <= 1
        assert world.actual() == world.expected()

    def test_unattributed_clicks_count_for_the_program_under_no_partner(self, session: Session) -> None:
        world = new_world(session)
        world.clicks(None, T0, 3)
        world.roll_up()
        partner_days, _, program_days, _ = world.actual()
        assert partner_days[("", T0.date())]["clicks"] == 3
        assert program_days[T0.date()]["clicks"] == 3


class TestChangesInPlace:
    def test_a_line_rejected_later_leaves_the_day_it_was_created(self, session: Session) -> None:
        """Through the real services: an event makes a line; its rejection days later is read from the ledger."""
        program = factories.program(session, T0, name="Rejections")
        partner = factories.partner(session, program, T0, name="Rejected")
        made = T0 - timedelta(days=5)
        [line] = factories.event(
            session, program, made, external_id="inv-1", customer="c-1", amount=10_000, partner_id=partner.id
        )
        session.flush()
        roll_up(session, now=made)
        day = made.date()
        money = select(PartnerMoney.commissions).where(PartnerMoney.partner_id == partner.id, PartnerMoney.day == day)
        assert session.scalar(money) == line.amount == 2_000
        reject_lines(session, actor=FINANCE, ids=[line.id], reason="duplicate", now=T0)
        session.flush()
        result = roll_up(session, now=T0, lag=timedelta(0))
        assert day in result.days[program.id]
        assert session.scalar(money) == 0  # nothing earned that day any more (its revenue stays)
        statuses = select(CommissionStatusTotal.status, CommissionStatusTotal.amount).where(
            CommissionStatusTotal.partner_id == partner.id
        )
        assert session.execute(statuses).all() == [("rejected", 2_000)]


class TestWatermarks:
    def test_id_floor_goes_back_by_the_lag_and_keeps_the_prefix(self) -> None:
        mark = new_id("clk")
        floor = id_floor(mark, timedelta(minutes=10))
        assert floor.startswith("clk_") and len(floor) == 14 and floor < mark
        assert id_floor(mark, timedelta(0)) == mark[:14]

    @pytest.mark.parametrize(
        ("days", "expected"),
        [([], []), ([3, 1, 2, 7], [(1, 3), (7, 7)]), ([5, 5], [(5, 5)])],
    )
    def test_days_group_into_contiguous_ranges(self, days: list[int], expected: list[tuple[int, int]]) -> None:
        d = [date(2026, 1, x) for x in days]
        assert ranges(d) == [(date(2026, 1, a), date(2026, 1, b)) for a, b in expected]


class TestRollupCommand:
    def test_rollup_then_rebuild_from_the_shell(self, cli: CliRunner, session: Session) -> None:  # noqa: F811
        world = new_world(session)
        world.clicks(world.partners[0], T0, 2)
        session.commit()
        first = cli.invoke(app, ["reports", "rollup"])
        assert first.exit_code == 0, first.output
        assert "Rebuilt the rollups of" in first.output  # the first run builds everything
        again = cli.invoke(app, ["reports", "rollup"])
        assert again.exit_code == 0 and "Re-rolled" in again.output
        assert cli.invoke(app, ["reports", "rollup", "--rebuild"]).exit_code == 0
        session.expire_all()
        assert world.actual() == world.expected()
