"""Statements from the ledger: figures, tie-out, time zones, determinism, issuing, and verification of files."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.commissions.adjustments import add_adjustment
from partnerpay.commissions.decisions import approve_lines
from partnerpay.events.schemas import EventType
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import NotFound, ValidationError
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind, LedgerAccount
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout, PayoutStatus
from partnerpay.payouts.reconcile import RailResult, record_results
from partnerpay.payouts.service import PAYOUTS, approve_batch, create_payout_run
from partnerpay.programs.models import Program
from partnerpay.statements.canonical import content_hash, totals_of
from partnerpay.statements.csv_file import render_csv
from partnerpay.statements.models import IssuedStatement
from partnerpay.statements.pdf import render_pdf
from partnerpay.statements.service import (
    Statement,
    StatementDoesNotTie,
    check_ties,
    issue,
    parse_period,
    partner_statement,
    statement_months,
)
from partnerpay.statements.verify import NotAStatementFile, verify_file
from tests import factories
from tests.integration import payout_helpers

OCT = datetime(2026, 10, 10, 12, tzinfo=UTC)
NOV = datetime(2026, 11, 3, 12, tzinfo=UTC)
DEC = datetime(2026, 12, 5, 12, tzinfo=UTC)
MANAGER = Actor(ActorType.STAFF, "usr_manager", frozenset({"read", "write"}), label="ana@example.com")
OTHER_PARTNER = Actor(ActorType.PARTNER, "pu_other", frozenset({"read"}), partner_id="ptn_someone_else")


def november(session: Session) -> tuple[Program, Partner]:
    """October: a €20.00 commission. November: €10.00 commission, payout of both, a refund's clawback, an adjustment."""
    prog = factories.program(session, OCT, name="Acme Partners")
    partner = factories.partner(session, prog, OCT, "Zoë Media")
    first = factories.event(
        session, prog, OCT, external_id="inv-1", customer="c1", amount=10_000, partner_id=partner.id
    )
    second = factories.event(
        session, prog, NOV, external_id="inv-2", customer="c2", amount=5_000, partner_id=partner.id
    )
    approve_lines(session, actor=SYSTEM, ids=[x.id for x in first + second], now=NOV)
    run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=NOV + timedelta(days=7))
    assert run.batch is not None
    factories.event(
        session, prog, NOV + timedelta(days=10), external_id="ref-2", customer="c2", amount=5_000,
        type=EventType.REFUND, original_external_id="inv-2", partner_id=partner.id,
    )  # fmt: skip
    add_adjustment(
        session, actor=MANAGER, partner_id=partner.id, amount=500, currency="EUR", reason="missed referral Acme",
        now=NOV + timedelta(days=12),
    )  # fmt: skip
    session.commit()
    return prog, partner


def stmt(session: Session, partner: Partner, period: str) -> Statement:
    return partner_statement(session, actor=SYSTEM, partner_id=partner.id, period=period, now=DEC)


def section(content: dict, currency: str = "EUR") -> dict:  # type: ignore[type-arg]
    return next(s for s in content["currencies"] if s["currency"] == currency)


