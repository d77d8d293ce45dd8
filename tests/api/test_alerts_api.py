"""Alerts and outgoing webhooks through HTTP: rules, the alert list, acknowledge and snooze, subscriptions with
their secret shown once, the delivery log and replay; and the console pages for both."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.alerts import raising
from partnerpay.alerts.models import Alert
from partnerpay.alerts.rules import create_rule
from partnerpay.auth.actor import SYSTEM
from partnerpay.db.models import Base
from partnerpay.webhooks_out.models import WebhookDelivery
from tests.api.conftest import Api
from tests.api.test_pages import World, csrf_of, staff, world  # noqa: F401  (the fixture)


def inactive_alert(api: Api, session_factory: sessionmaker[Session]) -> tuple[str, str]:
    """A program whose rule found one inactive partner: (program id, alert id)."""
    program = api.program()
    api.partner(program["id"], "Sleepy Shop")
    made = api.post("/alert-rules", {"program_id": program["id"], "kind": "partner_inactive", "params": {"days": 7}})
    assert made.status_code == 201, made.text
    api.clock.advance(timedelta(days=8))
    with session_factory() as s:
        [alert] = raising.evaluate(s, api.clock.now())
        s.commit()
        return program["id"], alert.id


class TestAlertRules:
    def test_create_and_list_with_defaults_and_description(self, api: Api) -> None:
        program = api.program()
        made = api.post("/alert-rules", {"program_id": program["id"], "kind": "spike", "params": {"metric": "refunds"}})
        assert made.status_code == 201, made.text
        body = made.json()
        assert body["id"].startswith("alr_") and body["enabled"] is True
        assert body["params"] == {"metric": "refunds", "factor_pct": 300, "min_count": 3}
        assert body["recipients"] == {"owner": True, "team_roles": ["owner", "manager"], "emails": [], "email": True}
        assert "refunds today above 300%" in body["description"]
        listed = api.get("/alert-rules", program_id=program["id"]).json()["data"]
        assert [r["id"] for r in listed] == [body["id"]]

    def test_bad_rules_are_422_naming_the_field_and_write_nothing(self, api: Api) -> None:
        program = api.program()
        for body, field in [
            ({"kind": "deal_stale", "params": {"days": 0}}, "params.days"),
            ({"kind": "nope"}, "kind"),
            ({"kind": "fraud_flag", "recipients": {"emails": ["x"]}}, "recipients.emails"),
        ]:
            answer = api.post("/alert-rules", {"program_id": program["id"], **body})
            assert answer.status_code == 422, answer.text
            assert answer.json()["error"]["field"] == field
        assert api.post("/alert-rules", {"program_id": "prg_nope", "kind": "fraud_flag"}).status_code == 404
        assert api.get("/alert-rules", program_id=program["id"]).json()["data"] == []

    def test_patch_disables(self, api: Api) -> None:
        program = api.program()
        rule = api.post("/alert-rules", {"program_id": program["id"], "kind": "fraud_flag"}).json()
        patched = api.client.patch(f"/api/v1/alert-rules/{rule['id']}", json={"enabled": False}, headers=api.headers())
        assert patched.status_code == 200 and patched.json()["enabled"] is False


class TestAlerts:
    def test_list_acknowledge_and_snooze(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program_id, alert_id = inactive_alert(api, session_factory)
        listed = api.get("/alerts", program_id=program_id).json()
        [row] = listed["data"]
        assert row["id"] == alert_id and row["status"] == "open" and row["kind"] == "partner_inactive"
        assert "Sleepy Shop" in row["title"]
        bad = api.post(f"/alerts/{alert_id}/snooze", {"until": "yesterday"})
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "until"
        until = (api.clock.now() + timedelta(days=3)).date().isoformat()
        snoozed = api.post(f"/alerts/{alert_id}/snooze", {"until": until})
        assert snoozed.status_code == 200 and snoozed.json()["snoozed_until"].startswith(until)
        assert api.get("/alerts", program_id=program_id).json()["data"] == []
        assert [a["id"] for a in api.get("/alerts", program_id=program_id, status="snoozed").json()["data"]] == [
            alert_id
        ]
        done = api.post(f"/alerts/{alert_id}/acknowledge")
        assert done.status_code == 200 and done.json()["status"] == "acknowledged"
        assert done.json()["acknowledged_by"].startswith("key_")
        assert api.post(f"/alerts/{alert_id}/acknowledge").status_code == 409
        assert api.get("/alerts", status="weird").status_code == 422

    def test_another_programs_key_sees_no_alert(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        _, alert_id = inactive_alert(api, session_factory)
        other = api.program(name="Other")
        key = api.key_for(session_factory, program_id=other["id"], scopes=["read", "write"])
        assert api.get(f"/alerts/{alert_id}", key=key).status_code == 404
        assert api.post(f"/alerts/{alert_id}/acknowledge", key=key).status_code == 404
        assert api.get("/alerts", key=key, status="all").json()["data"] == []


class TestWebhookSubscriptions:
    def test_secret_is_shown_once_and_never_stored_in_clear(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        body = {"program_id": program["id"], "url": "https://hooks.example.com/pp", "event_types": ["payout.paid"]}
        made = api.post("/webhook-subscriptions", body, **{"Idempotency-Key": "sub-1"})
        assert made.status_code == 201, made.text
        secret = made.json()["secret"]
        assert secret.startswith("whsec_") and made.json()["secret_hint"] == "••••" + secret[-4:]
        again = api.post("/webhook-subscriptions", body, **{"Idempotency-Key": "sub-1"})
        assert again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["id"] == made.json()["id"] and again.json()["secret"] is None
        read = api.get(f"/webhook-subscriptions/{made.json()['id']}").json()
        assert "secret" not in read and read["event_types"] == ["payout.paid"]
        rotated = api.post(f"/webhook-subscriptions/{made.json()['id']}/rotate-secret", {"previous_secret_hours": 1})
        assert rotated.status_code == 200 and rotated.json()["secret"] not in (None, secret)
        with session_factory() as s:
            for table in Base.metadata.sorted_tables:
                for row in s.execute(text(f"SELECT * FROM {table.name}")):
                    dumped = str(tuple(row))
                    assert secret not in dumped and rotated.json()["secret"] not in dumped, table.name

    def test_bad_subscriptions_name_the_field(self, api: Api) -> None:
        program = api.program()
        for body, field in [
            ({"url": "http://hooks.example.com/x", "event_types": ["payout.paid"]}, "url"),
            ({"url": "https://hooks.example.com/x", "event_types": ["payout.sent"]}, "event_types"),
        ]:
            answer = api.post("/webhook-subscriptions", {"program_id": program["id"], **body})
            assert answer.status_code == 422 and answer.json()["error"]["field"] == field
        assert api.get("/webhook-subscriptions", program_id=program["id"]).json()["data"] == []

    def test_delivery_log_and_replay(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program(hold_days=0)
        partner = api.partner(program["id"])
        sub = api.post(
            "/webhook-subscriptions",
            {"program_id": program["id"], "url": "https://hooks.example.com/pp", "event_types": ["commission.created"]},
        ).json()
        event = api.post("/events", {"program_id": program["id"], "type": "invoice_paid", "external_id": "in_1",
                                     "occurred_at": api.clock.now().isoformat(), "customer_external_id": "c1",
                                     "partner_id": partner["id"], "amount": 10_000, "currency": "EUR"})  # fmt: skip
        assert event.status_code == 201, event.text
        log = api.get(f"/webhook-subscriptions/{sub['id']}/deliveries").json()["data"]
        [delivery] = log
        assert delivery["status"] == "pending" and delivery["event_type"] == "commission.created"
        detail = api.get(f"/webhook-deliveries/{delivery['id']}").json()
        assert detail["attempts"] == []
        replayed = api.post(f"/webhook-deliveries/{delivery['id']}/replay")
        assert replayed.status_code == 201 and replayed.json()["replay_of"] == delivery["id"]
        assert replayed.json()["event_id"] == delivery["event_id"]
        with session_factory() as s:
            assert len(s.scalars(select(WebhookDelivery)).all()) == 2
            assert s.scalars(select(Alert)).all() == []


class TestPages:
    def _alert(self, w: World) -> str:
        with w.factory() as s:
            create_rule(s, actor=SYSTEM, program_id=w.program_id, kind="partner_inactive", params={"days": 3},
                        now=w.clock.now())  # fmt: skip
            s.commit()
        w.clock.advance(timedelta(days=4))
        with w.factory() as s:
            alerts = raising.evaluate(s, w.clock.now())
            s.commit()
        return alerts[0].id

    def test_alerts_page_acknowledge_and_snooze(self, world: World) -> None:  # noqa: F811
        alert_id = self._alert(world)
        client = staff(world, "manager")
        page_text = client.get("/alerts").text
        assert alert_id in page_text and "inactive for 3+ days" in page_text
        assert "<strong>2</strong> open alerts" in client.get("/alerts/badge").text
        assert 'hx-get="/alerts/badge"' in client.get("/").text
        token = csrf_of(client, "/alerts")
        assert client.post(f"/alerts/{alert_id}/acknowledge", data={}).status_code == 403  # no CSRF token
        bad = client.post(f"/alerts/{alert_id}/snooze", data={"until": "2020-01-01", "csrf_token": token})
        assert bad.status_code == 422 and "until must be in the future" in bad.text
        done = client.post(f"/alerts/{alert_id}/acknowledge", data={"csrf_token": token}, follow_redirects=False)
        assert done.status_code == 303
        with world.factory() as s:
            alert = s.get(Alert, alert_id)
            assert alert is not None and alert.status == "acknowledged" and alert.acknowledged_by.startswith("usr_")

    def test_add_a_rule_from_the_page(self, world: World) -> None:  # noqa: F811
        client = staff(world, "manager")
        token = csrf_of(client, "/alerts")
        form = {"program_id": world.program_id, "kind": "deal_stale", "days": "10", "owner": "on",
                "team_roles": ["manager"], "emails": "ops@example.com", "email": "on", "csrf_token": token}  # fmt: skip
        answer = client.post("/alerts/rules", data=form)
        assert answer.status_code == 200 and "open deals without an update for 10 days" in answer.text
        bad = client.post("/alerts/rules", data={**form, "days": "ten"})
        assert bad.status_code == 422 and "days must be a whole number" in bad.text

    def test_webhook_pages_show_the_secret_once_and_escape_text(self, world: World) -> None:  # noqa: F811
        client = staff(world, "manager")
        token = csrf_of(client, "/webhooks")
        form = {
            "program_id": world.program_id,
            "url": "https://hooks.example.com/x",
            "csrf_token": token,
            "event_types": ["commission.created", "payout.paid"],
            "description": "<script>alert(1)</script>",
        }
        made = client.post("/webhooks", data=form)  # fmt: skip
        assert made.status_code == 200
        secret = re.search(r'class="secret">(whsec_[^<]+)<', made.text)
        assert secret is not None
        listing = client.get("/webhooks").text
        assert secret.group(1) not in listing and "&lt;script&gt;" in listing and "<script>alert" not in listing
        world.invoice(world.acme_id, "inv_hook", 10_000)
        with world.factory() as s:
            delivery = s.scalars(select(WebhookDelivery)).one()
        detail = client.get(f"/webhooks/{delivery.subscription_id}").text
        assert delivery.event_id in detail and "commission.created" in detail
        again = client.post(f"/webhooks/deliveries/{delivery.id}/replay", data={"csrf_token": token})
        assert again.status_code == 200 and "queued again" in again.text
        bad = client.post("/webhooks", data={"program_id": world.program_id, "url": "http://example.com/x",
                                              "event_types": ["payout.paid"], "csrf_token": token})  # fmt: skip
        assert bad.status_code == 422 and "url must use https" in bad.text


class TestWebhookAccess:
    def test_another_programs_key_gets_404_and_patch_checks_the_url(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program, other = api.program(), api.program(name="Other")
        sub = api.post(
            "/webhook-subscriptions",
            {"program_id": program["id"], "url": "https://hooks.example.com/a", "event_types": ["deal.updated"]},
        ).json()
        key = api.key_for(session_factory, program_id=other["id"], scopes=["read", "write"])
        assert api.get(f"/webhook-subscriptions/{sub['id']}", key=key).status_code == 404
        assert api.post(f"/webhook-subscriptions/{sub['id']}/rotate-secret", key=key).status_code == 404
        assert api.get("/webhook-subscriptions", key=key).json()["data"] == []
        reader = api.key_for(session_factory, scopes=["read"])
        assert api.post(f"/webhook-subscriptions/{sub['id']}/rotate-secret", key=reader).status_code == 403
        bad = api.client.patch(
            f"/api/v1/webhook-subscriptions/{sub['id']}", json={"url": "https://192.168.1.5/x"}, headers=api.headers()
        )
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "url"
        path, local_url = f"/api/v1/webhook-subscriptions/{sub['id']}", {"url": "http://127.0.0.1:9000/in"}
        local = api.client.patch(path, json=local_url, headers=api.headers())
        assert local.status_code == 422 and local.json()["error"]["field"] == "url"
        assert "PARTNERPAY_OUTGOING_WEBHOOK_ALLOW_PRIVATE_TARGETS" in local.json()["error"]["message"]
        # With the setting on, this server delivers there, so the URL may be saved.
        api.client.app.state.settings.outgoing_webhook_allow_private_targets = True  # type: ignore[attr-defined]
        allowed = api.client.patch(path, json=local_url, headers=api.headers())
        assert allowed.status_code == 200 and allowed.json()["url"] == "http://127.0.0.1:9000/in"
        off = api.client.patch(f"/api/v1/webhook-subscriptions/{sub['id']}", json={"active": False},
                               headers=api.headers())  # fmt: skip
        assert off.status_code == 200 and off.json()["active"] is False
