"""Recorded rates on a real database: all-or-nothing recording, conflicts, audit, and the rate of a day."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.fx.models import FxRateRecord
from partnerpay.fx.service import add_rates, convert, list_rates, rate_for
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Conflict, NotFound, ValidationError
from partnerpay.programs.models import Program
from tests import factories


def row(
    base: str = "EUR", quote: str = "USD", rate: Any = "1.0842", day: str = "2026-03-01", **kw: Any
) -> dict[str, Any]:
    return {"base": base, "quote": quote, "rate": rate, "rate_date": day, "source": "ECB reference rate", **kw}


@pytest.fixture
def prog(session: Session, clock: FixedClock) -> Program:
    return factories.program(session, clock.now())


def audit(session: Session, action: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.seq)))


class TestAddRates:
    def test_rates_are_recorded_exactly_and_audited(self, session: Session, clock: FixedClock, prog: Program) -> None:
        results = add_rates(session, SYSTEM, prog.id, [row(), row("JPY", "EUR", "0.0061")], clock.now())
        session.commit()
        assert [(r.outcome, r.record.rate, r.record.rate_units, r.record.rate_scale) for r in results] == [
            ("created", "1.0842", 10842, 4), ("created", "0.0061", 61, 4)]  # fmt: skip
        stored = [session.get(FxRateRecord, r.record.id) for r in results]
        assert [(s.base, s.quote, s.rate, s.rate_date, s.source) for s in stored if s] == [
            ("EUR", "USD", "1.0842", date(2026, 3, 1), "ECB reference rate"),
            ("JPY", "EUR", "0.0061", date(2026, 3, 1), "ECB reference rate")]  # fmt: skip
        assert all(s and s.id.startswith("fxr_") and s.created_by == "system" for s in stored)
        entries = audit(session, "fx_rate.add")
        assert [(e.object_id, e.program_id, e.after["rate"]) for e in entries] == [  # type: ignore[index]
            (results[0].record.id, prog.id, "1.0842"), (results[1].record.id, prog.id, "0.0061")]  # fmt: skip

    @pytest.mark.parametrize(
        ("bad", "field"),
        [(row(rate=1.0842), "rates.1.rate"), (row(rate="0"), "rates.1.rate"), (row(base="EURO"), "rates.1.base"),
         (row(quote="EUR"), "rates.1.quote"), (row(day="01/03/2026"), "rates.1.rate_date"),
         (row(rate="1.00000000001"), "rates.1.rate"), (row(source=""), "rates.1.source"),
         ({"base": "EUR", "quote": "USD", "rate_date": "2026-03-01"}, "rates.1.rate"),
         (row(extra=1), "rates.1.extra"), (row("GBP", "USD"), "rates.1")],
    )  # fmt: skip
    def test_a_bad_row_is_refused_naming_it_and_nothing_is_written(
        self, session: Session, clock: FixedClock, prog: Program, bad: dict[str, Any], field: str
    ) -> None:
        first = row("GBP", "USD", "1.27")
        with pytest.raises(ValidationError) as err:
            add_rates(session, SYSTEM, prog.id, [first, bad], clock.now())
        assert err.value.field == field
        session.rollback()
        assert session.scalars(select(FxRateRecord)).all() == []
        assert audit(session, "fx_rate.add") == []

    def test_the_same_rate_again_is_unchanged_and_not_audited_twice(
        self, session: Session, clock: FixedClock, prog: Program
    ) -> None:
        add_rates(session, SYSTEM, prog.id, [row()], clock.now())
        again = add_rates(session, SYSTEM, prog.id, [row(rate="1.08420")], clock.now())
        assert [r.outcome for r in again] == ["unchanged"]
        assert len(audit(session, "fx_rate.add")) == 1

    def test_a_different_rate_for_the_day_is_a_conflict_unless_replaced(
        self, session: Session, clock: FixedClock, prog: Program
    ) -> None:
        first = add_rates(session, SYSTEM, prog.id, [row()], clock.now())[0].record
        session.commit()
        with pytest.raises(Conflict, match=r"already recorded as 1\.0842") as err:
            add_rates(session, SYSTEM, prog.id, [row("GBP", "USD", "1.27"), row(rate="1.09")], clock.now())
        assert err.value.field == "rates.1.rate"
        session.rollback()
        assert [r.base for r in session.scalars(select(FxRateRecord))] == ["EUR"]
        replaced = add_rates(session, SYSTEM, prog.id, [row(rate="1.09", source="manual")], clock.now(), replace=True)
        session.commit()
        assert (replaced[0].outcome, replaced[0].record.id, replaced[0].record.rate) == ("replaced", first.id, "1.09")
        [entry] = audit(session, "fx_rate.replace")
        assert (entry.before["rate"], entry.after["rate"], entry.after["source"]) == (  # type: ignore[index]
            "1.0842", "1.09", "manual")  # fmt: skip

    def test_two_rows_for_the_same_day_in_one_request_are_refused(
        self, session: Session, clock: FixedClock, prog: Program
    ) -> None:
        with pytest.raises(ValidationError, match=r"rates\.1 repeats rates\.0"):
            add_rates(session, SYSTEM, prog.id, [row(), row(rate="1.1")], clock.now())

    def test_a_partner_user_and_another_programs_key_see_no_program(
        self, session: Session, clock: FixedClock, prog: Program
    ) -> None:
        partner = factories.partner(session, prog, clock.now(), "Acme")
        portal = Actor(ActorType.PARTNER, "pu_1", frozenset({"read", "write"}), prog.id, partner.id)
        other = Actor(ActorType.API_KEY, "key_1", frozenset({"read", "write"}), "prg_other")
        for actor in (portal, other):
            with pytest.raises(NotFound):
                add_rates(session, actor, prog.id, [row()], clock.now())
            with pytest.raises(NotFound):
                list_rates(session, actor, prog.id)


class TestRateFor:
    @pytest.fixture
    def rates(self, session: Session, clock: FixedClock, prog: Program) -> dict[str, str]:
        made = add_rates(
            session, SYSTEM, prog.id,
            [row(day="2026-03-01", rate="1.08"), row(day="2026-03-05", rate="1.10"), row("JPY", "EUR", "0.0061"),
             row("USD", "GBP", "0.79", day="2026-03-03"), row("GBP", "USD", "1.25", day="2026-03-03")],
            clock.now(),
        )  # fmt: skip
        session.commit()
        return {f"{r.record.base}{r.record.quote}{r.record.rate_date.day}": r.record.id for r in made}

    def test_the_newest_rate_on_or_before_the_day_applies(
        self, session: Session, prog: Program, rates: dict[str, str]
    ) -> None:
        assert rate_for(session, prog.id, "EUR", "USD", date(2026, 3, 1)).text == "1.08"
        assert rate_for(session, prog.id, "EUR", "USD", date(2026, 3, 4)).id == rates["EURUSD1"]
        assert rate_for(session, prog.id, "EUR", "USD", date(2026, 3, 5)).id == rates["EURUSD5"]
        late = datetime(2026, 3, 4, 23, 30, tzinfo=UTC)
        assert rate_for(session, prog.id, "EUR", "USD", late).text == "1.08"

    def test_a_stored_reverse_rate_is_used_inverted(
        self, session: Session, prog: Program, rates: dict[str, str]
    ) -> None:
        found = rate_for(session, prog.id, "EUR", "JPY", date(2026, 3, 9))
        assert (found.id, found.inverted, found.from_currency, found.to_currency) == (
            rates["JPYEUR1"],
            True,
            "EUR",
            "JPY",
        )
        assert convert(915_00, "EUR", "JPY", found).amount == 150_000

    def test_the_asked_direction_wins_on_the_same_day(
        self, session: Session, prog: Program, rates: dict[str, str]
    ) -> None:
        assert rate_for(session, prog.id, "USD", "GBP", date(2026, 3, 3)).id == rates["USDGBP3"]
        assert rate_for(session, prog.id, "GBP", "USD", date(2026, 3, 3)).id == rates["GBPUSD3"]

    def test_no_rate_names_the_pair_and_the_day(self, session: Session, prog: Program, rates: dict[str, str]) -> None:
        with pytest.raises(ValidationError) as err:
            rate_for(session, prog.id, "EUR", "USD", date(2026, 2, 28))
        assert err.value.message == (
            f"no EUR→USD rate on or before 2026-02-28; add one with POST /programs/{prog.id}/fx-rates"
        )
        with pytest.raises(ValidationError, match="no CHF→EUR rate"):
            rate_for(session, prog.id, "CHF", "EUR", date(2026, 3, 9))

    def test_another_programs_rates_do_not_apply(
        self, session: Session, clock: FixedClock, rates: dict[str, str]
    ) -> None:
        other = factories.program(session, clock.now(), name="Other")
        with pytest.raises(ValidationError, match="no EUR→USD rate"):
            rate_for(session, other.id, "EUR", "USD", date(2026, 3, 9))
