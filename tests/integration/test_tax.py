"""Tax reports: the 1099-NEC report (threshold edges, masking, sealed export) and self-billing invoices."""

from __future__ import annotations

import contextlib
import re
import zlib
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.commissions.decisions import approve_lines
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.partners.payout_details import set_tax_profile
from partnerpay.payouts.models import Payout
from partnerpay.payouts.reconcile import RailResult, record_results
from partnerpay.payouts.service import approve_batch, create_payout_run
from partnerpay.programs.models import Program
from partnerpay.tax import invoice_pdf
from partnerpay.tax.credit_notes import credit_note_applies, get_or_issue_credit_note
from partnerpay.tax.invoice_pdf import render_invoice
from partnerpay.tax.invoices import get_or_issue, invoice_applies
from partnerpay.tax.nec import full_csv, nec_report
from partnerpay.tax.sealed_file import seal, unseal
from partnerpay.tax.service import set_settings
from tests import factories

BOX = SecretBox("test-secret-key-for-tax-reports-" + "x" * 20)
VIEWER = Actor(ActorType.STAFF, "usr_viewer", frozenset({"read"}))
W9 = {"form": "w9", "tin": "91-1144442", "legal_name": "Acme LLC", "address": "1 Main St, Springfield IL 62701"}


def paid_program(
    session: Session, clock: FixedClock, invoices: dict[str, int], *, currency: str = "USD", paid_at: datetime
) -> tuple[Program, dict[str, str]]:
    """One partner per name, paid 20 % of its invoice in one batch on `paid_at`: (program, name → payout id)."""
    prog = factories.program(session, clock.now(), currency=currency)
    partner_of: dict[str, str] = {}
    ids = []
    for name, amount in invoices.items():
        p = factories.partner(session, prog, clock.now(), f"{name} {prog.id}")
        partner_of[name] = p.id
        ids += [
            x.id
            for x in factories.event(
                session, prog, clock.now(), external_id=name, customer=name, amount=amount, partner_id=p.id
            )
        ]
    approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
    run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
    assert run.batch is not None
    approve_batch(session, actor=SYSTEM, batch_id=run.batch.id, now=clock.now())
    payouts = dict(session.execute(select(Payout.partner_id, Payout.id).where(Payout.batch_id == run.batch.id)).all())
    record_results(
        session,
        actor=SYSTEM,
        results=[RailResult(pid, "paid", at=paid_at) for pid in payouts.values()],
        now=clock.now(),
    )
    return prog, {name: payouts[pid] for name, pid in partner_of.items()}


def partner_of(session: Session, payout_id: str) -> str:
    payout = session.get(Payout, payout_id)
    assert payout is not None
    return payout.partner_id


class TestNecReport:
    def test_threshold_edges_year_and_masking(self, session: Session, clock: FixedClock) -> None:
        in_year = datetime(2026, 1, 2, tzinfo=UTC)
        prog, payouts = paid_program(
            session, clock, {"exact": 300_000, "short": 299_995, "nine": 400_000, "foreign": 500_000}, paid_at=in_year
        )
        for name in ("exact", "short"):
            set_tax_profile(
                session, actor=SYSTEM, box=BOX, partner_id=partner_of(session, payouts[name]), data=W9, now=clock.now()
            )
        set_tax_profile(
            session,
            actor=SYSTEM,
            box=BOX,
            partner_id=partner_of(session, payouts["nine"]),
            data={**W9, "legal_name": "Nine Corp"},
            now=clock.now(),
        )
        set_tax_profile(
            session,
            actor=SYSTEM,
            box=BOX,
            partner_id=partner_of(session, payouts["foreign"]),
            data={"form": "w8ben", "country": "DE", "legal_name": "Foreign GmbH"},
            now=clock.now(),
        )
        # "nine" is paid in the year but returned: not income paid. A last-year payment would not count either.
        record_results(
            session, actor=SYSTEM, results=[RailResult(payouts["nine"], "returned", reason="R01")], now=clock.now()
        )
        report = nec_report(session, actor=VIEWER, program_id=prog.id, year=2026, now=clock.now())
        assert [(r.partner_id, r.amount) for r in report.recipients] == [
            (partner_of(session, payouts["exact"]), 60_000)
        ]
        assert report.below_threshold == 1  # 599.99 is under 600.00
        assert report.without_w9 == [partner_of(session, payouts["foreign"])]
        shown = report.as_dict()
        assert shown["recipients"][0]["tin"] == "•••••4442" or shown["recipients"][0]["tin"].endswith("4442")
        assert "91-1144442" not in str(shown) and "911144442" not in str(shown)
        assert "911144442" not in report.masked_csv() and "Main St" not in report.masked_csv()
        assert nec_report(session, actor=VIEWER, program_id=prog.id, year=2025, now=clock.now()).recipients == []

    def test_the_threshold_is_the_programs_and_the_full_export_is_sealed_and_audited(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog, payouts = paid_program(session, clock, {"a": 100_000}, paid_at=datetime(2026, 1, 3, tzinfo=UTC))
        set_tax_profile(
            session,
            actor=SYSTEM,
            box=BOX,
            partner_id=partner_of(session, payouts["a"]),
            data={**W9, "legal_name": "=HYPERLINK(evil)"},
            now=clock.now(),
        )
        assert nec_report(session, actor=SYSTEM, program_id=prog.id, year=2026, now=clock.now()).recipients == []
        set_settings(session, actor=SYSTEM, program_id=prog.id, data={"nec_threshold": 20_000}, now=clock.now())
        report = nec_report(session, actor=SYSTEM, program_id=prog.id, year=2026, now=clock.now())
        assert [r.amount for r in report.recipients] == [20_000]
        with pytest.raises(Forbidden):
            full_csv(session, actor=VIEWER, box=BOX, report=report, now=clock.now())
        content = full_csv(session, actor=SYSTEM, box=BOX, report=report, now=clock.now())
        assert "91-1144442" in content and "1 Main St" in content
        assert "'=HYPERLINK(evil)" in content  # formula-escaped
        sealed = seal(content.encode(), filename="1099-nec-2026.csv", passphrase="correct horse battery")
        assert b"Main St" not in sealed
        assert unseal(sealed, passphrase="correct horse battery") == ("1099-nec-2026.csv", content.encode())
        with pytest.raises(ValidationError):
            unseal(sealed, passphrase="wrong horse battery")
        actions = set(session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == prog.id)))
        assert {"tax.1099_nec_export", "tax_settings.set"} <= actions

    def test_a_future_year_is_refused(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now(), currency="USD")
        with pytest.raises(ValidationError) as err:
            nec_report(session, actor=SYSTEM, program_id=prog.id, year=2031, now=clock.now())
        assert err.value.field == "year"


