"""The portal's Links & coupons page: default link, campaign links with clicks, the create form, coupons."""

from __future__ import annotations

import html

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.db.engine import unit_of_work
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner
from partnerpay.programs.service import update_program_settings
from partnerpay.tracking import links
from partnerpay.tracking.models import Coupon, ReferralLink
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, login

world = test_pages.world  # the shared fixture: a program, Acme and Beta with portal logins


@pytest.fixture
def acme(world: World) -> TestClient:
    with unit_of_work(world.factory) as s:
        update_program_settings(
            s,
            actor=SYSTEM,
            program_id=world.program_id,
            changes={"site_url": "https://shop.example.com", "allowed_domains": ["example.org"]},
            now=world.clock.now(),
        )
    return login(world.client(), "portal@acme.example", portal=True)


def _code(world: World, partner_id: str) -> str:
    with world.factory() as s:
        partner = s.get(Partner, partner_id)
        assert partner is not None
        return partner.referral_code


def _links(world: World, partner_id: str) -> list[ReferralLink]:
    with world.factory() as s:
        return list(s.scalars(select(ReferralLink).where(ReferralLink.partner_id == partner_id)))


class TestLinksPage:
    def test_the_page_shows_the_default_link_clicks_and_coupons(self, world: World, acme: TestClient) -> None:
        code = _code(world, world.acme_id)
        with unit_of_work(world.factory) as s:
            s.add(
                Coupon(
                    id=new_id("cpn"),
                    program_id=world.program_id,
                    partner_id=world.acme_id,
                    code="ACME10",
                    code_key="ACME10",
                    created_at=world.clock.now(),
                    created_by="system",
                )
            )
            link = links.create_link(s, actor=SYSTEM, partner_id=world.acme_id, now=world.clock.now(), campaign="Vlog")
            link_code = link.code
        for path in (f"/r/{code}", f"/r/{link_code}", f"/r/{link_code}"):
            acme.get(path, follow_redirects=False)
        world.app.state.click_writer.flush()
        page = acme.get("/portal/links")
        assert page.status_code == 200
        text = page.text
        assert f'value="http://127.0.0.1:8000/r/{code}"' in text and 'data-copy="default-link"' in text
        assert "1 click so far" in text and "ACME10" in text and link_code in text
        assert '<td class="num" data-label="Clicks">2</td>' in text
        assert 'aria-current="page"' in text

    def test_a_partner_creates_a_link_with_utm_fields(self, world: World, acme: TestClient) -> None:
        token = csrf_of(acme, "/portal/links")
        form = {
            "campaign": "Spring newsletter",
            "destination_url": "https://blog.example.org/spring",
            "utm_source": "newsletter",
            "utm_medium": "email",
            "csrf_token": token,
        }
        response = acme.post("/portal/links", data=form, follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"] == "/portal/links"
        [link] = _links(world, world.acme_id)
        assert link.code == f"{_code(world, world.acme_id)}.spring-newsletter"
        assert link.params == {"utm_source": "newsletter", "utm_medium": "email"}
        assert "Link created" in acme.get("/portal/links").text

    @pytest.mark.parametrize(
        ("field", "value", "message"),
        [
            ("destination_url", "https://evil.com/", "must be on the program&#39;s site"),
            ("utm_source", "x" * 101, "params.utm_source must be at most 100"),
        ],
    )
    def test_a_bad_field_shows_its_error_next_to_it_and_keeps_the_input(
        self, world: World, acme: TestClient, field: str, value: str, message: str
    ) -> None:
        token = csrf_of(acme, "/portal/links")
        response = acme.post("/portal/links", data={"campaign": "Keep me", field: value, "csrf_token": token})
        assert response.status_code == 422
        assert f'id="f-{field}-error"' in response.text and message in response.text
        assert 'value="Keep me"' in response.text and _links(world, world.acme_id) == []

    def test_a_form_without_the_csrf_token_is_refused(self, world: World, acme: TestClient) -> None:
        response = acme.post("/portal/links", data={"campaign": "x"})
        assert response.status_code == 403 and _links(world, world.acme_id) == []

    def test_a_partner_cannot_deactivate_another_partners_link(self, world: World, acme: TestClient) -> None:
        with unit_of_work(world.factory) as s:
            theirs = links.create_link(s, actor=SYSTEM, partner_id=world.beta_id, now=world.clock.now()).id
        token = csrf_of(acme, "/portal/links")
        response = acme.post(f"/portal/links/{theirs}/deactivate", data={"csrf_token": token})
        assert response.status_code == 404
        assert [link.active for link in _links(world, world.beta_id)] == [True]

    def test_a_partner_deactivates_their_own_link(self, world: World, acme: TestClient) -> None:
        with unit_of_work(world.factory) as s:
            mine = links.create_link(s, actor=SYSTEM, partner_id=world.acme_id, now=world.clock.now()).id
        token = csrf_of(acme, "/portal/links")
        response = acme.post(f"/portal/links/{mine}/deactivate", data={"csrf_token": token}, follow_redirects=False)
        assert response.status_code == 303
        assert [link.active for link in _links(world, world.acme_id)] == [False]
        assert "deactivated" in html.unescape(acme.get("/portal/links").text)

    def test_the_page_needs_a_partner_login(self, world: World) -> None:
        response = world.client().get("/portal/links", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/portal/login")