class TestFigures:
    def test_november_has_opening_each_movement_and_closing(self, session: Session) -> None:
        _, partner = november(session)
        s = stmt(session, partner, "2026-11")
        eur = section(s.content)
        assert eur["opening"] == 2_000
        assert [(r["type"], r["amount"]) for r in eur["rows"]] == [
            ("commission", 1_000), ("payout", -3_000), ("clawback", -1_000), ("adjustment", 500),
        ]  # fmt: skip
        assert eur["totals"]["commissions"] == 1_000
        assert eur["totals"]["payouts"] == -3_000
        assert eur["totals"]["clawbacks"] == -1_000
        assert eur["totals"]["adjustments"] == 500
        assert eur["closing"] == 2_000 + 1_000 - 3_000 - 1_000 + 500
        commission = eur["rows"][0]
        assert "20" in commission["description"] and commission["plan"] == "program default rate"
        assert "missed referral Acme" in eur["rows"][3]["description"]
        assert s.content["partner"]["name"] == "Zoë Media"

    def test_closing_is_the_next_openings_and_the_ledger_balance(self, session: Session) -> None:
        prog, partner = november(session)
        oct_ = stmt(session, partner, "2026-10")
        nov = stmt(session, partner, "2026-11")
        assert section(oct_.content)["opening"] == 0
        assert section(oct_.content)["closing"] == section(nov.content)["opening"]
        owed = -ledger.balance(session, prog.id, partner.id, AccountKind.PARTNER_PAYABLE, "EUR")
        assert section(nov.content)["closing"] == owed

    def test_failed_payout_comes_back_as_its_own_row(self, session: Session) -> None:
        _, partner = november(session)
        payout = session.scalars(select(Payout).where(Payout.partner_id == partner.id)).one()
        approve_batch(session, actor=SYSTEM, batch_id=payout.batch_id, now=NOV + timedelta(days=8))
        PAYOUTS.transition(session, Payout, [payout.id], src=PayoutStatus.APPROVED, dst=PayoutStatus.SENDING)
        record_results(
            session, actor=SYSTEM, results=[RailResult(payout.id, "failed", reason="account closed")],
            now=NOV + timedelta(days=15),
        )  # fmt: skip
        session.commit()
        eur = section(stmt(session, partner, "2026-11").content)
        back = eur["rows"][-1]
        assert back["type"] == "payout_failed" and back["amount"] == 3_000
        assert "account closed" in back["description"] and eur["totals"]["payouts_returned"] == 3_000

    def test_month_is_the_programs_time_zone(self, session: Session) -> None:
        prog = factories.program(session, OCT)
        partner = factories.partner(session, prog, OCT)
        payout_helpers.settings(session, prog.id, OCT, timezone="America/New_York")
        # 1 Dec 02:00 UTC is still 30 Nov in New York.
        payout_helpers.approved_line(session, prog.id, partner.id, 700, datetime(2026, 12, 1, 2, tzinfo=UTC))
        session.commit()
        s = stmt(session, partner, "2026-11")
        assert s.content["period"]["time_zone"] == "America/New_York"
        assert [r["amount"] for r in section(s.content)["rows"]] == [700]

    def test_a_month_without_entries_is_an_empty_statement_in_the_program_currency(self, session: Session) -> None:
        prog = factories.program(session, OCT, currency="USD")
        partner = factories.partner(session, prog, OCT)
        s = stmt(session, partner, "2026-10")
        assert s.content["currencies"] == [
            {"currency": "USD", "opening": 0, "rows": [], "totals": section(s.content, "USD")["totals"], "closing": 0}
        ]

    def test_each_currency_has_its_own_section(self, session: Session) -> None:
        prog = factories.program(session, OCT)
        partner = factories.partner(session, prog, OCT)
        payout_helpers.approved_line(session, prog.id, partner.id, 700, NOV)
        payout_helpers.approved_line(session, prog.id, partner.id, 900, NOV, currency="USD")
        session.commit()
        s = stmt(session, partner, "2026-11")
        assert [(x["currency"], x["closing"]) for x in s.content["currencies"]] == [("EUR", 700), ("USD", 900)]


class TestRefusals:
    def test_bad_and_future_periods_name_the_field(self, session: Session) -> None:
        _, partner = november(session)
        for bad in ("2026-13", "2026-1", "nov", "2026-11-01"):
            with pytest.raises(ValidationError) as exc:
                partner_statement(session, actor=SYSTEM, partner_id=partner.id, period=bad, now=DEC)
            assert exc.value.field == "period"
        with pytest.raises(ValidationError, match="not started"):
            stmt(session, partner, "2027-01")

    def test_another_partner_sees_404(self, session: Session) -> None:
        _, partner = november(session)
        with pytest.raises(NotFound):
            partner_statement(session, actor=OTHER_PARTNER, partner_id=partner.id, period="2026-11", now=DEC)

    def test_a_statement_that_does_not_tie_is_refused(self, session: Session) -> None:
        _, partner = november(session)
        # A maintained balance that no longer matches its postings (what `partnerpay verify` reports).
        session.execute(
            update(LedgerAccount)
            .where(LedgerAccount.owner_id == partner.id, LedgerAccount.kind == AccountKind.PARTNER_PAYABLE.value)
            .values(balance=LedgerAccount.balance - 1)
        )
        with pytest.raises(StatementDoesNotTie, match="maintained balance"):
            stmt(session, partner, "2026-11")

    def test_check_ties_names_the_currency_and_figures(self) -> None:
        rows = [{"type": "commission", "amount": 100}]
        with pytest.raises(StatementDoesNotTie, match="EUR: opening 5 \\+ movements 100"):
            check_ties({"currency": "EUR", "opening": 5, "rows": rows, "totals": {"commissions": 100}, "closing": 104})
        with pytest.raises(StatementDoesNotTie, match="totals"):
            check_ties({"currency": "EUR", "opening": 5, "rows": rows, "totals": {"commissions": 99}, "closing": 105})