def eu_program(session: Session, clock: FixedClock, box: SecretBox = BOX) -> tuple[Program, dict[str, str]]:
    prog, payouts = paid_program(
        session, clock, {"fr": 123_450, "de": 50_000, "us": 10_000}, currency="EUR", paid_at=clock.now()
    )
    set_settings(
        session,
        actor=SYSTEM,
        program_id=prog.id,
        data={
            "self_billing": True,
            "invoice_prefix": "SB-26",
            "issuer_name": "Maker GmbH",
            "issuer_address": "Hauptstr. 1\n10115 Berlin",
            "issuer_country": "DE",
            "issuer_vat_id": "DE136695976",
        },
        now=clock.now(),
    )
    set_tax_profile(
        session,
        actor=SYSTEM,
        box=box,
        partner_id=partner_of(session, payouts["fr"]),
        data={"form": "w8ben", "country": "FR", "legal_name": "Société Générale Études", "vat_id": "FR40303265045"},
        now=clock.now(),
    )
    set_tax_profile(
        session,
        actor=SYSTEM,
        box=box,
        partner_id=partner_of(session, payouts["de"]),
        data={"form": "w8ben", "country": "DE", "legal_name": "Berlin Blog UG"},
        now=clock.now(),
    )
    set_tax_profile(
        session, actor=SYSTEM, box=box, partner_id=partner_of(session, payouts["us"]), data=W9, now=clock.now()
    )
    return prog, payouts


def pdf_text(pdf: bytes) -> str:
    """Text of an uncompressed-or-flate PDF made with the core font: the literal strings of its content streams."""
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\nendstream", pdf, re.S):
        raw = match.group(1)
        with contextlib.suppress(zlib.error):
            raw = zlib.decompress(raw)
        strings = re.findall(rb"\(((?:\\.|[^\\)])*)\)\s*Tj", raw, re.S)
        out += [re.sub(rb"\\(.)", rb"\1", m).decode("latin-1") for m in strings]
    return " ".join(out)


class TestSelfBillingInvoices:
    def test_numbers_follow_one_sequence_and_a_second_request_returns_the_same_invoice(
        self, session: Session, clock: FixedClock
    ) -> None:
        _, payouts = eu_program(session, clock)
        first = get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["fr"], now=clock.now())
        second = get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["de"], now=clock.now())
        again = get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["fr"], now=clock.now())
        assert (first.number, second.number, again.number) == ("SB-26-000001", "SB-26-000002", "SB-26-000001")
        assert first.content["reverse_charge"] is True and second.content["reverse_charge"] is False
        assert first.content["supplier"]["vat_id"] == "FR40303265045"
        with pytest.raises(NotFound) as err:
            get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["us"], now=clock.now())
        assert "does not place it in the EU" in err.value.message
        us = session.get(Payout, payouts["us"])
        assert us is not None and not invoice_applies(session, us)

    def test_another_partner_gets_404(self, session: Session, clock: FixedClock) -> None:
        _, payouts = eu_program(session, clock)
        payout = session.get(Payout, payouts["de"])
        assert payout is not None
        other = Actor(
            ActorType.PARTNER, "pu_x", frozenset({"read"}), program_id=payout.program_id, partner_id="ptn_other"
        )
        with pytest.raises(NotFound):
            get_or_issue(session, actor=other, box=BOX, payout_id=payouts["fr"], now=clock.now())

    def test_the_pdf_says_self_billing_and_shows_the_numbers(
        self, session: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, payouts = eu_program(session, clock)
        invoice = get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["fr"], now=clock.now())
        unicode_pdf = render_invoice(invoice)
        assert unicode_pdf.startswith(b"%PDF-") and len(unicode_pdf) > 1000
        # With the core font the text is stored as written, so the test can read it back.
        monkeypatch.setattr(invoice_pdf, "DEJAVU", invoice_pdf.Path("/nonexistent.ttf"))
        text = pdf_text(render_invoice(invoice))
        for expected in (
            "SELF-BILLING INVOICE",
            "SB-26-000001",
            "EUR 246.90",  # 20 % of 1,234.50
            "FR40303265045",
            "DE136695976",
            "Maker GmbH",
            "Reverse charge",
            "Article 224",
        ):
            assert expected in text, expected
        assert "Soci" in text and "Commissions (1 line)" in text


