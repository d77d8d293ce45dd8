"""Who a payout run skips and why, minimums per currency, and partners paid in their own currency."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.fx.service import add_rates
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import ValidationError
from partnerpay.ledger.models import AccountKind
from partnerpay.ledger.service import balance
from partnerpay.ledger.verify import verify
from partnerpay.partners.models import PartnerStatus, PayoutMethod, TaxProfile
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutSkip
from partnerpay.payouts.service import approve_batch, create_payout_run, mark_batch_paid
from partnerpay.payouts.settings import set_partner_currency
from partnerpay.payouts.tieout import batch_tie_out
from tests import factories
from tests.integration.payout_helpers import approved_line, settings, tax_form, verified_method


def reasons(result: object) -> dict[str, str]:
    return {s["partner_id"]: s["reason"] for s in result.skipped}  # type: ignore[attr-defined]


class TestSkipReasons:
    def test_each_gate_names_its_reason_and_stores_it_for_the_partner(
        self, session: Session, clock: FixedClock
    ) -> None:
        now = clock.now()
        prog = factories.program(session, now)
        names = ["paid", "no_method", "us_no_w9", "de_w9_only", "zero", "changed", "banned"]
        p = {n: factories.partner(session, prog, now, n, country="DE") for n in names}
        p["us_no_w9"].country = "US"
        for n in names:
            verified_method(session, p[n].id, now)
            tax_form(session, p[n].id, "w8ben", now)
            approved_line(session, prog.id, p[n].id, 5_000, now)
        session.execute(update(PayoutMethod).where(PayoutMethod.partner_id == p["no_method"].id).values(active=False))
        tax_form(session, p["de_w9_only"].id, "w9", now)
        for profile in session.scalars(select(TaxProfile).where(TaxProfile.partner_id == p["de_w9_only"].id)):
            profile.active = profile.form == "w9"
        for profile in session.scalars(select(TaxProfile).where(TaxProfile.partner_id == p["us_no_w9"].id)):
            profile.form = "w8ben"
        approved_line(session, prog.id, p["zero"].id, -5_000, now)
        p["changed"].payout_review_until = now + timedelta(days=3)
        p["banned"].status = PartnerStatus.SUSPENDED.value
        settings(session, prog.id, now, require_verified_method=True, require_tax_form=True)
        result = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now)
        assert [x.partner_id for x in result.payouts] == [p["paid"].id]
        assert reasons(result) == {
            p["no_method"].id: "no_verified_payout_method",
            p["us_no_w9"].id: "tax_form_missing",
            p["de_w9_only"].id: "tax_form_missing",
            p["zero"].id: "nets_to_zero",
            p["changed"].id: "payout_details_changed",
            p["banned"].id: "partner_suspended",
        }
        needed = {s["partner_id"]: s.get("needed") for s in result.skipped if s["reason"] == "tax_form_missing"}
        assert needed == {p["us_no_w9"].id: "w9", p["de_w9_only"].id: "w8ben"}
        stored = {s.partner_id: s.reason for s in session.scalars(select(PayoutSkip))}
        assert stored == reasons(result)
        session.commit()
        assert verify(session).ok

    def test_below_the_minimum_carries_over_until_the_balance_reaches_it(
        self, session: Session, clock: FixedClock
    ) -> None:
        now = clock.now()
        prog = factories.program(session, now)
        partner = factories.partner(session, prog, now)
        approved_line(session, prog.id, partner.id, 3_000, now)
        settings(session, prog.id, now, minimums={"EUR": 5_000})
        first = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now)
        assert first.payouts == []
        assert first.skipped == [
            {"partner_id": partner.id, "reason": "below_minimum", "amount": 3_000, "currency": "EUR",
             "minimum": 5_000, "minimum_currency": "EUR", "amount_to_send": 3_000}
        ]  # fmt: skip
        assert balance(session, prog.id, partner.id, AccountKind.PARTNER_PAYABLE, "EUR") == -3_000
        approved_line(session, prog.id, partner.id, 2_500, now)
        second = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now + timedelta(seconds=1))
        assert [(x.amount, x.line_count) for x in second.payouts] == [(5_500, 2)]
        session.commit()
        assert verify(session).ok

    def test_clawbacks_net_against_earnings_and_a_negative_total_carries(
        self, session: Session, clock: FixedClock
    ) -> None:
        now = clock.now()
        prog = factories.program(session, now)
        a, b = factories.partner(session, prog, now, "A"), factories.partner(session, prog, now, "B")
        for amount in (4_000, -1_500):
            approved_line(session, prog.id, a.id, amount, now)
        for amount in (1_000, -2_500):
            approved_line(session, prog.id, b.id, amount, now)
        result = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now)
        assert [(x.partner_id, x.amount, x.line_count) for x in result.payouts] == [(a.id, 2_500, 2)]
        assert reasons(result) == {b.id: "negative_balance_carried"}
        carried = session.scalars(select(CommissionLine.status).where(CommissionLine.partner_id == b.id)).all()
        assert set(carried) == {LineStatus.APPROVED.value}
        session.commit()
        assert verify(session).ok


class TestPaidInTheirOwnCurrency:
    def rates(self, session: Session, program_id: str, clock: FixedClock) -> None:
        day = (clock.now() - timedelta(days=1)).date().isoformat()
        add_rates(session, SYSTEM, program_id, [{"base": "EUR", "quote": "USD", "rate": "1.0842", "rate_date": day}],
                  clock.now())  # fmt: skip

    def test_a_batch_per_currency_with_its_rate_and_the_source_amount_recorded(
        self, session: Session, clock: FixedClock
    ) -> None:
        now = clock.now()
        prog = factories.program(session, now)
        self.rates(session, prog.id, clock)
        eur, usd, gbp = (factories.partner(session, prog, now, n) for n in ("Eur", "Usd", "Gbp"))
        set_partner_currency(session, actor=SYSTEM, partner_id=usd.id, currency="USD", now=now)
        set_partner_currency(session, actor=SYSTEM, partner_id=gbp.id, currency="GBP", now=now)
        for partner in (eur, usd, gbp):
            approved_line(session, prog.id, partner.id, 10_001, now)
        settings(session, prog.id, now, pay_in_partner_currency=True, minimums={"USD": 100})
        result = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now)
        assert result.totals == {"EUR": 10_001, "USD": 10_843}  # 100.01 EUR * 1.0842 = 108.4308… → 108.43
        assert reasons(result) == {gbp.id: "no_fx_rate"}
        assert result.skipped[0]["pair"] == "EUR→GBP"
        usd_batch = session.scalar(select(PayoutBatch).where(PayoutBatch.currency == "USD"))
        assert usd_batch is not None
        assert (usd_batch.source_currency, usd_batch.source_total, usd_batch.fx_rate) == ("EUR", 10_001, "1.0842")
        payout = session.scalar(select(Payout).where(Payout.partner_id == usd.id))
        assert payout is not None
        assert (payout.amount, payout.currency, payout.source_amount, payout.source_currency) == (
            10_843, "USD", 10_001, "EUR"
        )  # fmt: skip
        # The ledger moved the lines' euros: payable → clearing in EUR, nothing in USD.
        assert balance(session, prog.id, prog.id, AccountKind.PAYOUT_CLEARING, "EUR") == -20_002
        assert balance(session, prog.id, prog.id, AccountKind.PAYOUT_CLEARING, "USD") == 0
        approve_batch(session, actor=SYSTEM, batch_id=usd_batch.id, now=now)
        mark_batch_paid(session, actor=SYSTEM, batch_id=usd_batch.id, now=now)
        assert balance(session, prog.id, prog.id, AccountKind.PAYOUT_CLEARING, "EUR") == -10_001
        # The tie-out holds the lines and the ledger to the payout's source amount in EUR, not its USD amount.
        tie = batch_tie_out(session, usd_batch)
        assert tie.ok, tie.problems()
        lines = [r for r in tie.rows if r.label == "Commission lines"]
        assert [(r.currency, r.amount, r.expected) for r in lines] == [("EUR", 10_001, 10_001)]
        session.commit()
        report = verify(session)
        assert report.ok, report.problems

    def test_an_unknown_currency_is_refused_naming_the_field(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        with pytest.raises(ValidationError) as err:
            set_partner_currency(session, actor=SYSTEM, partner_id=partner.id, currency="XXQ", now=clock.now())
        assert err.value.field == "currency"


def test_net_schedule_pays_only_lines_approved_long_enough_ago(session: Session, clock: FixedClock) -> None:
    now = clock.now()
    prog = factories.program(session, now)
    partner = factories.partner(session, prog, now)
    old = approved_line(session, prog.id, partner.id, 1_000, now - timedelta(days=31))
    approved_line(session, prog.id, partner.id, 2_000, now - timedelta(days=5))
    settings(session, prog.id, now, schedule="net", net_days=30)
    result = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now)
    assert [(x.amount, x.line_count) for x in result.payouts] == [(1_000, 1)]
    assert session.scalar(select(func.count()).select_from(CommissionLine).where(
        CommissionLine.payout_id.is_not(None))) == 1  # fmt: skip
    assert session.get(CommissionLine, old.id) is not None
