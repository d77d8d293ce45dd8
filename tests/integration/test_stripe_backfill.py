"""The Stripe backfill against a loopback server speaking Stripe's list format: pagination, retries, refunds,
idempotent re-runs, overlap with webhooks, and the `partnerpay stripe backfill` command."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.cli import app
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Event
from partnerpay.inbox.models import InboxItem
from partnerpay.inbox.service import receive
from partnerpay.integrations.settings_store import put_integration
from partnerpay.integrations.stripe_backfill import BackfillReport, backfill
from partnerpay.integrations.stripe_client import StripeApiError, StripeClient
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import NotFound, ValidationError
from partnerpay.partners.service import create_partner
from partnerpay.programs.service import create_program
from tests.api.stripe_helpers import body_of, charge, event, run_jobs
from tests.integration.stripe_api_fake import FakeStripe, serving

SECRET_KEY = "k" * 40
API_KEY = "sk_test_51Backfill00000000000000009876"
SINCE = datetime(2025, 1, 1, tzinfo=UTC)
UNTIL = datetime(2026, 1, 16, tzinfo=UTC)
PAID_AT = 1768478400  # 2026-01-15 12:00 UTC, the helpers' paid_at


@pytest.fixture
def stripe_api() -> Iterator[FakeStripe]:
    with serving(FakeStripe()) as fake:
        yield fake


@dataclass
class Shop:
    factory: sessionmaker[Session]
    clock: FixedClock
    stripe: FakeStripe
    program_id: str
    referral_code: str
    box: SecretBox = field(default_factory=lambda: SecretBox(SECRET_KEY))
    sleeps: list[float] = field(default_factory=list)

    def client(self, api_key: str, base_url: str) -> StripeClient:
        # jitter 1.0: the full exponential step, so waits are exact
        return StripeClient(api_key, base_url=base_url, sleep=self.sleeps.append, jitter=lambda: 1.0, max_retries=3)

    def run(self, **kw: Any) -> BackfillReport:
        kw.setdefault("since", SINCE)
        kw.setdefault("until", UNTIL)
        return backfill(
            self.factory, program_id=self.program_id, box=self.box, now=self.clock.now(), client=self.client, **kw
        )

    def paid(self, invoice_id: str = "in_1", created: int = PAID_AT - 600, **kw: Any) -> dict[str, Any]:
        kw.setdefault("metadata", {"partnerpay_ref": self.referral_code})
        listed = self.stripe.add_invoice(invoice_id, created, **kw)
        self.stripe.charges[listed["charge"]] = charge(
            listed["charge"], invoice_id=invoice_id, amount=kw.get("amount_paid", 12_000)
        )
        return listed

    def webhook(self, evt_id: str, kind: str, obj: dict[str, Any]) -> None:
        """Store a delivery as the webhook endpoint does once the signature checked out."""
        with self.factory() as s:
            receive(
                s,
                program_id=self.program_id,
                provider="stripe",
                external_id=evt_id,
                kind=kind,
                body=body_of(event(evt_id, kind, obj)).decode(),
                headers={},
                now=self.clock.now(),
            )
            s.commit()

    def rows(self, model: type[Any], *where: Any) -> list[Any]:
        with self.factory() as s:
            return list(s.scalars(select(model).where(*where)).all())

    def items(self) -> list[InboxItem]:
        with self.factory() as s:
            return list(s.scalars(select(InboxItem).order_by(InboxItem.external_id)).all())

    def events(self, kind: str | None = None) -> list[Event]:
        return [e for e in self.rows(Event, Event.program_id == self.program_id) if kind in (None, e.type)]

    def audits(self) -> list[AuditEntry]:
        return self.rows(AuditEntry, AuditEntry.action == "stripe.backfill")


def setup_program(factory: sessionmaker[Session], clock: FixedClock, body: dict[str, Any]) -> tuple[str, str]:
    at = clock.now() - timedelta(days=400)
    with factory() as s:
        program = create_program(
            s, actor=SYSTEM, name="Backfill", currency="EUR", hold_days=0, now=at, default_percent_bp=2000
        )
        partner = create_partner(s, actor=SYSTEM, program_id=program.id, name="Acme", email="acme@x.example", now=at)
        put_integration(
            s, actor=SYSTEM, box=SecretBox(SECRET_KEY), program_id=program.id, provider="stripe", body=body, now=at
        )
        s.commit()
        return program.id, partner.referral_code


@pytest.fixture
def shop(session_factory: sessionmaker[Session], clock: FixedClock, stripe_api: FakeStripe) -> Shop:
    body = {"api_key": API_KEY, "base_url": stripe_api.url, "webhook_secret": "whsec_backfill_test"}
    program_id, code = setup_program(session_factory, clock, body)
    return Shop(session_factory, clock, stripe_api, program_id, code)


class TestPagination:
    def test_three_pages_are_followed_by_starting_after_and_every_invoice_is_stored(self, shop: Shop) -> None:
        for n in range(201):
            shop.paid(f"in_{n:03d}", created=PAID_AT - 60 * n)

        report = shop.run()

        asked = shop.stripe.seen("/v1/invoices")
        assert len(asked) == 3
        listed = [i["id"] for i in shop.stripe.invoices]
        assert [r.query.get("starting_after") for r in asked] == [None, [listed[99]], [listed[199]]]
        for request in asked:
            assert request.query["limit"] == ["100"] and request.query["status"] == ["paid"]
            assert request.query["created[gte]"] == [str(int(SINCE.timestamp()))]
            assert request.query["created[lt]"] == [str(int(UNTIL.timestamp()))]
            assert request.authorization == f"Bearer {API_KEY}"
        [refunds] = shop.stripe.seen("/v1/refunds")
        assert refunds.query["expand[]"] == ["data.charge"] and refunds.query["limit"] == ["100"]

        assert (report.pages, report.invoices_seen, report.invoices_stored, report.invoices_known) == (4, 201, 201, 0)
        items = shop.items()
        assert len(items) == 201 and {i.status for i in items} == {"received"}
        assert items[0].external_id == "backfill:invoice:in_000" and items[0].kind == "invoice.paid"
        stored = json.loads(items[0].body)
        assert stored["type"] == "invoice.paid" and stored["data"]["object"]["id"] == "in_000"
        assert len(shop.rows(OutboxJob, OutboxJob.kind == "inbox.process")) == 201  # the worker's share
        assert shop.events() == []
        [audit] = shop.audits()
        assert audit.after is not None and audit.after["invoices_stored"] == 201 and audit.after["error"] is None

    def test_a_second_run_stores_nothing_new(self, shop: Shop) -> None:
        shop.paid("in_1")
        shop.paid("in_2")
        first = shop.run(process=True)
        events = [e.id for e in shop.events()]

        second = shop.run(process=True)

        assert (first.invoices_stored, second.invoices_stored, second.invoices_known) == (2, 0, 2)
        assert second.processed == {}
        assert len(shop.items()) == 2 and [e.id for e in shop.events()] == events
        assert len(shop.rows(OutboxJob)) == 2
        assert len(shop.audits()) == 2

    def test_an_empty_account_makes_one_request_per_list(self, shop: Shop) -> None:
        report = shop.run(since=None, until=None)

        assert [r.path for r in shop.stripe.requests] == ["/v1/invoices", "/v1/refunds"]
        assert "created[gte]" not in shop.stripe.requests[0].query
        assert (report.pages, report.invoices_seen) == (2, 0)


class TestRetries:
    def test_a_429_waits_at_least_retry_after_then_goes_on(self, shop: Shop) -> None:
        shop.paid("in_1")
        error = {"error": {"type": "rate_limit_error", "message": "Too many requests"}}
        shop.stripe.failures[("/v1/invoices", None)] = [(429, {"Retry-After": "3"}, error)]

        report = shop.run()

        assert shop.sleeps == [3.0]
        first, again = shop.stripe.seen("/v1/invoices")
        assert first.query == again.query
        assert report.invoices_stored == 1

    def test_server_errors_back_off_exponentially(self, shop: Shop) -> None:
        shop.paid("in_1")
        error = {"error": {"type": "api_error", "message": "Something went wrong"}}
        shop.stripe.failures[("/v1/invoices", None)] = [(500, {}, error), (503, {}, error)]

        report = shop.run()

        assert shop.sleeps == [0.5, 1.0]
        assert report.invoices_stored == 1

    def test_stripe_should_retry_false_is_not_retried(self, shop: Shop) -> None:
        error = {"error": {"type": "api_error", "message": "Do not retry this"}}
        shop.stripe.failures[("/v1/invoices", None)] = [(500, {"Stripe-Should-Retry": "false"}, error)]

        with pytest.raises(StripeApiError, match="500"):
            shop.run()

        assert shop.sleeps == [] and len(shop.stripe.requests) == 1

    def test_a_failure_on_page_two_keeps_page_one_and_the_next_run_resumes(self, shop: Shop) -> None:
        for n in range(150):
            shop.paid(f"in_{n:03d}", created=PAID_AT - 60 * n)
        last_of_page_one = shop.stripe.invoices[99]["id"]
        error = {"error": {"type": "api_error", "message": "Stripe is down"}}
        shop.stripe.failures[("/v1/invoices", last_of_page_one)] = [(503, {}, error)] * 4

        with pytest.raises(StripeApiError, match="run the backfill again later") as failed:
            shop.run()

        assert failed.value.field == "base_url"
        assert len(shop.sleeps) == 3 and len(shop.items()) == 100
        [audit] = shop.audits()
        assert audit.after is not None and audit.after["invoices_stored"] == 100
        assert "stripe_api_error" in audit.after["error"]

        resumed = shop.run()

        assert (resumed.invoices_stored, resumed.invoices_known) == (50, 100)
        assert len(shop.items()) == 150

    def test_a_refused_api_key_is_a_clear_error_and_stores_nothing(self, shop: Shop) -> None:
        shop.paid("in_1")
        error = {"error": {"type": "invalid_request_error", "message": "Invalid API Key provided: sk_test_****9876"}}
        shop.stripe.failures[("/v1/invoices", None)] = [(401, {}, error)]

        with pytest.raises(StripeApiError) as refused:
            shop.run()

        assert refused.value.field == "api_key" and "api_key" in refused.value.message
        assert "9876" not in refused.value.message and API_KEY not in str(refused.value)
        assert shop.sleeps == [] and shop.items() == [] and shop.events() == []

    def test_an_unreachable_server_is_retried_then_named(self) -> None:
        sleeps: list[float] = []
        client = StripeClient(API_KEY, base_url="http://127.0.0.1:9", sleep=sleeps.append, max_retries=2, timeout=2)

        with client, pytest.raises(StripeApiError, match="could not be reached") as failed:
            list(client.list_all("/v1/invoices", {}))

        assert failed.value.field == "base_url" and len(sleeps) == 2


class TestRefunds:
    def test_refunds_of_one_charge_become_one_refund_of_the_cumulative_amount(self, shop: Shop) -> None:
        shop.paid("in_1")
        shop.stripe.add_refund("re_1", "ch_in_1", 1_000, PAID_AT + 60)
        shop.stripe.add_refund("re_2", "ch_in_1", 2_000, PAID_AT + 120)

        report = shop.run(process=True)

        assert (report.refunds_seen, report.refunds_stored, report.refunds_known) == (2, 1, 1)
        assert report.processed == {"processed": 2}
        [paid] = shop.events("invoice_paid")
        [refund] = shop.events("refund")
        assert (paid.external_id, paid.amount) == ("in_1", 10_000)
        assert refund.amount == 2_500  # 3,000 refunded of 12,000 gross: its share of the 10,000 net
        assert refund.original_event_id == paid.id
        assert refund.external_id == "backfill:charge.refunded:ch_in_1:3000"
        assert refund.occurred_at == datetime.fromtimestamp(PAID_AT + 120, UTC)

    def test_a_refund_already_delivered_by_webhook_is_not_counted_twice(self, shop: Shop) -> None:
        listed = shop.paid("in_1")
        shop.stripe.add_refund("re_1", "ch_in_1", 3_000, PAID_AT + 60)
        shop.webhook("evt_paid", "invoice.paid", {k: v for k, v in listed.items() if k not in ("status", "created")})
        shop.webhook("evt_refund", "charge.refunded", shop.stripe.charges["ch_in_1"])
        run_jobs(shop.factory, shop.clock)

        report = shop.run(process=True)

        assert report.processed == {"ignored": 1, "processed": 1}
        assert [e.amount for e in shop.events("refund")] == [2_500]

    def test_a_refund_without_a_charge_or_with_nothing_refunded_is_skipped(self, shop: Shop) -> None:
        shop.paid("in_1")
        shop.stripe.refunds.append(
            {
                "id": "re_x",
                "object": "refund",
                "amount": 500,
                "charge": "ch_in_1",
                "created": PAID_AT,
                "status": "failed",
            }
        )
        shop.stripe.refunds.append(
            {"id": "re_y", "object": "refund", "amount": 700, "charge": None, "created": PAID_AT, "status": "succeeded"}
        )

        report = shop.run()

        assert (report.refunds_seen, report.refunds_skipped, report.refunds_stored) == (2, 2, 0)

    def test_a_refund_of_an_invoice_outside_the_window_waits_for_it(self, shop: Shop) -> None:
        shop.paid("in_old", created=int(SINCE.timestamp()) - 86_400)
        shop.stripe.add_refund("re_1", "ch_in_old", 1_000, PAID_AT)

        report = shop.run(process=True)

        assert report.invoices_seen == 0 and report.processed == {"waiting": 1}
        [item] = shop.items()
        assert item.waiting_for == "in_old"


class TestOverlapWithWebhooks:
    def test_an_invoice_delivered_and_backfilled_is_one_event_and_one_commission_line(self, shop: Shop) -> None:
        listed = shop.paid("in_1")
        shop.webhook("evt_paid_1", "invoice.paid", {k: v for k, v in listed.items() if k not in ("status", "created")})
        assert run_jobs(shop.factory, shop.clock) == 1
        [fact] = shop.events()

        report = shop.run(process=True)

        assert report.processed == {"processed": 1}
        assert [e.id for e in shop.events()] == [fact.id]
        backfilled = next(i for i in shop.items() if i.external_id == "backfill:invoice:in_1")
        assert backfilled.status == "processed" and backfilled.event_ids == [fact.id]
        assert len(shop.rows(CommissionLine, CommissionLine.event_id == fact.id)) == 1
        assert len(shop.rows(CommissionLine)) == 1

    def test_a_backfilled_invoice_that_changed_since_keeps_the_webhooks_event(self, shop: Shop) -> None:
        listed = shop.paid("in_1")
        shop.webhook("evt_paid_1", "invoice.paid", {k: v for k, v in listed.items() if k not in ("status", "created")})
        run_jobs(shop.factory, shop.clock)
        listed["customer_email"] = "renamed@shop.example"  # edited at Stripe after the payment

        report = shop.run(process=True)

        assert report.processed == {"processed": 1}
        [fact] = shop.events()
        assert fact.metadata_json is not None
        backfilled = next(i for i in shop.items() if i.external_id.startswith("backfill:"))
        assert backfilled.event_ids == [fact.id] and "already recorded" in (backfilled.note or "")
        assert len(shop.rows(CommissionLine)) == 1

    def test_a_webhook_arriving_after_a_differing_backfill_is_kept_as_one_event(self, shop: Shop) -> None:
        listed = shop.paid("in_1")
        delivered = {k: v for k, v in listed.items() if k not in ("status", "created")}
        listed["customer_email"] = "renamed@shop.example"
        shop.run(process=True)
        [fact] = shop.events()

        shop.webhook("evt_late", "invoice.paid", delivered)  # Stripe retried it for days
        run_jobs(shop.factory, shop.clock)

        late = next(i for i in shop.items() if i.external_id == "evt_late")
        assert late.status == "processed" and late.event_ids == [fact.id]
        assert [e.id for e in shop.events()] == [fact.id]

    def test_process_also_runs_webhook_refunds_the_backfill_woke(self, shop: Shop) -> None:
        shop.paid("in_1")
        shop.stripe.charges["ch_in_1"]["amount_refunded"] = 1_200
        shop.webhook("evt_refund", "charge.refunded", shop.stripe.charges["ch_in_1"])
        run_jobs(shop.factory, shop.clock)
        assert [(i.status, i.waiting_for) for i in shop.items()] == [("waiting", "in_1")]

        report = shop.run(process=True)

        assert report.processed == {"processed": 2}
        assert [e.amount for e in shop.events("refund")] == [1_000]


class TestBadInput:
    def test_no_api_key_is_refused_before_asking_stripe(
        self, session_factory: sessionmaker[Session], clock: FixedClock, stripe_api: FakeStripe
    ) -> None:
        program_id, _ = setup_program(session_factory, clock, {"webhook_secret": "whsec_only"})

        with pytest.raises(ValidationError, match="no Stripe api_key") as refused:
            backfill(session_factory, program_id=program_id, box=SecretBox(SECRET_KEY), now=clock.now())

        assert refused.value.field == "api_key" and stripe_api.requests == []

    def test_an_unknown_program_and_a_backwards_window_are_refused(self, shop: Shop) -> None:
        with pytest.raises(NotFound):
            backfill(shop.factory, program_id="prg_nope", box=shop.box, now=shop.clock.now())
        with pytest.raises(ValidationError, match="before"):
            shop.run(since=UNTIL, until=SINCE)
        assert shop.stripe.requests == [] and shop.audits() == []


class TestCommand:
    @pytest.fixture
    def cli(self, database_url: str) -> CliRunner:
        return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": SECRET_KEY})

    def test_backfill_with_process_stores_records_and_prints_a_summary(self, cli: CliRunner, shop: Shop) -> None:
        shop.paid("in_1")
        shop.paid("in_2", created=PAID_AT - 1200)

        result = cli.invoke(
            app, ["stripe", "backfill", "--program", shop.program_id, "--since", "2025-01-01", "--process"]
        )

        assert result.exit_code == 0, result.output
        assert "invoices 2 seen, 2 stored, 0 already known" in result.stdout
        assert "Processed: 2 processed." in result.stdout
        assert shop.stripe.requests[0].query["created[gte]"] == [str(int(SINCE.timestamp()))]
        assert "created[lt]" not in shop.stripe.requests[0].query
        assert sorted(e.external_id for e in shop.events()) == ["in_1", "in_2"]

        again = cli.invoke(app, ["stripe", "backfill", "--program", shop.program_id])

        assert again.exit_code == 0 and "0 stored, 2 already known" in again.stdout
        assert "worker" in again.stdout

    @pytest.mark.parametrize(
        ("args", "field"),
        [
            (["--since", "yesterday"], "--since"),
            (["--until", "2026-13-01"], "--until"),
            (["--since", "2026-01-02", "--until", "2026-01-01"], "--since"),
            (["--program", "prg_nope"], "--program"),
        ],
    )
    def test_bad_input_exits_1_naming_the_option(self, cli: CliRunner, shop: Shop, args: list[str], field: str) -> None:
        program = [] if "--program" in args else ["--program", shop.program_id]

        result = cli.invoke(app, ["stripe", "backfill", *program, *args])

        assert result.exit_code == 1
        assert f"[{field}]" in result.stderr
        assert shop.stripe.requests == []

    def test_a_program_without_an_api_key_exits_1_naming_it(
        self, cli: CliRunner, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        program_id, _ = setup_program(session_factory, clock, {"webhook_secret": "whsec_only"})

        result = cli.invoke(app, ["stripe", "backfill", "--program", program_id])

        assert result.exit_code == 1 and "[api_key]" in result.stderr

    def test_a_refused_key_exits_1_without_showing_it(self, cli: CliRunner, shop: Shop) -> None:
        shop.stripe.failures[("/v1/invoices", None)] = [(401, {}, {"error": {"type": "invalid_request_error"}})]

        result = cli.invoke(app, ["stripe", "backfill", "--program", shop.program_id])

        assert result.exit_code == 1 and "[api_key]" in result.stderr
        assert API_KEY not in result.output and API_KEY[-4:] not in result.output
        with shop.factory() as s:
            assert s.scalar(select(func.count()).select_from(InboxItem)) == 0