def returned(session: Session, clock: FixedClock, payout_id: str, reason: str = "AC04 account closed") -> None:
    record_results(session, actor=SYSTEM, results=[RailResult(payout_id, "returned", reason=reason)], now=clock.now())


class TestCreditNotes:
    def test_a_returned_invoiced_payout_gets_one_credit_note_numbered_in_the_invoice_sequence(
        self, session: Session, clock: FixedClock
    ) -> None:
        _, payouts = eu_program(session, clock)
        invoice = get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["fr"], now=clock.now())
        payout = session.get(Payout, payouts["fr"])
        assert payout is not None and not credit_note_applies(session, payout)
        returned(session, clock, payouts["fr"])
        assert credit_note_applies(session, payout)
        note = get_or_issue_credit_note(session, actor=SYSTEM, payout_id=payouts["fr"], now=clock.now())
        again = get_or_issue_credit_note(session, actor=SYSTEM, payout_id=payouts["fr"], now=clock.now())
        later = get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["de"], now=clock.now())
        assert (invoice.number, note.number, again.number, later.number) == (
            "SB-26-000001",
            "SB-26-000002",
            "SB-26-000002",
            "SB-26-000003",
        )
        c = note.content
        assert note.invoice_number == "SB-26-000001" and c["credits"]["number"] == "SB-26-000001"
        assert c["amount"] == -invoice.content["amount"] == -24_690
        assert [line["amount"] for line in c["lines"]] == [-line["amount"] for line in invoice.content["lines"]]
        assert c["supplier"] == invoice.content["supplier"] and c["customer"] == invoice.content["customer"]
        assert c["reason"] == "AC04 account closed" and c["returned_at"] is not None
        assert c["reverse_charge"] is True and "Credit note" in c["notes"][0]
        # The invoice itself is kept as issued, and still served.
        assert get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["fr"], now=clock.now()) is invoice
        [row] = session.scalars(select(AuditEntry).where(AuditEntry.action == "self_billing_credit_note.issue")).all()
        assert row.after == {"number": "SB-26-000002", "credits": "SB-26-000001", "amount": -24_690, "currency": "EUR"}

    def test_no_credit_note_without_an_invoice_or_before_the_payout_is_returned(
        self, session: Session, clock: FixedClock
    ) -> None:
        _, payouts = eu_program(session, clock)
        get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["fr"], now=clock.now())
        with pytest.raises(NotFound, match="it is paid; a credit note is issued once"):
            get_or_issue_credit_note(session, actor=SYSTEM, payout_id=payouts["fr"], now=clock.now())
        returned(session, clock, payouts["de"])  # returned, but never invoiced
        with pytest.raises(NotFound, match="it has no self-billing invoice"):
            get_or_issue_credit_note(session, actor=SYSTEM, payout_id=payouts["de"], now=clock.now())
        de = session.get(Payout, payouts["de"])
        assert de is not None and not credit_note_applies(session, de)
        returned(session, clock, payouts["fr"])
        payout = session.get(Payout, payouts["fr"])
        assert payout is not None
        other = Actor(
            ActorType.PARTNER, "pu_x", frozenset({"read"}), program_id=payout.program_id, partner_id="ptn_other"
        )
        with pytest.raises(NotFound, match="not found"):
            get_or_issue_credit_note(session, actor=other, payout_id=payouts["fr"], now=clock.now())

    def test_the_pdf_says_credit_note_and_names_the_invoice_it_cancels(
        self, session: Session, clock: FixedClock, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        _, payouts = eu_program(session, clock)
        get_or_issue(session, actor=SYSTEM, box=BOX, payout_id=payouts["fr"], now=clock.now())
        returned(session, clock, payouts["fr"])
        note = get_or_issue_credit_note(session, actor=SYSTEM, payout_id=payouts["fr"], now=clock.now())
        monkeypatch.setattr(invoice_pdf, "DEJAVU", invoice_pdf.Path("/nonexistent.ttf"))
        text = pdf_text(render_invoice(note))
        for expected in (
            "SELF-BILLING CREDIT NOTE",
            "Credit note number: SB-26-000002",
            "Credits invoice: SB-26-000001",
            "EUR -246.90",
            "Total credited",
            "AC04 account closed",
            "Reverse charge",
        ):
            assert expected in text, expected
        assert "Total paid" not in text
