"""Tax reports over HTTP: 1099-NEC masked for readers, sealed for finance; invoices and settings; 404 elsewhere."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.kit.crypto import SecretBox
from partnerpay.partners.payout_details import set_tax_profile
from partnerpay.tax.sealed_file import unseal
from tests.api.conftest import Api
from tests.integration.test_tax import W9, eu_program, paid_program, partner_of, returned


def box(api: Api) -> SecretBox:
    found = api.client.app.state.secret_box  # type: ignore[attr-defined]
    assert isinstance(found, SecretBox)
    return found


class TestNecApi:
    def test_readers_see_masked_tins_and_finance_gets_a_sealed_file(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        with session_factory() as s:
            prog, payouts = paid_program(s, api.clock, {"a": 400_000}, paid_at=datetime(2026, 1, 5, tzinfo=UTC))
            set_tax_profile(
                s, actor=SYSTEM, box=box(api), partner_id=partner_of(s, payouts["a"]), data=W9, now=api.clock.now()
            )  # type: ignore[arg-type]
            s.commit()
            program_id = prog.id
        reader = api.key_for(session_factory, scopes=["read"])
        r = api.get(f"/programs/{program_id}/tax/1099-nec", key=reader, year=2026)
        assert r.status_code == 200, r.text
        body = r.json()
        assert [x["amount"] for x in body["recipients"]] == [80_000] and body["threshold"] == 60_000
        assert body["recipients"][0]["tin"].endswith("4442") and "1144442" not in r.text
        csv_text = api.get(f"/programs/{program_id}/tax/1099-nec", key=reader, year=2026, format="csv").text
        assert csv_text.startswith("partner_id,legal_name") and "800.00" in csv_text and "1144442" not in csv_text
        body = {"year": 2026, "passphrase": "a long enough passphrase"}
        assert api.post(f"/programs/{program_id}/tax/1099-nec/export", body, key=reader).status_code == 403
        sealed = api.post(f"/programs/{program_id}/tax/1099-nec/export", body)
        assert sealed.status_code == 200 and b"1144442" not in sealed.content
        name, content = unseal(sealed.content, passphrase="a long enough passphrase")
        assert name == "1099-nec-2026.csv" and "91-1144442" in content.decode() and "Main St" in content.decode()
        short = api.post(f"/programs/{program_id}/tax/1099-nec/export", {"year": 2026, "passphrase": "short"})
        assert short.status_code == 422 and short.json()["error"]["field"] == "passphrase"

    def test_bad_year_and_another_program_are_refused(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program(currency="USD")
        assert api.get(f"/programs/{program['id']}/tax/1099-nec", year=1990).status_code == 422
        elsewhere = api.key_for(session_factory, program_id=api.program()["id"], scopes=["read", "payouts"])
        assert api.get(f"/programs/{program['id']}/tax/1099-nec", key=elsewhere, year=2026).status_code == 404


class TestInvoicesApi:
    def test_settings_and_the_invoice_pdf(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        with session_factory() as s:
            prog, payouts = eu_program(s, api.clock, box(api))
            s.commit()
        r = api.client.put(
            f"/api/v1/programs/{prog.id}/tax-settings", json={"invoice_prefix": "P"}, headers=api.headers()
        )
        assert r.status_code == 200 and r.json()["invoice_prefix"] == "P" and r.json()["self_billing"] is True
        bad = api.client.put(
            f"/api/v1/programs/{prog.id}/tax-settings", json={"issuer_vat_id": "DE000"}, headers=api.headers()
        )
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "issuer_vat_id"
        pdf = api.client.get(f"/api/v1/payouts/{payouts['fr']}/invoice.pdf", headers=api.headers())
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
        assert pdf.headers["x-invoice-number"] == "P-000001"
        none = api.client.get(f"/api/v1/payouts/{payouts['us']}/invoice.pdf", headers=api.headers())
        assert none.status_code == 404
        elsewhere = api.key_for(session_factory, program_id=api.program()["id"], scopes=["read"])
        other = api.client.get(f"/api/v1/payouts/{payouts['fr']}/invoice.pdf", headers=api.headers(elsewhere))
        assert other.status_code == 404

    def test_the_credit_note_pdf_of_a_returned_invoiced_payout(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        with session_factory() as s:
            _, payouts = eu_program(s, api.clock, box(api))
            s.commit()
        early = api.client.get(f"/api/v1/payouts/{payouts['fr']}/credit-note.pdf", headers=api.headers())
        assert early.status_code == 404 and "no self-billing invoice" in early.json()["error"]["message"]
        invoice = api.client.get(f"/api/v1/payouts/{payouts['fr']}/invoice.pdf", headers=api.headers())
        assert invoice.headers["x-invoice-number"] == "SB-26-000001"
        paid = api.client.get(f"/api/v1/payouts/{payouts['fr']}/credit-note.pdf", headers=api.headers())
        assert paid.status_code == 404
        assert "once a payout with an invoice is returned" in paid.json()["error"]["message"]
        with session_factory() as s:
            returned(s, api.clock, payouts["fr"])
            s.commit()
        note = api.client.get(f"/api/v1/payouts/{payouts['fr']}/credit-note.pdf", headers=api.headers())
        assert note.status_code == 200 and note.content.startswith(b"%PDF-")
        assert note.headers["x-invoice-number"] == "SB-26-000002"
        assert 'filename="SB-26-000002.pdf"' in note.headers["content-disposition"]
        again = api.client.get(f"/api/v1/payouts/{payouts['fr']}/credit-note.pdf", headers=api.headers())
        assert again.headers["x-invoice-number"] == "SB-26-000002"
        elsewhere = api.key_for(session_factory, program_id=api.program()["id"], scopes=["read"])
        other = api.client.get(f"/api/v1/payouts/{payouts['fr']}/credit-note.pdf", headers=api.headers(elsewhere))
        assert other.status_code == 404