class TestDeterminism:
    def test_regenerating_gives_the_same_hash_and_bytes(self, session: Session) -> None:
        prog, partner = november(session)
        first = stmt(session, partner, "2026-11")
        pdf, csv = render_pdf(first.content), render_csv(first.content)
        # Later months move on; November's statement does not.
        payout_helpers.approved_line(session, prog.id, partner.id, 4_200, DEC)
        session.commit()
        again = partner_statement(
            session, actor=SYSTEM, partner_id=partner.id, period="2026-11", now=DEC + timedelta(days=40)
        )
        assert again.sha256 == first.sha256 == content_hash(first.content)
        assert render_pdf(again.content) == pdf and render_csv(again.content) == csv

    def test_months_listed_from_first_entry_to_now(self, session: Session) -> None:
        _, partner = november(session)
        assert statement_months(session, actor=SYSTEM, partner_id=partner.id, now=DEC) == [
            "2026-12", "2026-11", "2026-10",
        ]  # fmt: skip

    def test_period_bounds_follow_daylight_saving(self) -> None:
        p = parse_period("2026-03", "Europe/Berlin")
        assert p.start == datetime(2026, 2, 28, 23, tzinfo=UTC) and p.end == datetime(2026, 3, 31, 22, tzinfo=UTC)


@st.composite
def movements(draw: st.DrawFn) -> list[tuple[int, str, int]]:
    """(day offset from 1 Oct, kind, amount): lines of any sign, and payout runs."""
    steps = draw(st.lists(st.tuples(st.integers(0, 90), st.sampled_from(["line", "line", "run"]),
                                    st.integers(-5_000, 20_000).filter(bool)), min_size=1, max_size=12))  # fmt: skip
    return sorted(steps)


class TestTieOutProperty:
    @settings(max_examples=15, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(steps=movements())
    def test_opening_plus_movements_is_closing_every_month(
        self, session: Session, steps: list[tuple[int, str, int]]
    ) -> None:
        start = datetime(2026, 10, 1, 9, tzinfo=UTC)
        prog = factories.program(session, start)
        partner = factories.partner(session, prog, start)
        for day, kind, amount in steps:
            at = start + timedelta(days=day)
            if kind == "line":
                payout_helpers.approved_line(session, prog.id, partner.id, amount, at)
            else:
                create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=at)
        session.flush()
        carried = 0
        for month in ("2026-10", "2026-11", "2026-12"):
            eur = section(stmt(session, partner, month).content)
            assert eur["opening"] == carried
            assert eur["opening"] + sum(r["amount"] for r in eur["rows"]) == eur["closing"]
            assert sum(eur["totals"].values()) == sum(r["amount"] for r in eur["rows"])
            carried = eur["closing"]
        assert carried == -ledger.balance(session, prog.id, partner.id, AccountKind.PARTNER_PAYABLE, "EUR")
        session.rollback()


class TestIssue:
    def test_same_content_is_issued_once_and_audited(self, session: Session, clock: FixedClock) -> None:
        _, partner = november(session)
        s = stmt(session, partner, "2026-11")
        issue(session, actor=MANAGER, statement=s, now=DEC, pdf=render_pdf(s.content))
        issue(session, actor=MANAGER, statement=s, now=DEC + timedelta(hours=1), csv=render_csv(s.content))
        session.commit()
        rows = session.scalars(select(IssuedStatement)).all()
        assert len(rows) == 1 and rows[0].sha256 == s.sha256 and rows[0].issued_by == MANAGER.id
        assert rows[0].pdf_sha256 and rows[0].csv_sha256 and rows[0].currencies == "EUR"
        audits = session.scalars(select(AuditEntry).where(AuditEntry.action == "statement.issue")).all()
        assert len(audits) == 1 and audits[0].object_id == partner.id


def issued_files(session: Session) -> tuple[Program, Partner, bytes, bytes]:
    prog, partner = november(session)
    s = stmt(session, partner, "2026-11")
    pdf, csv = render_pdf(s.content), render_csv(s.content)
    issue(session, actor=MANAGER, statement=s, now=DEC, pdf=pdf, csv=csv)
    session.commit()
    return prog, partner, pdf, csv


