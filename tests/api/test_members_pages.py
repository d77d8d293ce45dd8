"""Team members through HTTP: the owner invites and removes logins in the portal; staff use the API."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.jobs.models import OutboxJob
from partnerpay.partners.models import PartnerUser
from partnerpay.partners.service import add_partner_user
from tests.api import test_pages
from tests.api.conftest import Api
from tests.api.test_pages import PASSWORD, World, csrf_of, login

world = test_pages.world  # a program, Acme and Beta with portal logins (both owners)

INVITE = "/portal/profile/members"
NEW_PASSWORD = "a long new password"


def owner(world: World) -> TestClient:
    return login(world.client(), "portal@acme.example", portal=True)


def post_invite(client: TestClient, email: str) -> Any:
    token = csrf_of(client, "/portal/profile")
    return client.post(INVITE, data={"email": email, "csrf_token": token}, follow_redirects=False)


def post_remove(client: TestClient, user_id: str) -> Any:
    token = csrf_of(client, "/portal/profile")
    return client.post(f"{INVITE}/{user_id}/remove", data={"csrf_token": token}, follow_redirects=False)


def link_token(world: World, email: str) -> str:
    with world.factory() as s:
        texts = [j.payload["text"] for j in s.scalars(select(OutboxJob)) if j.payload.get("to") == email]
    match = re.search(r"/invite/(\S+)", texts[-1])
    assert match
    return match.group(1)


def login_of(world: World, email: str) -> PartnerUser | None:
    with world.factory() as s:
        return s.scalar(select(PartnerUser).where(PartnerUser.email == email))


def accept(world: World, email: str) -> TestClient:
    """The member opens the emailed link and sets a password: logged in from then on."""
    client = world.client()
    token = link_token(world, email)
    csrf = csrf_of(client, f"/invite/{token}")
    data = {"password": NEW_PASSWORD, "password_confirm": NEW_PASSWORD, "csrf_token": csrf}
    response = client.post(f"/invite/{token}", data=data, follow_redirects=False)
    assert response.status_code == 303, response.text
    return client


class TestPortalTeam:
    def test_an_owner_invites_a_member_who_sees_the_same_earnings_but_cannot_invite(self, world: World) -> None:
        client = owner(world)
        page = client.get("/portal/profile")
        assert "Invite a team member" in page.text and f'action="{INVITE}"' in page.text

        response = post_invite(client, "colleague@acme.example")

        assert response.status_code == 303
        assert "Invitation sent to colleague@acme.example" in client.get("/portal/profile").text
        member = accept(world, "colleague@acme.example")
        home = member.get("/portal")
        assert home.status_code == 200 and world.acme_line in home.text and "€240.00" in home.text
        assert "€100.01" not in home.text
        profile = member.get("/portal/profile")
        assert "colleague@acme.example" in profile.text and "portal@acme.example" in profile.text
        assert "Invite a team member" not in profile.text and "/remove" not in profile.text
        refused = post_invite(member, "other@acme.example")
        assert refused.status_code == 403 and login_of(world, "other@acme.example") is None
        # A fresh login with the new password works too.
        fresh = world.client()
        csrf = csrf_of(fresh, "/portal/login")
        data = {"email": "colleague@acme.example", "password": NEW_PASSWORD, "csrf_token": csrf}
        assert fresh.post("/portal/login", data=data).status_code == 200

    def test_an_email_that_is_already_a_login_is_shown_on_the_field_and_nothing_is_sent(self, world: World) -> None:
        client = owner(world)
        with world.factory() as s:
            jobs = len(s.scalars(select(OutboxJob)).all())

        response = post_invite(client, "portal@beta.example")

        assert response.status_code == 409
        assert 'id="f-email-error"' in response.text and "already has a partner portal login" in response.text
        assert 'value="portal@beta.example"' in response.text
        with world.factory() as s:
            assert len(s.scalars(select(OutboxJob)).all()) == jobs

    def test_without_the_csrf_token_nothing_is_invited(self, world: World) -> None:
        response = owner(world).post(INVITE, data={"email": "x@acme.example"}, follow_redirects=False)
        assert response.status_code == 403 and login_of(world, "x@acme.example") is None

    def test_an_owner_removes_a_member_whose_session_stops_working(self, world: World) -> None:
        client = owner(world)
        post_invite(client, "leaver@acme.example")
        member = accept(world, "leaver@acme.example")
        user = login_of(world, "leaver@acme.example")
        assert user is not None and f"{INVITE}/{user.id}/remove" in client.get("/portal/profile").text

        response = post_remove(client, user.id)

        assert response.status_code == 303 and login_of(world, "leaver@acme.example") is None
        assert member.get("/portal", follow_redirects=False).status_code == 303

    def test_the_last_owner_has_no_remove_button_and_cannot_be_removed(self, world: World) -> None:
        client = owner(world)
        me = login_of(world, "portal@acme.example")
        assert me is not None and f"{INVITE}/{me.id}/remove" not in client.get("/portal/profile").text

        response = post_remove(client, me.id)

        assert response.status_code == 409 and "only owner" in response.text
        assert login_of(world, "portal@acme.example") is not None


class TestMembersApi:
    def _partner_with_owner(self, api: Api, session_factory: Any) -> str:
        program = api.program()
        partner = api.partner(program["id"])
        with session_factory() as s:
            add_partner_user(
                s,
                actor=SYSTEM,
                partner_id=partner["id"],
                email="boss@acme.example",
                password=PASSWORD,
                now=api.clock.now(),
            )
            s.commit()
        return str(partner["id"])

    def test_staff_invite_and_remove_a_member_through_the_api(self, api: Api, session_factory: Any) -> None:
        partner_id = self._partner_with_owner(api, session_factory)

        created = api.post(f"/partners/{partner_id}/members", {"email": "Member@Acme.example"})

        assert created.status_code == 201, created.text
        body = created.json()
        assert body["email"] == "member@acme.example" and body["role"] == "member" and not body["has_password"]
        assert body["invitation"]["status"] == "valid" and "token" not in created.text
        duplicate = api.post(f"/partners/{partner_id}/members", {"email": "boss@acme.example"})
        assert duplicate.status_code == 409 and duplicate.json()["error"]["field"] == "email"

        removed = api.client.delete(f"/api/v1/partners/{partner_id}/members/{body['id']}", headers=api.headers())

        assert removed.status_code == 200 and removed.json()["removed"] is True
        with session_factory() as s:
            assert s.get(PartnerUser, body["id"]) is None

    def test_the_last_owner_cannot_be_removed_and_a_read_key_cannot_invite(
        self, api: Api, session_factory: Any
    ) -> None:
        partner_id = self._partner_with_owner(api, session_factory)
        with session_factory() as s:
            boss = s.scalar(select(PartnerUser).where(PartnerUser.email == "boss@acme.example"))
            assert boss is not None
        read_key = api.key_for(session_factory, scopes=["read"])

        refused = api.client.delete(f"/api/v1/partners/{partner_id}/members/{boss.id}", headers=api.headers())
        forbidden = api.post(f"/partners/{partner_id}/members", {"email": "x@acme.example"}, key=read_key)
        missing = api.post("/partners/prt_nope/members", {"email": "x@acme.example"})

        assert refused.status_code == 409 and "only owner" in refused.text
        assert forbidden.status_code == 403
        assert missing.status_code == 404
