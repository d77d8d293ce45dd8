"""A partner's recruiter (two-tier) through POST/PATCH /api/v1/partners and the console partner page: same
program, not itself, no cycles (422 naming recruited_by_id), audited and on the timeline."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.partners.models import Partner
from tests.api.conftest import Api
from tests.api.test_pages import World, staff
from tests.api.test_partner_admin_api import assert_error, patch
from tests.api.test_partner_admin_pages import partner_of, post, world

__all__ = ["world"]  # the console World fixture, used by TestPartnerPage


@pytest.fixture
def program(api: Api) -> dict[str, Any]:
    return api.program()


def partner(api: Api, program: dict[str, Any], name: str, **extra: Any) -> dict[str, Any]:
    email = f"{name.lower()}@example.com"
    response = api.post("/partners", {"program_id": program["id"], "name": name, "email": email, **extra})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def audit_of(session_factory: sessionmaker[Session], object_id: str) -> list[tuple[str, Any, Any]]:
    with session_factory() as s:
        rows = s.execute(
            select(AuditEntry.action, AuditEntry.before, AuditEntry.after)
            .where(AuditEntry.object_id == object_id)
            .order_by(AuditEntry.seq)
        ).all()
        return [tuple(r) for r in rows]


class TestCreate:
    def test_a_partner_is_created_with_its_recruiter_and_the_audit_row_says_so(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        ann = partner(api, program, "Ann")
        bob = partner(api, program, "Bob", recruited_by_id=ann["id"])
        assert bob["recruited_by_id"] == ann["id"] and ann["recruited_by_id"] is None
        assert api.get(f"/partners/{bob['id']}").json()["recruited_by_id"] == ann["id"]
        [(action, _, after)] = audit_of(session_factory, bob["id"])
        assert action == "partner.create" and after["recruited_by_id"] == ann["id"]

    def test_a_recruiter_of_another_program_is_refused_naming_the_field(
        self, api: Api, program: dict[str, Any]
    ) -> None:
        other = partner(api, api.program(name="Other"), "Zed")
        response = api.post(
            "/partners",
            {"program_id": program["id"], "name": "Bob", "email": "bob@example.com", "recruited_by_id": other["id"]},
        )
        assert_error(response, 422, "recruited_by_id", f"there is no partner '{other['id']}' in this program")


class TestPatch:
    def test_the_recruiter_is_set_changed_and_removed_each_audited_and_on_the_timeline(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        ann, bob, cid = (partner(api, program, n) for n in ("Ann", "Bob", "Cid"))
        path = f"/partners/{cid['id']}"
        assert patch(api, path, {"recruited_by_id": ann["id"]}).json()["recruited_by_id"] == ann["id"]
        assert patch(api, path, {"recruited_by_id": bob["id"]}).json()["recruited_by_id"] == bob["id"]
        same = patch(api, f"/partners/{cid['id']}", {"recruited_by_id": bob["id"]})  # no change: no audit row
        assert same.status_code == 200
        assert patch(api, f"/partners/{cid['id']}", {}).json()["recruited_by_id"] == bob["id"]  # field not sent
        assert patch(api, f"/partners/{cid['id']}", {"recruited_by_id": None}).json()["recruited_by_id"] is None
        changes = [(b, a) for action, b, a in audit_of(session_factory, cid["id"]) if action == "partner.set_recruiter"]
        assert changes == [
            ({"recruited_by_id": None}, {"recruited_by_id": ann["id"]}),
            ({"recruited_by_id": ann["id"]}, {"recruited_by_id": bob["id"]}),
            ({"recruited_by_id": bob["id"]}, {"recruited_by_id": None}),
        ]
        texts = [a["text"] for a in api.get(f"/partners/{cid['id']}/timeline").json()["data"]]
        assert [t.split(" by ")[0] for t in texts if "Recruiter" in t] == [
            "Recruiter removed",
            "Recruiter set to Bob",
            "Recruiter set to Ann",
        ]
        with session_factory() as s:
            stored = s.get(Partner, cid["id"])
            assert stored is not None and stored.recruited_by_id is None

    def test_a_partner_cannot_recruit_itself(self, api: Api, program: dict[str, Any]) -> None:
        ann = partner(api, program, "Ann")
        response = patch(api, f"/partners/{ann['id']}", {"recruited_by_id": ann["id"]})
        assert_error(response, 422, "recruited_by_id", "a partner cannot be its own recruiter")

    def test_a_cycle_through_recruits_is_refused_with_the_chain(self, api: Api, program: dict[str, Any]) -> None:
        ann = partner(api, program, "Ann")
        bob = partner(api, program, "Bob", recruited_by_id=ann["id"])
        cid = partner(api, program, "Cid", recruited_by_id=bob["id"])
        response = patch(api, f"/partners/{ann['id']}", {"recruited_by_id": cid["id"]})
        assert_error(response, 422, "recruited_by_id")
        assert response.json()["error"]["message"] == (
            "Cid is a recruit of this partner (Ann → Bob → Cid): "
            "a partner's recruiter cannot be one of its own recruits"
        )
        assert api.get(f"/partners/{ann['id']}").json()["recruited_by_id"] is None

    def test_unknown_and_other_programs_recruiters_are_refused(self, api: Api, program: dict[str, Any]) -> None:
        ann = partner(api, program, "Ann")
        zed = partner(api, api.program(name="Other"), "Zed")
        for wanted in ("ptn_nobody", zed["id"]):
            response = patch(api, f"/partners/{ann['id']}", {"recruited_by_id": wanted})
            assert_error(response, 422, "recruited_by_id", f"there is no partner '{wanted}' in this program")

    def test_a_read_only_key_is_refused_and_another_programs_key_sees_no_partner(
        self, api: Api, program: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        ann, bob = partner(api, program, "Ann"), partner(api, program, "Bob")
        reader = api.key_for(session_factory, scopes=["read"])
        other = api.program(name="Other")
        outsider = api.key_for(session_factory, program_id=other["id"])
        assert_error(patch(api, f"/partners/{bob['id']}", {"recruited_by_id": ann["id"]}, key=reader), 403)
        assert_error(patch(api, f"/partners/{bob['id']}", {"recruited_by_id": ann["id"]}, key=outsider), 404)
        assert api.get(f"/partners/{bob['id']}").json()["recruited_by_id"] is None

    def test_an_unknown_field_is_refused(self, api: Api, program: dict[str, Any]) -> None:
        ann = partner(api, program, "Ann")
        assert_error(patch(api, f"/partners/{ann['id']}", {"name": "Anna"}), 422)


class TestPartnerPage:
    def test_the_page_shows_recruiter_and_recruits_and_sets_the_recruiter(self, world: World) -> None:
        client = staff(world, "manager")
        page = f"/partners/{world.beta_id}"
        response = post(client, f"{page}/recruiter", page, {"recruited_by_id": world.acme_id})
        assert response.status_code == 303
        text = client.get(page).text
        assert "Recruiter set to Acme Media." in text
        assert f'<dt>Recruited by</dt><dd><a href="/partners/{world.acme_id}">Acme Media</a></dd>' in text
        acme = client.get(f"/partners/{world.acme_id}").text
        assert f'<dt>Recruits</dt><dd><a href="/partners/{world.beta_id}">' in acme
        assert partner_of(world, world.beta_id).recruited_by_id == world.acme_id

    def test_a_refused_recruiter_is_shown_at_the_field_and_nothing_changes(self, world: World) -> None:
        client = staff(world, "manager")
        page = f"/partners/{world.acme_id}"
        response = post(client, f"{page}/recruiter", page, {"recruited_by_id": world.acme_id})
        assert response.status_code == 422
        assert 'id="f-recruited_by_id-error"' in response.text and "cannot be its own recruiter" in response.text
        assert partner_of(world, world.acme_id).recruited_by_id is None
