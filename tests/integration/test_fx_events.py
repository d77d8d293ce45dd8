"""Events in another currency than the program's, on a real database: accepted when the program has a rate for
the event's day, earning lines in the program currency (default rate and plan rules alike) that cite the rate;
refused with the rate to import when there is none; clawbacks proportional in the event currency, made in the
program currency; the batch ingest records such rows one by one."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.import_csv import ImportRejected, ImportReport
from partnerpay.events.importer import import_events
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.fx.conversion import FxRate, convert
from partnerpay.fx.models import FxRateRecord
from partnerpay.fx.service import add_rates
from partnerpay.inbox.batch import ingest_batch
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import Rounding, percent_of
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.partners.models import Partner
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.service import create_plan, publish
from partnerpay.programs.models import Program
from tests import factories

T0 = datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
ECB = "ECB reference rate"


@pytest.fixture
def program(session: Session) -> Program:
    return factories.program(session, T0 - 30 * DAY, currency="USD", hold_days=30, default_percent_bp=1000)


@pytest.fixture
def partner(session: Session, program: Program) -> Partner:
    return factories.partner(session, program, T0 - 30 * DAY, name="Acme")


def rates(session: Session, program: Program, *rows: tuple[str, str, str, str]) -> None:
    add_rates(
        session,
        SYSTEM,
        program.id,
        [{"base": b, "quote": q, "rate": r, "rate_date": d, "source": ECB} for b, q, r, d in rows],
        T0 - 30 * DAY,
    )


def data(program: Program, external_id: str, customer: str, amount: int | None, currency: str | None,
         *, type: str = "invoice_paid", at: datetime = T0, **extra: Any) -> EventIn:  # fmt: skip
    return EventIn(
        program_id=program.id,
        type=type,
        external_id=external_id,
        occurred_at=at,
        customer_external_id=customer,
        amount=amount,
        currency=currency,
        **extra,
    )


def record(session: Session, program: Program, *args: Any, **kw: Any) -> list[CommissionLine]:
    at = kw.get("at", T0)
    return record_event(session, actor=SYSTEM, data=data(program, *args, **kw), now=at).commissions


def payable(session: Session, program: Program, partner: Partner) -> int:
    return -ledger.balance(session, program.id, partner.id, AccountKind.PARTNER_PAYABLE, "USD")


class TestDefaultRate:
    def test_a_euro_invoice_earns_in_dollars_on_the_converted_amount_and_says_the_rate(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        [line] = record(session, program, "in1", "c1", 100_000, "EUR", partner_id=partner.id)
        assert (line.amount, line.currency, line.base_amount, line.rate_bp) == (10_842, "USD", 108_420, 1000)
        assert line.explanation == (
            "10 % of $1,084.20 invoice in1 for customer c1 (converted: €1,000.00 at 1 EUR = 1.0842 USD "
            "(ECB reference rate, 2 Mar 2026)) (program default rate, rounded half-even) = $108.42; on hold until "
            "02 Apr 2026 (refund window 30 days). Attributed to Acme: named on the invoice paid event by partner_id"
        )
        assert payable(session, program, partner) == 10_842

    def test_the_newest_rate_on_or_before_the_event_day_applies(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.05", "2026-03-01"), ("EUR", "USD", "1.10", "2026-03-04"))
        [before] = record(session, program, "in1", "c1", 10_001, "EUR", partner_id=partner.id, at=T0)
        [after] = record(session, program, "in2", "c1", 10_001, "EUR", at=T0 + DAY)
        # 10,001 x 1.05 = 10,501.05 cents -> 10,501; 10,001 x 1.10 = 11,001.1 -> 11,001; then 10 %, half-even.
        assert (before.base_amount, before.amount) == (10_501, 1050)
        assert (after.base_amount, after.amount) == (11_001, 1100)
        assert "at 1 EUR = 1.05 USD (ECB reference rate, 1 Mar 2026)" in before.explanation
        assert "at 1 EUR = 1.1 USD (ECB reference rate, 4 Mar 2026)" in after.explanation

    def test_a_rate_recorded_the_other_way_divides_and_cites_the_rate_as_recorded(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("USD", "EUR", "0.9", "2026-03-02"))
        [line] = record(session, program, "in1", "c1", 9_000, "EUR", partner_id=partner.id)
        assert (line.base_amount, line.amount, line.currency) == (10_000, 1000, "USD")
        assert "(converted: €90.00 at 1 USD = 0.9 EUR (ECB reference rate, 2 Mar 2026))" in line.explanation

    def test_yen_into_dollars_uses_both_currencies_exponents(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("JPY", "USD", "0.0067", "2026-03-02"))
        [line] = record(session, program, "in1", "c1", 150_000, "JPY", partner_id=partner.id)
        assert (line.base_amount, line.amount) == (100_500, 10_050)  # ¥150,000 = $1,005.00
        assert "(converted: ¥150,000 at 1 JPY = 0.0067 USD (ECB reference rate, 2 Mar 2026))" in line.explanation


class TestNoRate:
    def test_an_event_before_the_first_rate_is_refused_naming_currency_and_the_rate_to_import(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-04"))
        with pytest.raises(ValidationError) as refused:
            record(session, program, "in1", "c1", 100_000, "EUR", partner_id=partner.id)
        assert refused.value.field == "currency"
        assert refused.value.message == (
            "this program pays in USD; an event in EUR on 2026-03-03 needs a EUR→USD rate dated on or before "
            f"2026-03-03: import one with POST /programs/{program.id}/fx-rates or "
            f"`partnerpay fx import FILE --program {program.id}`"
        )

    def test_an_event_of_a_customer_without_a_partner_is_refused_too(self, session: Session, program: Program) -> None:
        with pytest.raises(ValidationError) as refused:
            record(session, program, "su1", "c1", 5_000, "GBP", type="deal_won")
        assert refused.value.field == "currency" and "GBP→USD rate" in refused.value.message

    def test_an_event_without_an_amount_needs_no_rate(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        assert record(session, program, "su1", "c1", None, None, type="signup", partner_id=partner.id) == []


class TestPlanRules:
    def test_a_plan_rule_earns_on_the_converted_amount_and_cites_rate_plan_and_rule(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        rules = [{"trigger": "invoice_paid", "percent_bp": 2000, "conditions": {"min_amount": 100_000}}]
        plan, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name="Standard", rules=rules, now=T0)
        version = publish(session, actor=SYSTEM, plan_id=plan.id, now=T0)
        assign_plan(session, actor=SYSTEM, plan_id=plan.id, scope="program", now=T0, effective_from=T0 - DAY)
        # €950.00 is $1,029.99 after conversion: the $1,000.00 minimum is met in the program currency.
        [line] = record(session, program, "in1", "c1", 95_000, "EUR", partner_id=partner.id)
        assert (line.amount, line.currency, line.base_amount) == (20_600, "USD", 102_999)
        assert (line.plan_version_id, line.rule_number) == (version.id, 1)
        assert line.explanation.startswith(
            "20 % of $1,029.99 invoice in1 for customer c1 (converted: €950.00 at 1 EUR = 1.0842 USD "
            "(ECB reference rate, 2 Mar 2026)), plan Standard v1 rule 1 = $206.00"
        )
        # €900.00 is $975.78: below the minimum, no line.
        assert record(session, program, "in2", "c1", 90_000, "EUR", at=T0 + DAY) == []


class TestRefunds:
    def test_a_partial_refund_claws_back_its_share_in_the_program_currency(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"), ("EUR", "USD", "1.20", "2026-03-05"))
        [line] = record(session, program, "in1", "c1", 100_000, "EUR", partner_id=partner.id)
        # A quarter of the euro invoice: a quarter of the dollar line (2,710.5 -> 2,710 half-even), whatever
        # the rate on the refund's day.
        [back] = record(session, program, "rf1", "c1", 25_000, "EUR", type="refund", at=T0 + 3 * DAY)
        assert (back.amount, back.currency, back.reverses_line_id) == (-2710, "USD", line.id)
        [rest] = record(session, program, "rf2", "c1", 75_000, "EUR", type="refund", at=T0 + 4 * DAY)
        assert rest.amount == -8132  # the whole line back, to the cent: 10,842 - 2,710
        # The base clawed is the refunded share of the line's base, in dollars like the line (not the euros refunded).
        assert (back.base_amount, rest.base_amount) == (-27_105, -81_315)
        assert payable(session, program, partner) == 0

    def test_a_clawback_explanation_says_the_refund_in_its_currency_and_the_line_in_the_programs(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        [line] = record(session, program, "in1", "c1", 100_000, "EUR", partner_id=partner.id)
        [back] = record(session, program, "rf1", "c1", 25_000, "EUR", type="refund", at=T0 + 3 * DAY)
        assert back.explanation == (
            "Refund rf1 took back €250.00 (€250.00 of €1,000.00 so far) (no original given: applied to the "
            f"customer's paid events, newest first); claws back $27.10 of line {line.id} ($108.42) = -$27.10"
        )

    def test_a_refund_in_another_currency_than_its_payment_is_refused(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        record(session, program, "in1", "c1", 100_000, "EUR", partner_id=partner.id)
        with pytest.raises(ValidationError) as named:
            record(session, program, "rf1", "c1", 100, "USD", type="refund", original_external_id="in1")
        assert named.value.field == "currency"
        assert named.value.message == (
            "this refund is in USD but the payment it takes back (in1) was in EUR; send it in EUR"
        )
        with pytest.raises(ValidationError) as unnamed:
            record(session, program, "rf2", "c1", 100, "USD", type="chargeback")
        assert unnamed.value.field == "currency"
        assert unnamed.value.message == (
            "this chargeback is in USD but customer c1 paid in EUR; send it in the currency of the payment it "
            "takes back"
        )

    def test_a_customer_who_paid_in_two_currencies_must_name_the_refunded_payment(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        record(session, program, "in1", "c1", 100_000, "EUR", partner_id=partner.id)
        [usd] = record(session, program, "in2", "c1", 50_000, "USD", at=T0 + DAY)
        with pytest.raises(ValidationError) as refused:
            record(session, program, "rf1", "c1", 100, "USD", type="refund", at=T0 + 2 * DAY)
        assert (refused.value.field, refused.value.message) == (
            "original_external_id",
            "customer c1 paid in EUR and USD: name the payment this refund takes back (original_external_id)",
        )
        [back] = record(
            session, program, "rf2", "c1", 25_000, "USD", type="refund", at=T0 + 2 * DAY, original_external_id="in2"
        )
        assert (back.amount, back.reverses_line_id) == (-2500, usd.id)


class TestBatch:
    def test_rows_in_another_currency_go_one_by_one_and_earn_as_a_single_event_would(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        rows = [
            data(program, "in1", "c1", 10_000, "USD", partner_id=partner.id),
            data(program, "in2", "c2", 100_000, "EUR", partner_id=partner.id),
            data(program, "in3", "c1", 20_000, "USD", partner_id=partner.id, at=T0 + DAY),
        ]
        report = ingest_batch(session, actor=SYSTEM, program_id=program.id, rows=rows, now=T0 + DAY)
        assert (report.set_based, report.one_by_one, report.lines) == (2, 1, 3)
        made = session.scalars(
            select(CommissionLine).join(Event, Event.id == CommissionLine.event_id).order_by(Event.external_id)
        ).all()
        assert [(x.amount, x.currency, x.base_amount) for x in made] == [
            (1000, "USD", 10_000),
            (10_842, "USD", 108_420),
            (2000, "USD", 20_000),
        ]
        assert "(converted: €1,000.00 at 1 EUR = 1.0842 USD" in made[1].explanation

    def test_a_row_without_a_rate_fails_the_batch_naming_its_row(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rows = [
            data(program, "in1", "c1", 10_000, "USD", partner_id=partner.id),
            data(program, "in2", "c2", 100_000, "EUR", partner_id=partner.id),
        ]
        with pytest.raises(ValidationError) as refused:
            ingest_batch(session, actor=SYSTEM, program_id=program.id, rows=rows, now=T0)
        assert refused.value.field == "currency" and refused.value.message.startswith(
            "row 2: this program pays in USD; an event in EUR on 2026-03-03 needs a EUR→USD rate"
        )


class TestCsvImport:
    HEADER = "type,external_id,occurred_at,customer_external_id,partner_id,amount,currency"

    def run(self, session: Session, program: Program, *rows: str) -> ImportReport:
        data = ("\n".join([self.HEADER, *rows]) + "\n").encode()
        return import_events(
            session, actor=SYSTEM, program_id=program.id, data=data, filename="events.csv", now=T0 + DAY
        )

    def test_a_row_in_a_currency_the_program_has_rates_for_earns_converted(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        report = self.run(session, program, f"invoice_paid,in1,2026-03-03T09:00:00Z,c1,{partner.id},100000,EUR")
        assert (report.created, report.commissions) == (1, 1)
        [line] = session.scalars(select(CommissionLine)).all()
        assert (line.amount, line.currency, line.base_amount) == (10_842, "USD", 108_420)

    def test_a_currency_without_any_rate_is_refused_at_its_cell_and_one_older_than_its_rates_at_its_row(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        with pytest.raises(ImportRejected) as no_rate:
            self.run(session, program, f"invoice_paid,in1,2026-03-03T09:00:00Z,c1,{partner.id},100000,EUR")
        [error] = no_rate.value.report.errors
        assert (error.row, error.column, error.message) == (
            2,
            "currency",
            f"this program pays in USD; EUR is not accepted without a EUR→USD rate (POST /programs/{program.id}"
            "/fx-rates)",
        )
        rates(session, program, ("EUR", "USD", "1.0842", "2026-03-02"))
        with pytest.raises(ImportRejected) as too_old:
            self.run(session, program, f"invoice_paid,in1,2026-03-01T09:00:00Z,c1,{partner.id},100000,EUR")
        [error] = too_old.value.report.errors
        assert (error.row, error.column) == (2, "currency")
        assert error.message.startswith("this program pays in USD; an event in EUR on 2026-03-01 needs a EUR→USD")
        assert session.scalars(select(Event)).all() == []


_numbers = count()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    amount=st.integers(1, 10**9),
    units=st.integers(1, 10**6),
    scale=st.integers(0, 8),
    refunds=st.lists(st.integers(1, 100), min_size=1, max_size=4),
)
def test_converted_lines_are_the_rate_applied_once_and_refunds_never_take_back_more(
    session: Session, program: Program, partner: Partner, amount: int, units: int, scale: int, refunds: list[int]
) -> None:
    """The line is percent_of(convert(amount)); refunds of any parts claw back the same share of it, to the
    cent, never more than was earned, and the whole refunded takes back the whole line."""
    n = next(_numbers)
    rate_text = str(units) if scale == 0 else f"{units // 10**scale}.{units % 10**scale:0{scale}d}"
    day = (T0 - DAY).date() - timedelta(days=n)  # one rate per example, each on its own day
    add_rates(
        session, SYSTEM, program.id,
        [{"base": "EUR", "quote": "USD", "rate": rate_text, "rate_date": day.isoformat(), "source": ECB}], T0,
    )  # fmt: skip
    at = datetime.combine(day, T0.timetz())
    customer = f"c{n}"
    lines = record(session, program, f"in{n}", customer, amount, "EUR", partner_id=partner.id, at=at)
    stored = session.scalars(
        select(FxRateRecord.id).where(FxRateRecord.program_id == program.id, FxRateRecord.rate_date == day)
    ).one()
    rate = FxRate(stored, "EUR", "USD", units, scale, day, ECB)
    expected = percent_of(convert(amount, "EUR", "USD", rate, Rounding.HALF_EVEN).amount, 1000, Rounding.HALF_EVEN)
    assert sum(x.amount for x in lines) == expected
    # Parts of the invoice refunded in turn (the last takes whatever is left).
    weights = sum(refunds)
    parts = [amount * w // weights for w in refunds[:-1]]
    parts.append(amount - sum(parts))
    refunded = 0
    for i, part in enumerate(p for p in parts if p > 0):
        record(session, program, f"rf{n}-{i}", customer, part, "EUR", type="refund", at=at,
               original_external_id=f"in{n}")  # fmt: skip
        refunded += part
        assert 0 <= -customer_total(session, customer, "clawback") <= expected
    assert refunded == amount
    assert customer_total(session, customer, "clawback") == -expected
    assert customer_total(session, customer, None) == 0


def customer_total(session: Session, customer: str, kind: str | None) -> int:
    stmt = (
        select(func.coalesce(func.sum(CommissionLine.amount), 0))
        .join(Event, Event.id == CommissionLine.event_id)
        .join(Customer, Customer.id == Event.customer_id)
        .where(Customer.external_id == customer)
    )
    if kind is not None:
        stmt = stmt.where(CommissionLine.kind == kind)
    return int(session.scalar(stmt) or 0)


def test_lifetime_revenue_is_in_the_program_currency_in_any_arrival_order(
    session: Session, program: Program, partner: Partner
) -> None:
    rates(session, program, ("EUR", "USD", "1.0842", "2026-03-01"), ("EUR", "USD", "1.1000", "2026-03-05"))
    record(session, program, "inv-a", "cus-lt", 100_000, "EUR", partner_id=partner.id, at=T0)  # $1,084.20
    record(session, program, "inv-c", "cus-lt", 50_000, "USD", at=T0 + 3 * DAY)  # $500.00
    # Arrives last but happened between: the customer is re-folded from history, every amount converted again.
    record(session, program, "inv-b", "cus-lt", 20_000, "EUR", at=T0 + 2 * DAY + DAY // 2)  # 05 Mar: $220.00
    customer = session.scalar(select(Customer).where(Customer.external_id == "cus-lt"))
    assert customer is not None
    assert customer.lifetime_revenue == 108_420 + 50_000 + 22_000