class TestVerify:
    def test_issued_files_match_the_ledger(self, session: Session) -> None:
        _, _, pdf, csv = issued_files(session)
        for data in (pdf, csv):
            result = verify_file(session, data, now=DEC)
            assert result.ok, result.problems
            assert result.headline().startswith("matches the ledger as of 2026-12-05 12:00:00 UTC")
            assert "issued on 2026-12-05" in result.headline()

    def test_a_regenerated_unissued_file_matches_too(self, session: Session) -> None:
        _, partner = november(session)
        s = stmt(session, partner, "2026-10")
        result = verify_file(session, render_pdf(s.content), now=DEC)
        assert result.ok and result.issued_at is None

    @pytest.mark.parametrize("fmt", ["pdf", "csv"])
    def test_one_changed_byte_anywhere_fails(self, session: Session, fmt: str) -> None:
        _, _, pdf, csv = issued_files(session)
        data = pdf if fmt == "pdf" else csv
        step = max(1, len(data) // 40)
        for at in [*range(0, len(data), step), len(data) - 3]:
            tampered = bytearray(data)
            tampered[at] = (tampered[at] + 1) % 256
            try:
                result = verify_file(session, bytes(tampered), now=DEC)
            except NotAStatementFile:
                continue  # the first bytes say what the file is: changed, it is no statement at all
            assert not result.ok, f"byte {at} changed and still verified"

    def test_a_changed_amount_in_the_csv_breaks_its_hash(self, session: Session) -> None:
        _, _, _, csv = issued_files(session)
        tampered = csv.replace(b",500,", b",600,", 1)
        assert tampered != csv
        result = verify_file(session, tampered, now=DEC)
        assert not result.ok and "the statement content was altered" in result.problems[0]

    def test_a_late_clawback_in_the_period_is_named(self, session: Session) -> None:
        prog, partner, pdf, csv = issued_files(session)
        # A refund of October's invoice recorded with a time inside November after the statement was issued.
        (line,) = factories.event(
            session, prog, NOV + timedelta(days=20), external_id="ref-1", customer="c1", amount=10_000,
            type=EventType.REFUND, original_external_id="inv-1", partner_id=partner.id,
        )  # fmt: skip
        session.commit()
        for data in (pdf, csv):
            result = verify_file(session, data, now=DEC)
            assert not result.ok
            text = "\n".join(result.problems)
            assert "EUR closing balance: the file says -€5.00, the ledger -€25.00" in text
            assert "EUR clawbacks: the file says -€10.00, the ledger -€30.00" in text
            assert "the ledger has a row the file lacks" in text and line.id in text
            assert result.disclose  # the file is an issued statement: its holder may see what moved

    def test_a_made_up_file_learns_nothing(self, session: Session) -> None:
        _, partner = november(session)
        s = stmt(session, partner, "2026-11")
        forged = dict(s.content)
        forged["currencies"] = [{**section(s.content), "rows": [], "closing": 2_000}]
        result = verify_file(session, render_csv(forged), now=DEC)
        assert not result.ok and not result.disclose

    def test_not_a_statement_is_refused(self, session: Session) -> None:
        with pytest.raises(NotAStatementFile):
            verify_file(session, b"GIF89a....", now=DEC)
        result = verify_file(session, b"%PDF-1.4\n%%EOF\n", now=DEC)
        assert not result.ok and "cannot be read" in result.problems[0]


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils) is not installed")
def test_a_long_statement_prints_its_hash_on_every_page(tmp_path: Path) -> None:
    rows = [
        {"at": f"2026-11-{n % 28 + 1:02d}T10:00:00.000000+00:00", "type": "commission", "reference": f"com_{n}",
         "entry": f"ltx_{n:04d}", "description": "word " * (n % 40), "plan": "Standard v2, rule 1", "amount": 100}
        for n in range(150)
    ]  # fmt: skip
    content = {
        "format": "partnerpay.statement/1",
        "program": {"id": "prg_1", "name": "Program"},
        "partner": {"id": "ptn_1", "name": "Zoë Media"},
        "period": parse_period("2026-11", "UTC").as_dict(),
        "currencies": [{"currency": "EUR", "opening": 0, "rows": rows, "totals": totals_of(rows), "closing": 15_000}],
    }
    path = tmp_path / "long.pdf"
    path.write_bytes(render_pdf(content))
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True, check=True).stdout
    pages = text.count("\f")
    assert pages > 2 and text.count(f"Statement SHA-256 {content_hash(content)}") == pages
    assert f"Page {pages} of {pages}" in text and "€150.00" in text.replace("EUR", "€")
