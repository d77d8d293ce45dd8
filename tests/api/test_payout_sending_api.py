"""Funding account, batch exports in every format, and Pay all through the API."""

from __future__ import annotations

import csv
import hashlib
import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.payouts.exporters.sepa import xsd
from partnerpay.payouts.models import FundingAccount, PayoutFile
from tests.api.conftest import Api
from tests.integration.sending_helpers import ACH_FUNDING, SEPA_FUNDING, Setup, approved_batch

APP_BOX = SecretBox("k" * 40)  # the api fixture's secret key


def put(api: Api, path: str, body: Any, key: str | None = None) -> Any:
    return api.client.put(f"/api/v1{path}", json=body, headers=api.headers(key))


def batch(session_factory: sessionmaker[Session], clock: FixedClock, kinds: list[str], **kw: Any) -> Setup:
    with session_factory() as session:
        return approved_batch(session, clock, kinds, box=APP_BOX, **kw)


class TestFundingAccount:
    def test_sepa_and_ach_are_validated_stored_sealed_read_back_masked_and_audited(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        response = put(api, f"/programs/{program['id']}/funding-account", {"sepa": SEPA_FUNDING, "ach": ACH_FUNDING})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["sepa"]["iban"] == "DE89 •••• •••• •••• 3000"
        assert body["sepa"]["bic"] == "COBADEFFXXX"
        assert body["ach"]["odfi_routing"] == "111000025" and body["ach"]["company_id"] == "••••7890"
        assert "0532013000" not in response.text and "1234567890" not in response.text
        assert api.get(f"/programs/{program['id']}/funding-account").json() == body
        with session_factory() as s:
            rows = list(s.scalars(select(FundingAccount)))
            assert {r.kind for r in rows} == {"sepa", "ach"}
            assert all("0532013000" not in r.details_encrypted for r in rows)
            audits = s.scalar(select(func.count()).where(AuditEntry.action == "funding_account.set"))
        assert audits == 2

    def test_a_bad_iban_or_routing_number_is_refused_at_its_field_and_nothing_is_stored(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        bad_iban = put(
            api,
            f"/programs/{program['id']}/funding-account",
            {"sepa": {**SEPA_FUNDING, "iban": "DE89370400440532013001"}},
        )
        assert bad_iban.status_code == 422 and bad_iban.json()["error"]["field"] == "sepa.iban"
        bad_aba = put(
            api,
            f"/programs/{program['id']}/funding-account",
            {"sepa": SEPA_FUNDING, "ach": {**ACH_FUNDING, "odfi_routing": "111000026"}},
        )
        assert bad_aba.status_code == 422 and bad_aba.json()["error"]["field"] == "ach.odfi_routing"
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(FundingAccount)) == 0

    def test_a_key_without_the_payouts_scope_is_refused(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        writer = api.key_for(session_factory, scopes=["read", "write"])
        response = put(api, f"/programs/{program['id']}/funding-account", {"sepa": SEPA_FUNDING}, key=writer)
        assert response.status_code == 403


class TestExport:
    def test_a_sepa_export_with_a_partner_without_iban_is_refused_naming_every_partner(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["sepa", "paypal", "stripe"])
        response = api.get(f"/payout-batches/{setup.batch_id}/export", format="sepa")
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (
            "Paypal" in error["message"] and "Stripe" in error["message"] and "no file was produced" in error["message"]
        )
        assert {p["partner"] for p in error["problems"]} == {"Paypal", "Stripe"}
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(PayoutFile)) == 0

    def test_a_sepa_export_validates_against_the_xsd_and_a_re_export_is_identical(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["sepa", "sepa2"])
        first = api.get(f"/payout-batches/{setup.batch_id}/export", format="sepa")
        assert first.status_code == 200, first.text
        assert first.headers["X-Control-Sum"] == "6000" and first.headers["X-Item-Count"] == "2"
        assert first.headers["X-Content-SHA256"] == hashlib.sha256(first.content).hexdigest()
        assert xsd("pain.001.001.03").is_valid(first.text)
        clock.advance(timedelta(hours=5))
        again = api.get(f"/payout-batches/{setup.batch_id}/export", format="sepa")
        assert again.content == first.content

    def test_csv_formats_escape_formulas_and_carry_the_control_sum(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["paypal", "paypal2"], names={"paypal": "=HYPERLINK(1)"})
        generic = api.get(f"/payout-batches/{setup.batch_id}/export", format="csv")
        rows = list(csv.DictReader(io.StringIO(generic.text)))
        assert {r["partner_name"] for r in rows} == {"'=HYPERLINK(1)", "Paypal2"}
        assert sum(int(r["amount_minor"]) for r in rows) == int(generic.headers["X-Control-Sum"]) == 6000
        paypal = api.get(f"/payout-batches/{setup.batch_id}/export", format="paypal_csv")
        lines = sorted(paypal.text.splitlines())
        assert lines[0].startswith("pay@partner.example,20.00,EUR,") and lines[0].endswith(",PAYPAL")
        assert api.get(f"/payout-batches/{setup.batch_id}/export", format="wise").status_code == 422

    def test_a_nacha_export_of_a_dollar_batch(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["ach"], currency="USD")
        response = api.get(f"/payout-batches/{setup.batch_id}/export", format="nacha")
        assert response.status_code == 200, response.text
        records = response.text.splitlines()
        assert len(records) % 10 == 0 and all(len(r) == 94 for r in records)
        assert records[0].startswith("101 021000021")
        # Wise needs the holder's address to pay dollars; this partner's method has none.
        wise = api.get(f"/payout-batches/{setup.batch_id}/export", format="wise")
        assert wise.status_code == 422, wise.text
        (problem,) = wise.json()["error"]["problems"]
        assert problem["partner"] == "Ach" and "address" in problem["reason"] and "USD" in problem["reason"]

    def test_a_wise_export_in_dollars_carries_each_holder_s_address(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["ach_home"], currency="USD")
        wise = api.get(f"/payout-batches/{setup.batch_id}/export", format="wise")
        assert wise.status_code == 200, wise.text
        header, *rows = list(csv.reader(io.StringIO(wise.text)))
        row = dict(zip(header, rows[0], strict=True))
        assert (row["abartn"], row["accountNumber"], row["accountType"]) == ("021000021", "987654321", "SAVINGS")
        address = [row[k] for k in ("addressFirstLine", "addressCity", "addressState", "addressPostCode")]
        assert address == ["1 Main Street", "Springfield", "IL", "62704-1234"] and row["addressCountryCode"] == "US"

    def test_a_wise_export_follows_the_send_to_bank_accounts_template(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["sepa"])
        wise = api.get(f"/payout-batches/{setup.batch_id}/export", format="wise")
        assert wise.status_code == 200, wise.text
        header, *rows = list(csv.reader(io.StringIO(wise.text)))
        assert header[:9] == ["name", "recipientEmail", "paymentReference", "receiverType", "amountCurrency",
                              "amount", "sourceCurrency", "targetCurrency", "IBAN"]  # fmt: skip
        row = dict(zip(header, rows[0], strict=True))
        assert row["receiverType"] in ("PERSON", "INSTITUTION") and row["amountCurrency"] == "target"
        assert row["sourceCurrency"] == row["targetCurrency"] == "EUR" and row["IBAN"]
        assert row["addressFirstLine"] == row["addressCountryCode"] == ""  # euros: Wise needs no address
        assert sum(int(Decimal(r[header.index("amount")]) * 100) for r in rows) == int(wise.headers["X-Control-Sum"])

    def test_a_read_only_key_gets_the_csv_but_not_the_files_with_bank_details(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["sepa"])
        reader = api.key_for(session_factory, scopes=["read"])
        assert api.get(f"/payout-batches/{setup.batch_id}/export", key=reader, format="csv").status_code == 200
        refused = api.get(f"/payout-batches/{setup.batch_id}/export", key=reader, format="sepa")
        assert refused.status_code == 403 and "payout details" in refused.json()["error"]["message"]

    def test_an_unknown_format_is_refused(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["sepa"])
        response = api.get(f"/payout-batches/{setup.batch_id}/export", format="xlsx")
        assert response.status_code == 422 and response.json()["error"]["field"] == "format"


class TestSend:
    def test_pay_all_marks_the_batch_sending_and_queues_the_job(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["sepa", "stripe"])
        response = api.post(f"/payout-batches/{setup.batch_id}/send")
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["status"] == "sending"
        assert {p["status"] for p in body["payouts"]} == {"sending"}
        assert {p["rail"] for p in body["payouts"]} == {"sepa", "stripe_connect"}
        assert body["sent_at"] is not None and body["sent_by"] is not None
        with session_factory() as s:
            jobs = list(s.scalars(select(OutboxJob).where(OutboxJob.kind == "payouts.send")))
        assert [j.payload["batch_id"] for j in jobs] == [setup.batch_id]
        again = api.post(f"/payout-batches/{setup.batch_id}/send")
        assert again.status_code == 409

    def test_pay_all_without_the_payouts_scope_is_forbidden(
        self, api: Api, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = batch(session_factory, clock, ["sepa"])
        writer = api.key_for(session_factory, scopes=["read", "write"])
        assert api.post(f"/payout-batches/{setup.batch_id}/send", key=writer).status_code == 403
