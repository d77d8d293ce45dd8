"""Onboarding API: program settings, terms, application decisions and invitations, with their error cases."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.jobs.models import OutboxJob
from partnerpay.messaging.email import EMAIL_SEND
from partnerpay.partners.applications import submit_application
from partnerpay.partners.models import Invitation, Partner
from tests.api.conftest import Api


def applicant(factory: sessionmaker[Session], api: Api, program_id: str, email: str = "ada@example.com") -> str:
    with factory() as s:
        partner = submit_application(
            s, program_id=program_id, data={"name": email.split("@")[0], "email": email}, now=api.clock.now()
        )
        s.commit()
        return partner.id


def count(factory: sessionmaker[Session], model: Any) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model)) or 0)


def error_of(response: Any) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


class TestUpdateProgramSettings:
    def test_only_the_fields_sent_change_and_the_audit_row_has_both_sides(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program(name="Acme")

        response = api.client.patch(
            f"/api/v1/programs/{program['id']}",
            json={"brand_color": "#FF6600", "slug": "acme-partners", "auto_approve": True},
            headers=api.headers(),
        )

        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["brand_color"], body["slug"], body["auto_approve"], body["name"]) == (
            "#ff6600",
            "acme-partners",
            True,
            "Acme",
        )
        with session_factory() as s:
            entry = s.scalar(select(AuditEntry).where(AuditEntry.action == "program.settings"))
            assert entry is not None
            assert entry.before == {"auto_approve": False, "brand_color": "#1f2a44", "slug": "acme"}
            assert entry.after == {"auto_approve": True, "brand_color": "#ff6600", "slug": "acme-partners"}

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"slug": "Not a slug!"}, "slug"),
            ({"brand_color": "orange"}, "brand_color"),
            ({"logo_url": "http://example.com/logo.png"}, "logo_url"),
            ({"logo_url": "javascript:alert(1)"}, "logo_url"),
            ({"hold_days": -1}, "hold_days"),
            ({"default_owner_id": "usr_nobody"}, "default_owner_id"),
            (
                {"application_form": {"questions": [{"key": "Bad Key", "label": "x"}]}},
                "application_form.questions.0.key",
            ),
            ({"application_form": {"fields": {"company": "sometimes"}}}, "application_form.fields.company"),
            ({"currency": "USD"}, "currency"),
        ],
    )
    def test_a_bad_value_is_a_422_naming_the_field(self, api: Api, body: dict[str, Any], field: str) -> None:
        program = api.program()

        response = api.client.patch(f"/api/v1/programs/{program['id']}", json=body, headers=api.headers())

        assert response.status_code == 422, response.text
        assert error_of(response)["field"] == field

    def test_a_float_in_a_whole_number_setting_is_refused(self, api: Api) -> None:
        program = api.program()

        response = api.client.patch(f"/api/v1/programs/{program['id']}", json={"hold_days": 7.5}, headers=api.headers())

        assert response.status_code == 422 and error_of(response)["field"] == "hold_days"

    def test_a_slug_of_another_program_is_a_conflict(self, api: Api) -> None:
        api.program(name="Taken")
        program = api.program(name="Mine")

        response = api.client.patch(f"/api/v1/programs/{program['id']}", json={"slug": "taken"}, headers=api.headers())

        assert response.status_code == 409 and error_of(response)["field"] == "slug"

    def test_another_programs_settings_are_not_found_for_a_program_key(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        mine, theirs = api.program(name="Mine"), api.program(name="Theirs")
        key = api.key_for(session_factory, program_id=mine["id"], scopes=["read", "write"])

        response = api.client.patch(
            f"/api/v1/programs/{theirs['id']}", json={"auto_approve": True}, headers=api.headers(key)
        )

        assert response.status_code == 404

    def test_a_read_only_key_cannot_change_settings(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        key = api.key_for(session_factory, scopes=["read"])

        response = api.client.patch(f"/api/v1/programs/{program['id']}", json={"name": "X"}, headers=api.headers(key))

        assert response.status_code == 403


class TestTerms:
    def test_versions_are_published_one_after_another_and_listed(self, api: Api) -> None:
        program = api.program()
        path = f"/programs/{program['id']}/terms"

        first = api.post(path, {"title": "Agreement", "body_markdown": "# v1"})
        second = api.post(path, {"title": "Agreement", "body_markdown": "# v2"})
        listed = api.get(path)

        assert (first.status_code, second.status_code) == (201, 201)
        assert [t["version"] for t in listed.json()["data"]] == [1, 2]
        assert listed.json()["data"][1]["body_markdown"] == "# v2"

    def test_an_empty_text_is_refused(self, api: Api) -> None:
        program = api.program()

        response = api.post(f"/programs/{program['id']}/terms", {"title": "T", "body_markdown": ""})

        assert response.status_code == 422 and error_of(response)["field"] == "body_markdown"

    def test_a_replay_with_the_same_idempotency_key_publishes_once(self, api: Api) -> None:
        program = api.program()
        path = f"/programs/{program['id']}/terms"
        body = {"title": "Agreement", "body_markdown": "text"}

        first = api.post(path, body, **{"Idempotency-Key": "terms-1"})
        again = api.post(path, body, **{"Idempotency-Key": "terms-1"})

        assert again.json() == first.json() and again.headers["Idempotent-Replayed"] == "true"
        assert len(api.get(path).json()["data"]) == 1


class TestApplicationDecisions:
    def test_approving_one_applicant_returns_it_active_with_its_login_invitation(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        partner_id = applicant(session_factory, api, program["id"])

        response = api.post(f"/partners/{partner_id}/approve")

        assert response.status_code == 200, response.text
        body = response.json()
        assert body["status"] == "active" and body["invitation"]["kind"] == "welcome"
        assert body["invitation"]["status"] == "valid" and "token" not in str(body).lower()

    def test_approving_an_active_partner_is_a_conflict(self, api: Api) -> None:
        program = api.program()
        partner = api.partner(program["id"])

        response = api.post(f"/partners/{partner['id']}/approve")

        assert response.status_code == 409 and "is active, not applied" in error_of(response)["message"]

    def test_a_decline_needs_a_reason(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        partner_id = applicant(session_factory, api, api.program()["id"])

        response = api.post(f"/partners/{partner_id}/decline", {"reason": ""})

        assert response.status_code == 422 and error_of(response)["field"] == "reason"

    def test_a_decline_keeps_the_reason(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        partner_id = applicant(session_factory, api, api.program()["id"])

        response = api.post(f"/partners/{partner_id}/decline", {"reason": "not our audience"})

        assert response.status_code == 200
        assert (response.json()["status"], response.json()["status_reason"]) == ("declined", "not our audience")

    def test_bulk_approval_approves_all_listed_applicants(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        ids = [applicant(session_factory, api, program["id"], f"p{i}@example.com") for i in range(3)]

        response = api.post("/applications/approve", {"partner_ids": ids})

        assert response.status_code == 200
        assert [p["status"] for p in response.json()["data"]] == ["active"] * 3
        assert count(session_factory, Invitation) == 3

    def test_bulk_approval_with_an_unknown_id_writes_nothing(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        good = applicant(session_factory, api, program["id"])

        response = api.post("/applications/approve", {"partner_ids": [good, "ptn_unknown"]})

        assert response.status_code == 404 and "ptn_unknown" in error_of(response)["message"]
        assert count(session_factory, Invitation) == 0
        assert api.get(f"/partners/{good}").json()["status"] == "applied"

    def test_bulk_decline_declines_all_listed_applicants(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        ids = [applicant(session_factory, api, program["id"], f"p{i}@example.com") for i in range(2)]

        response = api.post("/applications/decline", {"partner_ids": ids, "reason": "spam"})

        assert [p["status"] for p in response.json()["data"]] == ["declined", "declined"]

    def test_the_queue_lists_applicants_with_their_answers(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        partner_id = applicant(session_factory, api, program["id"])
        api.partner(program["id"], name="Not An Applicant")

        response = api.get("/applications", program_id=program["id"])

        [row] = response.json()["data"]
        assert row["id"] == partner_id and row["source"] == "application" and "answers" in row["application"]


class TestInvitations:
    def test_an_invite_makes_an_active_partner_and_emails_the_link_without_returning_it(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()

        response = api.post(
            "/partners/invite", {"program_id": program["id"], "name": "Ada", "email": "ada@example.com"}
        )

        assert response.status_code == 201, response.text
        body = response.json()
        assert body["status"] == "active" and body["source"] == "invitation"
        assert body["invitation"]["status"] == "valid" and body["invitation"]["email"] == "ada@example.com"
        with session_factory() as s:
            payload = s.scalar(select(OutboxJob.payload).where(OutboxJob.kind == EMAIL_SEND))
            assert payload is not None and "/invite/" in payload["text"]
            token = payload["text"].split("/invite/")[1].split()[0]
        assert token not in response.text

    @pytest.mark.parametrize("email", ["not-an-email", "ada@", ""])
    def test_an_invalid_email_is_a_422_on_the_email_field(self, api: Api, email: str) -> None:
        program = api.program()

        response = api.post("/partners/invite", {"program_id": program["id"], "name": "Ada", "email": email})

        assert response.status_code == 422 and error_of(response)["field"] == "email"

    def test_a_second_invite_for_the_same_email_is_a_conflict(self, api: Api) -> None:
        program = api.program()
        body = {"program_id": program["id"], "name": "Ada", "email": "ada@example.com"}
        api.post("/partners/invite", body)

        response = api.post("/partners/invite", body)

        assert response.status_code == 409 and error_of(response)["field"] == "email"

    def test_the_same_idempotency_key_invites_once(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        body = {"program_id": program["id"], "name": "Ada", "email": "ada@example.com"}

        first = api.post("/partners/invite", body, **{"Idempotency-Key": "invite-ada"})
        again = api.post("/partners/invite", body, **{"Idempotency-Key": "invite-ada"})

        assert first.status_code == again.status_code == 201 and again.json() == first.json()
        assert count(session_factory, Partner) == 1

    def test_resend_replaces_the_link_and_revoke_stops_it(self, api: Api) -> None:
        program = api.program()
        body = {"program_id": program["id"], "name": "Ada", "email": "ada@example.com"}
        old = api.post("/partners/invite", body).json()["invitation"]

        new = api.post(f"/invitations/{old['id']}/resend")
        revoked = api.post(f"/invitations/{new.json()['id']}/revoke")
        statuses = {i["id"]: i["status"] for i in api.get("/invitations").json()["data"]}

        assert new.status_code == 201 and new.json()["id"] != old["id"]
        assert revoked.status_code == 200 and revoked.json()["status"] == "revoked"
        assert statuses == {old["id"]: "revoked", new.json()["id"]: "revoked"}

    def test_the_list_filters_by_status_and_refuses_an_unknown_one(self, api: Api) -> None:
        program = api.program()
        api.post("/partners/invite", {"program_id": program["id"], "name": "Ada", "email": "ada@example.com"})

        valid = api.get("/invitations", status="valid").json()["data"]
        expired = api.get("/invitations", status="expired").json()["data"]
        bad = api.get("/invitations", status="sleeping")

        assert len(valid) == 1 and expired == []
        assert bad.status_code == 422 and error_of(bad)["field"] == "status"

    def test_another_programs_invitation_is_not_found(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        mine, theirs = api.program(name="Mine"), api.program(name="Theirs")
        body = {"program_id": theirs["id"], "name": "Ada", "email": "ada@example.com"}
        invitation = api.post("/partners/invite", body).json()["invitation"]
        key = api.key_for(session_factory, program_id=mine["id"], scopes=["read", "write"])

        response = api.post(f"/invitations/{invitation['id']}/revoke", key=key)

        assert response.status_code == 404

    def test_a_read_only_key_cannot_invite(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        key = api.key_for(session_factory, scopes=["read"])

        response = api.post(
            "/partners/invite", {"program_id": program["id"], "name": "Ada", "email": "ada@example.com"}, key=key
        )

        assert response.status_code == 403
