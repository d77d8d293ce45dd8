"""HubSpot through HTTP: v3 signatures (ms timestamps, rotation, proxies), batches stored one item per event,
deal-stage changes moving partner deals, and pushing a deal to a loopback HubSpot API as an outbox job."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.deals.models import Deal
from partnerpay.deals.service import link_crm
from partnerpay.events.models import Event
from partnerpay.inbox.models import InboxItem
from partnerpay.inbox.service import retry_items
from partnerpay.integrations.hubspot_client import API_URL_ENV
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.worker import Worker
from partnerpay.settings import Settings
from tests.api.at_once import at_once
from tests.api.conftest import Api
from tests.api.hubspot_helpers import (
    OTHER_SECRET,
    SECRET,
    TOKEN,
    FakeHubSpot,
    body_of,
    event,
    fake_hubspot,
    signature,
    stage_change,
)

KEY = "k" * 40  # the app's secret key in tests/api/conftest.py


@dataclass
class Hub:
    api: Api
    factory: sessionmaker[Session]
    program_id: str
    partner_id: str
    deal_id: str

    @property
    def now_ms(self) -> int:
        return int(self.api.clock.now().timestamp() * 1000)

    def url(self, program_id: str | None = None) -> str:
        return f"/api/v1/webhooks/hubspot/{program_id or self.program_id}"

    def post(self, body: bytes, headers: dict[str, str], path: str | None = None) -> Any:
        return self.api.client.post(path or self.url(), content=body, headers={"Content-Type": "application/json",
                                                                                **headers})  # fmt: skip

    def deliver(
        self, events: list[dict[str, Any]], secret: str = SECRET, ts: int | None = None, uri: str | None = None
    ) -> Any:
        body = body_of(events)
        ts = self.now_ms if ts is None else ts
        sig = signature("POST", uri or f"http://testserver{self.url()}", body, ts, secret)
        return self.post(body, {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(ts)})

    def configure(self, **body: Any) -> Any:
        return self.api.client.put(
            f"/api/v1/programs/{self.program_id}/integrations/hubspot", json=body, headers=self.api.headers()
        )

    def items(self) -> list[InboxItem]:
        with self.factory() as s:
            return list(s.scalars(select(InboxItem).order_by(InboxItem.external_id)).all())

    def events(self, kind: str | None = None) -> list[Event]:
        with self.factory() as s:
            stmt = select(Event).where(Event.program_id == self.program_id).order_by(Event.id)
            return list(s.scalars(stmt if kind is None else stmt.where(Event.type == kind)).all())

    def deal(self) -> Deal:
        with self.factory() as s:
            deal = s.get(Deal, self.deal_id)
            assert deal is not None
            return deal

    def link(self, crm_id: str = "5001") -> None:
        with self.factory() as s:
            link_crm(s, actor=SYSTEM, deal_id=self.deal_id, crm_id=crm_id, now=self.api.clock.now())
            s.commit()

    def work(self) -> int:
        settings = Settings(secret_key=KEY, in_process_worker=False)
        return Worker(self.factory, build_registry(settings), clock=self.api.clock).run_pending()


@pytest.fixture
def hub(api: Api, session_factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch) -> Hub:
    # The inbox job reads sealed credentials with the process's own settings, as a real worker does.
    monkeypatch.setenv("PARTNERPAY_SECRET_KEY", KEY)
    program = api.program(currency="EUR", hold_days=0)
    partner = api.partner(program["id"], "Acme Media")
    lead = api.post("/leads", {"program_id": program["id"], "partner_id": partner["id"], "company": "Globex Inc.",
                               "domain": "globex.com", "expected_value": 150_000, "currency": "EUR"})  # fmt: skip
    assert lead.status_code == 201, lead.text
    deal = api.post(f"/leads/{lead.json()['id']}/accept").json()["deal"]
    hub = Hub(api, session_factory, program["id"], partner["id"], deal["id"])
    assert hub.configure(webhook_secret=SECRET).status_code == 200
    return hub


@pytest.fixture
def crm(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeHubSpot]:
    with fake_hubspot() as fake:
        monkeypatch.setenv(API_URL_ENV, fake.url)
        yield fake


class TestSignature:
    def test_a_signed_batch_stores_one_item_per_event(self, hub: Hub) -> None:
        response = hub.deliver([stage_change(101, 5001, "qualifiedtobuy"), event(102, "deal.deletion", 5002)])
        assert response.status_code == 200, response.text
        assert [(e["event_id"], e["status"], e["duplicate"]) for e in response.json()["events"]] == [
            ("101", "received", False),
            ("102", "received", False),
        ]
        assert [(i.external_id, i.kind) for i in hub.items()] == [
            ("101", "deal.propertyChange"),
            ("102", "deal.deletion"),
        ]

    @pytest.mark.parametrize(("offset", "status"), [(-300_000, 200), (-300_001, 400), (300_000, 200), (300_001, 400)])
    def test_the_timestamp_is_milliseconds_within_five_minutes_either_way(
        self, hub: Hub, offset: int, status: int
    ) -> None:
        response = hub.deliver([stage_change(101, 5001, "qualifiedtobuy")], ts=hub.now_ms + offset)
        assert response.status_code == status, response.text
        assert len(hub.items()) == (1 if status == 200 else 0)

    def test_a_rotated_secret_still_verifies_during_its_grace(self, hub: Hub) -> None:
        assert hub.configure(webhook_secret=OTHER_SECRET).status_code == 200
        assert hub.deliver([stage_change(1, 5001, "qualifiedtobuy")], secret=SECRET).status_code == 200
        assert hub.deliver([stage_change(2, 5001, "qualifiedtobuy")], secret=OTHER_SECRET).status_code == 200
        hub.api.clock.advance(timedelta(hours=25))
        refused = hub.deliver([stage_change(3, 5001, "qualifiedtobuy")], secret=SECRET)
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "bad_signature"

    def test_bad_or_missing_signatures_are_refused_counted_and_store_nothing(self, hub: Hub) -> None:
        body = body_of([stage_change(1, 5001, "qualifiedtobuy")])
        ts = str(hub.now_ms)
        assert hub.post(body, {"X-HubSpot-Request-Timestamp": ts}).status_code == 400
        wrong = signature("POST", f"http://testserver{hub.url()}", body, hub.now_ms, "not-the-secret")
        refused = hub.post(body, {"X-HubSpot-Signature-v3": wrong, "X-HubSpot-Request-Timestamp": ts})
        assert refused.status_code == 400 and refused.json()["error"]["field"] == "X-HubSpot-Signature-v3"
        other_body = signature("POST", f"http://testserver{hub.url()}", body + b" ", hub.now_ms, SECRET)
        assert (
            hub.post(body, {"X-HubSpot-Signature-v3": other_body, "X-HubSpot-Request-Timestamp": ts}).status_code == 400
        )
        assert hub.items() == []
        health = hub.api.get(f"/programs/{hub.program_id}/integrations/hubspot").json()
        assert health["bad_signatures"] == 3

    def test_the_signed_uri_is_the_public_one_with_hubspots_characters_decoded(self, hub: Hub) -> None:
        assert hub.configure(base_url="https://partners.example.com/pp/").status_code == 200
        path = f"{hub.url()}?portal=62515&tag=a%3Ab%2Cc%20d"
        body = body_of([stage_change(7, 5001, "qualifiedtobuy")])
        ts = hub.now_ms
        # HubSpot signs %3A and %2C decoded; %20 is not in its list and stays encoded.
        public = f"https://partners.example.com/pp{hub.url()}?portal=62515&tag=a:b,c%20d"
        sig = signature("POST", public, body, ts, SECRET)
        headers = {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(ts)}
        assert hub.post(body, headers, path=path).status_code == 200
        seen = signature("POST", f"http://testserver{path}", body, ts, SECRET)  # the URL behind the proxy
        headers = {"X-HubSpot-Signature-v3": seen, "X-HubSpot-Request-Timestamp": str(ts)}
        assert hub.post(body, headers, path=path).status_code == 400


class TestBatches:
    def test_an_event_already_stored_is_skipped_and_the_rest_of_the_batch_stored(self, hub: Hub) -> None:
        hub.deliver([stage_change(1, 5001, "qualifiedtobuy"), stage_change(2, 5001, "contractsent")])
        again = hub.deliver([stage_change(2, 5001, "contractsent"), stage_change(3, 5001, "closedwon")])
        assert again.status_code == 200
        assert [(e["event_id"], e["duplicate"]) for e in again.json()["events"]] == [("2", True), ("3", False)]
        assert [i.external_id for i in hub.items()] == ["1", "2", "3"]

    def test_sixteen_simultaneous_deliveries_store_each_event_once(self, hub: Hub) -> None:
        body = body_of([stage_change(11, 5001, "qualifiedtobuy"), event(12, "deal.deletion", 5001)])
        ts = hub.now_ms
        headers = {"X-HubSpot-Signature-v3": signature("POST", f"http://testserver{hub.url()}", body, ts, SECRET),
                   "X-HubSpot-Request-Timestamp": str(ts)}  # fmt: skip
        results = at_once(lambda: hub.post(body, headers))
        assert sorted(r.status_code for r in results) == [200] * 16
        created = [e for r in results for e in r.json()["events"] if not e["duplicate"]]
        assert sorted(e["event_id"] for e in created) == ["11", "12"]
        assert [i.external_id for i in hub.items()] == ["11", "12"]

    def test_unreadable_bodies_are_stored_failed_with_the_reason_and_answered_200(self, hub: Hub) -> None:
        ts = hub.now_ms
        for body in (b"{not json", b'{"eventId": 1}'):
            sig = signature("POST", f"http://testserver{hub.url()}", body, ts, SECRET)
            response = hub.post(body, {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(ts)})
            assert response.status_code == 200, response.text
            assert response.json()["events"][0]["status"] == "failed"
        failed = [i for i in hub.items() if i.status == "failed"]
        assert len(failed) == 2
        assert any("not JSON" in (i.last_error or "") for i in failed)
        assert any("JSON array" in (i.last_error or "") for i in failed)

    def test_a_bad_event_in_a_batch_fails_alone_and_unknown_types_are_ignored(self, hub: Hub) -> None:
        batch = [{"subscriptionType": "deal.creation"}, event(21, "contact.creation", 77)]
        batch += [event(22, "deal.creation", 5001), stage_change(23, 5001, "qualifiedtobuy")]
        response = hub.deliver(batch)
        assert [e["status"] for e in response.json()["events"]] == ["failed", "ignored", "ignored", "received"]
        notes = {i.external_id: i.note for i in hub.items()}
        assert "contact.creation" in (notes["21"] or "")
        assert "partner registrations" in (notes["22"] or "")

    def test_a_body_over_one_mebibyte_is_413(self, hub: Hub) -> None:
        body = b"[" + b" " * (1024 * 1024) + b"]"
        sig = signature("POST", f"http://testserver{hub.url()}", body, hub.now_ms, SECRET)
        response = hub.post(body, {"X-HubSpot-Signature-v3": sig, "X-HubSpot-Request-Timestamp": str(hub.now_ms)})
        assert response.status_code == 413
        assert hub.items() == []


class TestDealStages:
    def test_a_stage_change_moves_the_linked_deal_with_its_timeline_and_audit(self, hub: Hub) -> None:
        hub.link()
        hub.deliver([stage_change(1, 5001, "qualifiedtobuy")])
        assert hub.work() == 1
        [item] = hub.items()
        assert item.status == "processed" and f"deal {hub.deal_id} moved to qualified" in (item.note or "")
        assert hub.deal().stage == "qualified"
        timeline = hub.api.get(f"/deals/{hub.deal_id}/timeline").json()["data"]
        assert timeline[-1]["kind"] == "deal.stage" and "registered → qualified" in timeline[-1]["text"]
        with hub.factory() as s:
            [moved] = s.scalars(select(AuditEntry).where(AuditEntry.action == "deal.stage")).all()
        assert moved.after == {"stage": "qualified", "source": "hubspot"} and moved.actor_id == "webhook:hubspot"
        assert hub.events() == []  # a stage is not an event

    def test_the_demo_stage_records_demo_booked_once(self, hub: Hub) -> None:
        hub.link()
        # One at a time, each later than the one before: jobs of one batch run in no promised order.
        for n, stage in enumerate(("appointmentscheduled", "qualifiedtobuy", "presentationscheduled"), start=1):
            hub.deliver([stage_change(n, 5001, stage, occurred_at=1768478400000 + n)])
            hub.work()
        assert [i.status for i in hub.items()] == ["processed"] * 3
        [demo] = hub.events("demo_booked")
        assert (demo.external_id, demo.partner_id) == ("hubspot-demo:5001", hub.partner_id)
        assert hub.deal().stage == "demo"

    def test_closed_won_wins_the_deal_with_its_amount_and_a_deal_won_event(self, hub: Hub) -> None:
        hub.link()
        hub.deliver([stage_change(1, 5001, "closedwon")])
        hub.work()
        deal = hub.deal()
        assert (deal.status, deal.amount, deal.currency) == ("won", 150_000, "EUR")
        [won] = hub.events("deal_won")
        assert (won.id, won.amount, won.partner_id) == (deal.event_id, 150_000, hub.partner_id)
        # A resend or a late stage change of a closed deal is noted, never a failure loop.
        hub.deliver([stage_change(2, 5001, "closedlost"), stage_change(3, 5001, "contractsent")])
        hub.work()
        assert [i.status for i in hub.items()] == ["processed", "ignored", "ignored"]
        assert "already won" in (hub.items()[1].note or "")

    def test_won_without_an_amount_fails_naming_it_then_reads_hubspots_amount(self, hub: Hub, crm: FakeHubSpot) -> None:
        with hub.factory() as s:
            deal = s.get(Deal, hub.deal_id)
            assert deal is not None
            deal.amount = deal.currency = None
            s.commit()
        hub.link("9001")
        hub.deliver([stage_change(1, 9001, "closedwon")])
        hub.work()
        [item] = hub.items()
        assert item.status == "failed" and "(field amount)" in (item.last_error or "")
        assert hub.deal().status == "open"

        crm.deals["9001"] = {"amount": "1234.50", "deal_currency_code": "EUR"}
        assert hub.configure(access_token=TOKEN).status_code == 200
        with hub.factory() as s:
            retry_items(s, actor=SYSTEM, item_ids=[item.id], now=hub.api.clock.now())
            s.commit()
        hub.work()
        assert hub.items()[0].status == "processed"
        assert (hub.deal().status, hub.deal().amount) == ("won", 123_450)
        [read] = crm.requests
        assert read.method == "GET" and read.path.startswith("/crm/v3/objects/deals/9001?properties=amount")
        assert read.headers["authorization"] == f"Bearer {TOKEN}"

    def test_hubspot_down_while_reading_the_amount_retries_the_job(self, hub: Hub, crm: FakeHubSpot) -> None:
        with hub.factory() as s:
            deal = s.get(Deal, hub.deal_id)
            assert deal is not None
            deal.amount = None
            s.commit()
        hub.link("9001")
        crm.deals["9001"] = {"amount": "99.00", "deal_currency_code": "EUR"}
        crm.script.append((503, {}, {"status": "error", "message": "try later"}))
        assert hub.configure(access_token=TOKEN).status_code == 200
        hub.deliver([stage_change(1, 9001, "closedwon")])
        hub.work()
        assert hub.items()[0].status == "received" and hub.deal().status == "open"  # rolled back, job retried
        hub.api.clock.advance(timedelta(minutes=1))
        hub.work()
        assert hub.items()[0].status == "processed" and (hub.deal().status, hub.deal().amount) == ("won", 9_900)

    def test_a_malformed_event_retried_stays_failed(self, hub: Hub) -> None:
        hub.deliver([{"objectId": 5001, "propertyValue": "closedwon"}])
        [item] = hub.items()
        with hub.factory() as s:
            retry_items(s, actor=SYSTEM, item_ids=[item.id], now=hub.api.clock.now())
            s.commit()
        hub.work()
        assert hub.items()[0].status == "failed" and "subscriptionType" in (hub.items()[0].last_error or "")

    def test_a_change_older_than_the_last_move_is_noted_not_applied(self, hub: Hub) -> None:
        hub.link()
        later, earlier = 1768478400000, 1768478400000 - 60_000
        hub.deliver([stage_change(2, 5001, "contractsent", occurred_at=later)])
        hub.work()
        hub.deliver([stage_change(1, 5001, "qualifiedtobuy", occurred_at=earlier)])
        hub.work()
        assert hub.deal().stage == "negotiation"
        late = next(i for i in hub.items() if i.external_id == "1")
        assert late.status == "ignored" and "older than the deal's last move" in (late.note or "")

    def test_closed_lost_closes_the_deal_with_the_reason(self, hub: Hub) -> None:
        hub.link()
        hub.deliver([stage_change(1, 5001, "closedlost")])
        hub.work()
        assert hub.deal().status == "lost" and "closed lost in HubSpot" in (hub.deal().lost_reason or "")

    def test_an_unlinked_deal_is_ignored_with_a_note(self, hub: Hub) -> None:
        hub.deliver([stage_change(1, 4242, "qualifiedtobuy"), event(2, "deal.deletion", 4242)])
        hub.work()
        assert [(i.status, i.note) for i in hub.items()] == [
            ("ignored", "HubSpot deal 4242 is not linked to a partner deal"),
            ("ignored", "HubSpot deal 4242 was deleted; it is not linked to a partner deal"),
        ]
        assert hub.deal().stage == "registered"

    def test_a_stage_outside_the_map_fails_naming_stage_map_until_mapped(self, hub: Hub) -> None:
        hub.link()
        hub.deliver([stage_change(1, 5001, "custom_stage_77")])
        hub.work()
        assert "(field stage_map)" in (hub.items()[0].last_error or "")
        refused = hub.configure(stage_map={"custom_stage_77": "no-such-stage"})
        assert refused.status_code == 422 and refused.json()["error"]["field"] == "stage_map"
        assert hub.configure(stage_map={"custom_stage_77": "Proposal"}).status_code == 200
        with hub.factory() as s:
            retry_items(s, actor=SYSTEM, statuses=["failed"], now=hub.api.clock.now())
            s.commit()
        hub.work()
        assert hub.deal().stage == "proposal"


class TestPush:
    def push(self, hub: Hub, **config: Any) -> Any:
        assert hub.configure(access_token=TOKEN, **config).status_code == 200
        return hub.api.post(f"/deals/{hub.deal_id}/push-to-hubspot")

    def test_a_deal_is_created_in_hubspot_with_its_partner_and_linked(self, hub: Hub, crm: FakeHubSpot) -> None:
        response = self.push(hub, deal_stage_on_push="appointmentscheduled", pipeline="default")
        assert response.status_code == 202, response.text
        assert response.json()["job_id"].startswith("job_")
        assert crm.requests == []  # the request only queued the job
        hub.work()
        search, create = crm.requests
        assert (search.method, search.path) == ("POST", "/crm/v3/objects/deals/search")
        assert search.body["filterGroups"][0]["filters"][0] == {
            "propertyName": "partnerpay_deal_id", "operator": "EQ", "value": hub.deal_id}  # fmt: skip
        assert (create.method, create.path) == ("POST", "/crm/v3/objects/deals")
        assert create.headers["authorization"] == f"Bearer {TOKEN}"
        assert create.body == {
            "properties": {
                "dealname": "Globex Inc.",
                "amount": "1500.00",
                "dealstage": "appointmentscheduled",
                "pipeline": "default",
                "partnerpay_partner": f"Acme Media ({hub.partner_id})",
                "partnerpay_deal_id": hub.deal_id,
            }
        }
        assert hub.deal().crm_id == "9001"
        timeline = hub.api.get(f"/deals/{hub.deal_id}/timeline").json()["data"]
        assert "HubSpot deal 9001 created and linked" in timeline[-1]["text"]
        again = hub.api.post(f"/deals/{hub.deal_id}/push-to-hubspot")
        assert again.status_code == 409 and "already linked to HubSpot deal 9001" in again.json()["error"]["message"]

    def test_the_stage_comes_from_the_stage_map_read_backwards(self, hub: Hub, crm: FakeHubSpot) -> None:
        hub.api.post(f"/deals/{hub.deal_id}/stage", {"stage": "negotiation"})
        assert self.push(hub).status_code == 202
        hub.work()
        assert crm.requests[-1].body["properties"]["dealstage"] == "contractsent"

    def test_what_cannot_be_pushed_is_refused_naming_the_setting(self, hub: Hub) -> None:
        no_token = hub.api.post(f"/deals/{hub.deal_id}/push-to-hubspot")
        assert no_token.status_code == 422 and no_token.json()["error"]["field"] == "access_token"
        no_stage = self.push(hub)  # "registered" has no HubSpot stage by default
        assert no_stage.status_code == 422 and no_stage.json()["error"]["field"] == "deal_stage_on_push"

    def test_a_429_is_retried_after_retry_after(self, hub: Hub, crm: FakeHubSpot) -> None:
        crm.script.append((429, {"Retry-After": "0"}, {"status": "error", "message": "rate limit"}))
        self.push(hub, deal_stage_on_push="appointmentscheduled")
        hub.work()
        assert [r.path for r in crm.requests] == ["/crm/v3/objects/deals/search"] * 2 + ["/crm/v3/objects/deals"]
        assert hub.deal().crm_id == "9001"

    def test_a_refused_token_is_a_dead_job_with_a_clear_error(self, hub: Hub, crm: FakeHubSpot) -> None:
        crm.script.append((401, {}, {"status": "error", "message": "Authentication credentials not found"}))
        self.push(hub, deal_stage_on_push="appointmentscheduled")
        hub.work()
        with hub.factory() as s:
            [job] = s.scalars(select(OutboxJob).where(OutboxJob.kind == "hubspot.push_deal")).all()
        assert job.status == "dead" and "HubSpot refused the access token (401" in (job.last_error or "")
        assert TOKEN not in (job.last_error or "")
        assert hub.deal().crm_id is None

    def test_a_lost_answer_then_a_retry_creates_one_hubspot_deal(self, hub: Hub, crm: FakeHubSpot) -> None:
        crm.script += [(200, {}, {"total": 0, "results": []}), (0, {}, "DROP")]  # the create's answer is lost
        self.push(hub, deal_stage_on_push="appointmentscheduled")
        hub.work()
        assert len(crm.deals) == 1 and hub.deal().crm_id is None  # created in HubSpot, answer lost
        hub.api.clock.advance(timedelta(minutes=5))
        hub.work()
        assert len(crm.deals) == 1 and hub.deal().crm_id == "9001"
        assert [r.path for r in crm.requests].count("/crm/v3/objects/deals") == 1
        timeline = hub.api.get(f"/deals/{hub.deal_id}/timeline").json()["data"]
        assert "found from an earlier push" in timeline[-1]["text"]
