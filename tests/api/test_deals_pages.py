"""Deals & leads pages: portal registration with field errors and the duplicate warning, the console board,
conflicts queue and deal page, asking for and answering an update, and partner isolation."""

from __future__ import annotations

import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from partnerpay.auth.models import StaffUser
from partnerpay.deals.models import Deal, Lead, UpdateRequest
from partnerpay.partners.models import Partner
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, login, staff

world = test_pages.world  # a program, Acme and Beta with portal logins, staff logins by role


def portal(w: World, who: str = "acme") -> TestClient:
    return login(w.client(), f"portal@{who}.example", portal=True)


def register(client: TestClient, **fields: str) -> Any:
    data = {"company": "Globex Inc.", "domain": "globex.com", "csrf_token": csrf_of(client, "/portal/leads"), **fields}
    return client.post("/portal/leads", data=data)


def lead_of(w: World, partner_id: str) -> Lead:
    with w.factory() as s:
        lead = s.scalars(select(Lead).where(Lead.partner_id == partner_id).order_by(Lead.id.desc())).first()
        assert lead is not None
        return lead


class TestPortalLeads:
    def test_a_bad_domain_is_shown_at_the_field_and_the_values_are_kept(self, world: World) -> None:
        client = portal(world)
        response = register(client, domain="not a domain", contact_name="Jane")
        assert response.status_code == 422
        assert 'id="f-domain-error"' in response.text and "is not a domain" in response.text
        assert 'value="Jane"' in response.text

    def test_a_duplicate_is_registered_and_the_warning_shows_right_after_submit(self, world: World) -> None:
        register(portal(world, "beta"))
        client = portal(world)
        response = register(client, company="GLOBEX GmbH", expected_value="12,000.50")
        assert response.status_code == 200
        assert 'id="duplicate-warning"' in response.text
        assert "Another partner registered this company first" in response.text
        assert "Beta Blog" not in response.text  # whose lead it is stays with the team
        assert lead_of(world, world.acme_id).expected_value == 1_200_050

    def test_another_partners_lead_is_404(self, world: World) -> None:
        register(portal(world, "beta"))
        theirs = lead_of(world, world.beta_id)
        assert portal(world).get(f"/portal/leads/{theirs.id}").status_code == 404
        assert portal(world, "beta").get(f"/portal/leads/{theirs.id}").status_code == 200


class TestConsole:
    def test_conflicts_queue_compares_and_accepts(self, world: World) -> None:
        register(portal(world, "beta"))
        register(portal(world), company="Globex")
        mine = lead_of(world, world.acme_id)
        client = staff(world, "manager")
        page = client.get("/deals/conflicts")
        assert f'id="case-{mine.id}"' in page.text and "other partner lead" in page.text and "Beta Blog" in page.text
        token = csrf_of(client, "/deals/conflicts")
        done = client.post("/deals/leads/decide", data={"ids": mine.id, "action": "accept", "csrf_token": token,
                                                        "back": "/deals/conflicts"})  # fmt: skip
        assert done.status_code == 200 and "Accepted 1 lead" in done.text
        with world.factory() as s:
            deal = s.scalar(select(Deal).where(Deal.lead_id == mine.id))
            assert deal is not None and deal.stage == "registered"

    def test_reject_without_a_reason_is_refused_with_the_services_words(self, world: World) -> None:
        register(portal(world))
        lead = lead_of(world, world.acme_id)
        client = staff(world, "manager")
        token = csrf_of(client, "/deals")
        page = client.post("/deals/leads/decide", data={"ids": lead.id, "action": "reject", "csrf_token": token})
        assert "reason is required" in page.text and lead_of(world, world.acme_id).status == "registered"

    def test_the_board_shows_cards_by_stage_and_filters_mine(self, world: World) -> None:
        register(portal(world))
        register(portal(world, "beta"), company="Initech", domain="initech.com")
        client = staff(world, "manager")
        token = csrf_of(client, "/deals")
        ids = [lead_of(world, world.acme_id).id, lead_of(world, world.beta_id).id]
        client.post("/deals/leads/decide", data={"ids": ids, "action": "accept", "csrf_token": token})
        with world.factory() as s:
            manager = s.scalar(select(StaffUser.id).where(StaffUser.email == "manager@example.com"))
            s.execute(update(Partner).where(Partner.id == world.acme_id).values(owner_id=manager))
            s.commit()
        board = client.get("/deals").text
        assert "Globex Inc." in board and "Initech" in board and "Last update today" in board
        mine = client.get("/deals?owner=mine").text
        assert "Globex Inc." in mine and "Initech" not in mine

    def test_staff_move_win_and_see_the_event_on_the_deal_page(self, world: World) -> None:
        register(portal(world))
        client = staff(world, "manager")
        token = csrf_of(client, "/deals")
        client.post("/deals/leads/decide", data={"ids": lead_of(world, world.acme_id).id, "action": "accept",
                                                 "csrf_token": token})  # fmt: skip
        with world.factory() as s:
            deal_id = s.scalar(select(Deal.id).where(Deal.partner_id == world.acme_id))
        page = client.post(f"/deals/{deal_id}/stage", data={"status": "won", "amount": "2500.00", "currency": "EUR",
                                                            "csrf_token": token})  # fmt: skip
        assert "now won" in page.text and "deal_won event" in page.text
        with world.factory() as s:
            deal = s.get(Deal, deal_id)
            assert deal is not None and (deal.status, deal.amount) == ("won", 250_000)


class TestAskForUpdate:
    def test_staff_ask_the_partner_answers_on_the_portal_and_staff_see_it(self, world: World) -> None:
        register(portal(world))
        lead = lead_of(world, world.acme_id)
        client = staff(world, "manager")
        token = csrf_of(client, f"/deals/leads/{lead.id}")
        asked = client.post(f"/deals/leads/{lead.id}/ask", data={"message": "Demo done?", "csrf_token": token})
        assert "Update asked" in asked.text and "not answered yet" in asked.text
        partner = portal(world)
        home = partner.get("/portal").text
        assert "Answer the team's update request on Globex Inc." in home
        with world.factory() as s:
            request_id = s.scalar(select(UpdateRequest.id))
        other = portal(world, "beta")
        refused = other.post(f"/portal/leads/requests/{request_id}/answer",
                             data={"answer": "x", "csrf_token": csrf_of(other, "/portal/leads")})  # fmt: skip
        assert refused.status_code == 404
        reply = {"answer": "Demo went well", "csrf_token": csrf_of(partner, "/portal/leads")}
        page = partner.post(f"/portal/leads/requests/{request_id}/answer", data=reply)
        assert "your update is with the program team" in page.text
        assert "Answer the team" not in partner.get("/portal").text
        staff_page = client.get(f"/deals/leads/{lead.id}").text
        assert re.search(r'class="answer-box">Demo went well<', staff_page)
        assert "Partner&#39;s update: Demo went well" in staff_page
