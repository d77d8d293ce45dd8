"""Commission plans over HTTP: API.md's example accepted as is, bad rules refused at their field, publishing
audited, published versions frozen, assignments and what applies to a partner, other programs and partners 404."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.plans.models import PlanVersion
from partnerpay.programs.models import Program
from tests.api.conftest import Api
from tests.api.test_deals_api import portal

# API.md's example plan, verbatim.
EXAMPLE: dict[str, Any] = {
    "name": "Standard",
    "assign": {"program": True, "group_ids": [], "partner_ids": []},
    "rules": [
        {
            "trigger": "invoice_paid",
            "percent_bp": 2000,
            "flat": None,
            "recurring_months": 12,
            "conditions": {"products": ["pro"], "first_payment_only": False},
            "tiers": [{"from_customers": 0, "percent_bp": 2000}, {"from_customers": 10, "percent_bp": 3000}],
            "tier_period": "quarter",
            "caps": {"per_event": 50000, "per_customer": None, "per_partner_period": None},
            "hold_days": 30,
            "clawback_days": 90,
            "priority": 1,
        }
    ],
}


def put(api: Api, path: str, body: Any) -> Any:
    return api.client.put(f"/api/v1{path}", json=body, headers=api.headers())


def delete(api: Api, path: str) -> Any:
    return api.client.delete(f"/api/v1{path}", headers=api.headers())


@pytest.fixture
def program(api: Api) -> dict[str, Any]:
    return api.program()


def create(api: Api, program_id: str, body: dict[str, Any] | None = None) -> Any:
    return api.post(f"/programs/{program_id}/plans", body or EXAMPLE)


def rule(**overrides: Any) -> dict[str, Any]:
    return {"trigger": "invoice_paid", "percent_bp": 2000, **overrides}


def refused(api: Api, program_id: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    response = create(api, program_id, {"name": "Bad", "rules": rules})
    assert response.status_code == 422, response.text
    error: dict[str, Any] = response.json()["error"]
    return error


class TestCreatePlan:
    def test_the_api_md_example_is_accepted_as_a_draft_assigned_to_the_program(
        self, api: Api, program: dict[str, Any]
    ) -> None:
        response = create(api, program["id"])
        assert response.status_code == 201, response.text
        plan = response.json()
        assert plan["id"].startswith("pln_") and plan["name"] == "Standard" and plan["status"] == "draft"
        [v1] = plan["versions"]
        assert v1["version"] == 1 and v1["status"] == "draft" and v1["effective_from"] is None
        stored = v1["rules"][0]
        assert stored["percent_bp"] == 2000 and stored["tiers"][1] == {"from_customers": 10, "percent_bp": 3000}
        assert stored["caps"]["per_event"] == 50000 and stored["conditions"]["products"] == ["pro"]
        assert v1["rules_text"][0].startswith("Rule 1: 20 % of the amount, tiered by paying customers per quarter")
        assert "for 12 months from the first payment" in v1["rules_text"][0]
        [assignment] = plan["assignments"]
        assert assignment["scope"] == "program" and assignment["id"].startswith("pla_")

    def test_a_float_rate_is_refused_naming_the_field(self, api: Api, program: dict[str, Any]) -> None:
        error = refused(api, program["id"], [rule(percent_bp=2000.5)])
        assert error["field"] == "rules.0.percent_bp"
        assert "floats are refused" in error["message"]

    def test_a_negative_percent_is_refused_naming_the_field(self, api: Api, program: dict[str, Any]) -> None:
        error = refused(api, program["id"], [rule(), rule(trigger="signup", percent_bp=-100)])
        assert error["field"] == "rules.1.percent_bp" and error["message"].startswith("rule 2:")

    def test_an_unknown_event_type_is_refused_naming_the_trigger(self, api: Api, program: dict[str, Any]) -> None:
        error = refused(api, program["id"], [rule(trigger="invoice_payed")])
        assert error["field"] == "rules.0.trigger" and "invoice_payed" in error["message"]
        assert refused(api, program["id"], [rule(trigger="refund")])["field"] == "rules.0.trigger"

    def test_a_custom_event_type_of_the_program_is_accepted(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        with session_factory() as s:
            row = s.get(Program, program["id"])
            assert row is not None
            row.custom_event_types = ["trial_extended"]
            s.commit()
        body = {"name": "Trials", "rules": [{"trigger": "trial_extended", "flat": 500}]}
        assert create(api, program["id"], body).status_code == 201

    def test_a_tier_table_with_a_gap_is_refused(self, api: Api, program: dict[str, Any]) -> None:
        tiers = [{"from_customers": 5, "percent_bp": 2000}, {"from_customers": 10, "percent_bp": 3000}]
        error = refused(api, program["id"], [rule(percent_bp=None, tiers=tiers, tier_period="month")])
        assert error["field"] == "rules.0.tiers" and "gap" in error["message"]

    def test_an_unknown_rule_field_and_a_rule_that_pays_nothing_are_refused(
        self, api: Api, program: dict[str, Any]
    ) -> None:
        assert refused(api, program["id"], [rule(percnt_bp=1)])["field"] == "rules.0.percnt_bp"
        assert refused(api, program["id"], [{"trigger": "signup"}])["field"] == "rules.0"

    def test_a_partner_exception_without_a_reason_is_refused_and_nothing_is_written(
        self, api: Api, program: dict[str, Any]
    ) -> None:
        partner = api.partner(program["id"])
        body = {**EXAMPLE, "assign": {"partner_ids": [partner["id"]]}}
        response = create(api, program["id"], body)
        assert response.status_code == 422 and response.json()["error"]["field"] == "assign.reason"
        assert api.get(f"/programs/{program['id']}/plans").json()["data"] == []


class TestPublish:
    def test_publishing_is_audited_and_the_published_version_is_frozen(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        plan = create(api, program["id"]).json()
        published = api.post(f"/plans/{plan['id']}/publish")
        assert published.status_code == 200, published.text
        v1 = published.json()["versions"][0]
        assert v1["status"] == "published" and v1["effective_from"] == api.clock.now().isoformat()
        with session_factory() as s:
            [entry] = s.scalars(select(AuditEntry).where(AuditEntry.action == "plan.publish")).all()
            assert entry.object_id == plan["id"] and entry.after is not None and entry.after["version"] == 1
        edit = put(api, f"/plans/{plan['id']}/draft", {"rules": [rule(percent_bp=9000)]})
        assert edit.status_code == 409 and edit.json()["error"]["field"] == "version"
        assert api.post(f"/plans/{plan['id']}/publish").status_code == 409

    def test_overlapping_rules_of_the_same_priority_are_refused_naming_both(
        self, api: Api, program: dict[str, Any]
    ) -> None:
        rules = [
            rule(conditions={"products": ["pro", "team"]}),
            rule(trigger="signup", flat=1000, percent_bp=None),
            rule(percent_bp=1000, conditions={"products": ["pro"], "customer_countries": ["DE"]}),
        ]
        plan = create(api, program["id"], {"name": "Overlap", "rules": rules}).json()
        response = api.post(f"/plans/{plan['id']}/publish")
        assert response.status_code == 422
        error = response.json()["error"]
        assert error["rules"] == [1, 3] and error["field"] == "rules"
        assert error["message"].startswith(
            "rules 1 and 3 both pay on invoice_paid for product pro and customer country DE;"
        )
        # A higher priority settles it: the higher one wins, so the plan publishes.
        rules[2]["priority"] = 5
        assert put(api, f"/plans/{plan['id']}/draft", {"rules": rules}).status_code == 200
        assert api.post(f"/plans/{plan['id']}/publish").status_code == 200

    def test_disjoint_conditions_do_not_overlap(self, api: Api, program: dict[str, Any]) -> None:
        rules = [rule(conditions={"products": ["pro"]}), rule(conditions={"products": ["team"]})]
        plan = create(api, program["id"], {"name": "Split", "rules": rules}).json()
        assert api.post(f"/plans/{plan['id']}/publish").status_code == 200

    def test_a_new_version_never_changes_the_old_one(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        plan = create(api, program["id"]).json()
        api.post(f"/plans/{plan['id']}/publish")
        with session_factory() as s:
            v1_text = s.scalars(select(PlanVersion.rules).where(PlanVersion.plan_id == plan["id"])).one()
        draft = api.post(f"/plans/{plan['id']}/versions")
        assert draft.status_code == 201 and draft.json()["draft_version"] == 2
        assert api.post(f"/plans/{plan['id']}/versions").status_code == 409  # one draft at a time
        changed = put(api, f"/plans/{plan['id']}/draft", {"rules": [rule(percent_bp=3500)]})
        assert changed.status_code == 200
        api.clock.advance(timedelta(days=1))
        after = api.post(f"/plans/{plan['id']}/publish").json()
        v1, v2 = after["versions"]
        assert (v1["status"], v2["status"]) == ("archived", "published")
        assert v1["rules"][0]["percent_bp"] == 2000 and v2["rules"][0]["percent_bp"] == 3500
        with session_factory() as s:
            assert s.scalars(select(PlanVersion.rules).where(PlanVersion.version == 1)).one() == v1_text


class TestAssignments:
    def test_partner_exception_beats_group_beats_program_and_expiry_is_honoured(
        self, api: Api, program: dict[str, Any]
    ) -> None:
        group = api.post("/groups", {"program_id": program["id"], "name": "Pilot"}).json()
        partner = api.post(
            "/partners",
            {"program_id": program["id"], "name": "Acme", "email": "a@acme.example", "group_id": group["id"]},
        ).json()
        ids = {}
        for name, bp in (("Standard", 2000), ("Pilot plan", 2500), ("Acme deal", 4000)):
            plan = create(api, program["id"], {"name": name, "rules": [rule(percent_bp=bp)]}).json()
            assert api.post(f"/plans/{plan['id']}/publish").status_code == 200
            ids[name] = plan["id"]
        applies = api.get(f"/partners/{partner['id']}/plan").json()
        assert applies["plan"] is None and applies["default_percent_bp"] == 2000
        api.post(f"/plans/{ids['Standard']}/assignments", {"scope": "program"})
        assert api.get(f"/partners/{partner['id']}/plan").json()["how"]["level"] == "program"
        api.post(f"/plans/{ids['Pilot plan']}/assignments", {"scope": "group", "group_id": group["id"]})
        assert api.get(f"/partners/{partner['id']}/plan").json()["plan"]["name"] == "Pilot plan"
        expires = (api.clock.now() + timedelta(days=30)).isoformat()
        exception = api.post(
            f"/plans/{ids['Acme deal']}/assignments",
            {"scope": "partner", "partner_id": partner["id"], "reason": "launch partner", "expires_at": expires},
        )
        assert exception.status_code == 201, exception.text
        now = api.get(f"/partners/{partner['id']}/plan").json()
        assert now["plan"]["name"] == "Acme deal" and now["how"]["reason"] == "launch partner"
        assert now["how"]["text"].startswith("plan Acme deal v1, a partner exception (launch partner, until")
        later = (api.clock.now() + timedelta(days=31)).isoformat()
        assert api.get(f"/partners/{partner['id']}/plan", at=later).json()["plan"]["name"] == "Pilot plan"
        removed = delete(api, f"/plan-assignments/{exception.json()['id']}")
        assert removed.status_code == 200 and removed.json()["ended_at"] is not None
        assert api.get(f"/partners/{partner['id']}/plan").json()["plan"]["name"] == "Pilot plan"
        assert delete(api, f"/plan-assignments/{exception.json()['id']}").status_code == 409

    def test_a_partner_exception_needs_a_reason(self, api: Api, program: dict[str, Any]) -> None:
        partner = api.partner(program["id"])
        plan = create(api, program["id"]).json()
        response = api.post(f"/plans/{plan['id']}/assignments", {"scope": "partner", "partner_id": partner["id"]})
        assert response.status_code == 422 and response.json()["error"]["field"] == "reason"


class TestVisibility:
    def test_another_programs_plan_is_404(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        plan = create(api, program["id"]).json()
        other = api.program(name="Other")
        key = api.key_for(session_factory, program_id=other["id"])
        assert api.get(f"/plans/{plan['id']}", key=key).status_code == 404
        assert api.post(f"/plans/{plan['id']}/publish", key=key).status_code == 404
        assert api.get(f"/programs/{program['id']}/plans", key=key).status_code == 404
        assert api.get(f"/plans/{plan['id']}").status_code == 200
        partner = api.partner(other["id"])
        refused = api.post(
            f"/plans/{plan['id']}/assignments", {"scope": "partner", "partner_id": partner["id"], "reason": "x"}
        )
        assert refused.status_code == 404 and refused.json()["error"]["field"] == "partner_id"

    def test_a_partner_user_sees_404_and_a_read_key_cannot_write(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        plan = create(api, program["id"]).json()
        partner = api.partner(program["id"])
        client, csrf = portal(api, session_factory, partner["id"], "jo@acme.example")
        assert client.get(f"/api/v1/plans/{plan['id']}").status_code == 404
        assert client.get(f"/api/v1/programs/{program['id']}/plans").status_code == 404
        write = client.post(f"/api/v1/plans/{plan['id']}/publish", headers={"X-CSRF-Token": csrf})
        assert write.status_code == 404
        assert client.get(f"/api/v1/partners/{partner['id']}/plan").status_code == 404
        reader = api.key_for(session_factory, scopes=["read"])
        assert api.get(f"/plans/{plan['id']}", key=reader).status_code == 200
        assert api.post(f"/plans/{plan['id']}/publish", key=reader).status_code == 403


def test_the_openapi_document_lists_the_plan_routes(api: Api) -> None:
    paths = api.client.get("/api/v1/openapi.json").json()["paths"]
    for path in (
        "/api/v1/programs/{program_id}/plans",
        "/api/v1/plans/{plan_id}/publish",
        "/api/v1/partners/{partner_id}/plan",
    ):
        assert path in paths
