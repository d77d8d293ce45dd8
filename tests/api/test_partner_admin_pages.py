"""Console pages of partner administration: the partner page, the filtered list, groups and the prospect board."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import StaffUser
from partnerpay.partners import admin, groups, prospects
from partnerpay.partners.models import Partner, PartnerNote, PayoutMethod, Prospect
from partnerpay.partners.service import create_partner
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, staff

world = test_pages.world  # the console World fixture: a program, Acme and Beta with pending lines, staff logins


def user_id(w: World, role: str) -> str:
    with w.factory() as s:
        found = s.scalar(select(StaffUser.id).where(StaffUser.email == f"{role}@example.com"))
        assert found is not None
        return found


def partner_of(w: World, partner_id: str) -> Partner:
    with w.factory() as s:
        found = s.get(Partner, partner_id)
        assert found is not None
        return found


def make_pilot(w: World, cap: int = 1) -> str:
    with w.factory() as s:
        group = groups.create_group(
            s, actor=SYSTEM, program_id=w.program_id, name="Pilot DACH", is_pilot=True, size_cap=cap, now=w.clock.now()
        )
        s.commit()
        return group.id


def post(client: TestClient, path: str, form: str, data: Mapping[str, object]) -> httpx.Response:
    """Submit a form the way the page at `form` would: with that page's CSRF token."""
    response: httpx.Response = client.post(
        path, data={"csrf_token": csrf_of(client, form), **data}, follow_redirects=False
    )
    return response


class TestPartnerPage:
    def test_the_header_sections_and_balance_are_shown(self, world: World) -> None:
        page = staff(world, "viewer").get(f"/partners/{world.acme_id}")
        assert page.status_code == 200
        text = page.text
        assert "<h1>Acme Media" in text and 'badge-active">active' in text
        assert "none accepted" in text and "nobody" in text
        assert "€240.00" in text  # pending commission in the overview
        assert "tax form missing" in text and "<dt>Payout method</dt><dd>none" in text
        assert "partner.create" in text  # its audit row
        for section in ("overview", "status", "notes", "timeline", "details", "audit"):
            assert f'id="{section}"' in text

    def test_masked_payout_details_are_shown_never_more(self, world: World) -> None:
        with world.factory() as s:
            s.add(
                PayoutMethod(
                    id="pm_test",
                    partner_id=world.acme_id,
                    type="sepa",
                    details_encrypted="gAAAA-secret",
                    masked={"iban": "DE89 •••• •••• •••• 3000"},
                    created_by="test",
                    created_at=world.clock.now(),
                )
            )
            s.commit()
        text = staff(world, "viewer").get(f"/partners/{world.acme_id}").text
        assert "DE89 •••• •••• •••• 3000" in text and "gAAAA-secret" not in text

    def test_suspending_with_a_reason_keeps_the_payable_visible(self, world: World) -> None:
        client = staff(world, "manager")
        response = post(
            client,
            f"/partners/{world.acme_id}/status",
            f"/partners/{world.acme_id}",
            {"action": "suspend", "reason": "fake traffic"},
        )
        assert response.status_code == 303
        page = client.get(f"/partners/{world.acme_id}").text
        assert "Acme Media is now suspended." in page and 'badge-suspended">suspended' in page
        assert "payout runs skip this partner until reinstated" in page and "fake traffic" in page
        assert "€240.00" in page
        assert "Suspended by manager@example.com: fake traffic" in page  # timeline
        post(client, f"/partners/{world.acme_id}/status", f"/partners/{world.acme_id}", {"action": "reinstate"})
        assert partner_of(world, world.acme_id).status == "active"

    def test_suspending_without_a_reason_shows_the_error_at_the_field(self, world: World) -> None:
        client = staff(world, "manager")
        response = post(
            client,
            f"/partners/{world.acme_id}/status",
            f"/partners/{world.acme_id}",
            {"action": "suspend", "reason": ""},
        )
        assert response.status_code == 422
        assert 'id="f-reason-error"' in response.text and "a reason is required" in response.text
        assert partner_of(world, world.acme_id).status == "active"

    def test_a_viewer_is_refused_and_nothing_changes(self, world: World) -> None:
        client = staff(world, "viewer")
        response = post(
            client,
            f"/partners/{world.acme_id}/status",
            f"/partners/{world.acme_id}",
            {"action": "terminate", "reason": "x"},
        )
        assert response.status_code == 403 and "manager, finance or owner role" in response.text
        assert partner_of(world, world.acme_id).status == "active"

    def test_a_form_without_its_csrf_token_is_refused(self, world: World) -> None:
        client = staff(world, "manager")
        response = client.post(f"/partners/{world.acme_id}/notes", data={"body": "sneaky"})
        assert response.status_code == 403
        with world.factory() as s:
            assert s.scalars(select(PartnerNote)).all() == []

    def test_notes_are_added_and_an_empty_one_is_refused_at_the_field(self, world: World) -> None:
        client = staff(world, "manager")
        form = f"/partners/{world.acme_id}"
        post(client, f"/partners/{world.acme_id}/notes", form, {"body": "Wants a co-marketing webinar"})
        page = client.get(form).text
        assert "Note added" in page and "Wants a co-marketing webinar" in page and "manager@example.com" in page
        empty = post(client, f"/partners/{world.acme_id}/notes", form, {"body": "  "})
        assert empty.status_code == 422 and 'id="f-body-error"' in empty.text

    def test_owner_and_group_are_set_from_the_page(self, world: World) -> None:
        client = staff(world, "manager")
        group_id = make_pilot(world)
        form = f"/partners/{world.acme_id}"
        post(client, f"/partners/{world.acme_id}/owner", form, {"owner_id": user_id(world, "manager")})
        post(client, f"/partners/{world.acme_id}/group", form, {"group_id": group_id})
        page = client.get(form).text
        assert "<dt>Owner</dt><dd>manager@example.com" in page and "Pilot DACH</a> (pilot)" in page
        full = post(client, f"/partners/{world.beta_id}/group", f"/partners/{world.beta_id}", {"group_id": group_id})
        assert full.status_code == 409 and "pilot Pilot DACH is capped at 1" in full.text
        assert partner_of(world, world.beta_id).group_id is None

    def test_an_unknown_partner_is_a_404_page(self, world: World) -> None:
        assert staff(world, "viewer").get("/partners/ptn_nope").status_code == 404


class TestPartnersList:
    def test_mine_shows_only_my_partners_and_the_api_knows_mine_too(self, world: World) -> None:
        with world.factory() as s:
            admin.assign_owner(
                s, actor=SYSTEM, partner_ids=[world.beta_id], owner_id=user_id(world, "manager"), now=world.clock.now()
            )
            s.commit()
        client = staff(world, "manager")
        mine = client.get("/partners", params={"owner": "mine"}).text
        assert "Beta Blog" in mine and "Acme Media" not in mine
        assert [p["name"] for p in client.get("/api/v1/partners", params={"mine": "true"}).json()["data"]] == [
            "Beta Blog"
        ]
        assert (
            "Acme Media"
            not in staff(world, "viewer").get("/partners", params={"owner": "none"}).text.split("<table")[0]
        )

    def test_filters_search_and_sort_narrow_the_table(self, world: World) -> None:
        client = staff(world, "viewer")
        found = client.get("/partners", params={"q": "beta", "tax": "tax_missing", "payout": "no", "sort": "name"}).text
        assert "Beta Blog" in found and "Acme Media" not in found
        assert "No partner matches" in client.get("/partners", params={"country": "JP"}).text
        bad = client.get("/partners", params={"tax": "sometimes"})
        assert bad.status_code == 422 and "tax must be tax_ok or tax_missing" in bad.text

    def test_the_csv_download_follows_the_filter_and_escapes_formulas(self, world: World) -> None:
        with world.factory() as s:
            create_partner(
                s,
                actor=SYSTEM,
                program_id=world.program_id,
                name='=HYPERLINK("http://x")',
                email="h@x.example",
                now=world.clock.now(),
            )
            s.commit()
        client = staff(world, "viewer")
        assert 'href="/partners.csv"' in client.get("/partners").text
        response = client.get("/partners.csv", params={"q": "hyperlink"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.text)))
        assert [r["name"] for r in rows] == ['\'=HYPERLINK("http://x")']

    def test_bulk_owner_and_group_changes(self, world: World) -> None:
        client = staff(world, "manager")
        manager = user_id(world, "manager")
        done = post(
            client,
            "/partners/bulk",
            "/partners",
            {"action": "owner", "owner_id": manager, "ids": [world.acme_id, world.beta_id], "next": "/partners"},
        )
        assert done.status_code == 303
        assert "2 partner(s) now owned by manager@example.com" in client.get("/partners").text
        group_id = make_pilot(world, cap=1)
        full = post(
            client,
            "/partners/bulk",
            "/partners",
            {"action": "group", "group_id": group_id, "ids": [world.acme_id, world.beta_id]},
        )
        assert full.status_code == 409 and "capped at 1" in full.text and "Nothing was moved" in full.text
        nothing = post(client, "/partners/bulk", "/partners", {"action": "group", "group_id": group_id})
        assert nothing.status_code == 422 and "Tick the partners" in nothing.text
        assert partner_of(world, world.acme_id).group_id is None

    def test_the_nav_links_groups_and_recruitment(self, world: World) -> None:
        text = staff(world, "viewer").get("/partners").text
        assert 'href="/groups"' in text and 'href="/prospects"' in text


class TestGroupsPages:
    def test_a_pilot_is_created_from_the_form_and_shown_with_its_members(self, world: World) -> None:
        client = staff(world, "manager")
        form = {
            "program_id": world.program_id,
            "name": "Pilot DACH",
            "is_pilot": "1",
            "size_cap": "5",
            "percent_bp": "2500",
            "starts_on": "2026-02-01",
            "ends_on": "2026-03-31",
        }
        assert post(client, "/groups", "/groups", form).status_code == 303
        listing = client.get("/groups").text
        assert "Pilot DACH" in listing and "25 %" in listing and "0 / 5" in listing
        with world.factory() as s:
            ((group, _),) = groups.groups_with_sizes(s, SYSTEM)
            groups.move_partners(s, actor=SYSTEM, partner_ids=[world.acme_id], group_id=group.id, now=world.clock.now())
            s.commit()
        page = client.get(f"/groups/{group.id}").text
        assert "Acme Media" in page and "1 of at most 5" in page

    def test_bad_dates_are_shown_at_the_field_and_nothing_is_created(self, world: World) -> None:
        client = staff(world, "manager")
        response = post(
            client,
            "/groups",
            "/groups",
            {"program_id": world.program_id, "name": "P", "starts_on": "2026-03-01", "ends_on": "2026-02-01"},
        )
        assert response.status_code == 422
        assert 'id="f-ends_on-error"' in response.text and "must be after starts_on" in response.text
        assert 'value="P"' in response.text
        assert "No groups yet" in response.text

    def test_editing_refuses_a_cap_below_the_members(self, world: World) -> None:
        group_id = make_pilot(world, cap=2)
        with world.factory() as s:
            groups.move_partners(
                s, actor=SYSTEM, partner_ids=[world.acme_id, world.beta_id], group_id=group_id, now=world.clock.now()
            )
            s.commit()
        client = staff(world, "manager")
        response = post(
            client,
            f"/groups/{group_id}",
            f"/groups/{group_id}",
            {"name": "Pilot DACH", "is_pilot": "1", "size_cap": "1"},
        )
        assert response.status_code == 422 and 'id="f-size_cap-error"' in response.text
        removed = post(client, f"/groups/{group_id}/remove", f"/groups/{group_id}", {"ids": [world.beta_id]})
        assert removed.status_code == 303
        assert partner_of(world, world.beta_id).group_id is None

    def test_the_comparison_page_sets_the_pilot_beside_everyone_else(self, world: World) -> None:
        group_id = make_pilot(world)
        with world.factory() as s:
            groups.move_partners(s, actor=SYSTEM, partner_ids=[world.acme_id], group_id=group_id, now=world.clock.now())
            s.commit()
        page = staff(world, "viewer").get("/groups/compare").text
        assert "Pilot DACH" in page and "Everyone else" in page
        assert "€1,200.00" in page and "€500.05" in page  # attributed revenue of each side
        assert "€240.00" in page and "€100.01" in page  # their commissions

    def test_a_viewer_cannot_create_a_group(self, world: World) -> None:
        client = staff(world, "viewer")
        response = post(client, "/groups", "/groups", {"program_id": world.program_id, "name": "Nope"})
        assert response.status_code == 403 and "No groups yet" in response.text


class TestProspectBoard:
    def add(self, w: World, company: str, **kw: object) -> str:
        with w.factory() as s:
            p = prospects.create_prospect(
                s, actor=SYSTEM, program_id=w.program_id, now=w.clock.now(), company=company, **kw
            )
            s.commit()
            return p.id

    def test_the_board_groups_by_stage_and_highlights_overdue(self, world: World) -> None:
        today = world.clock.now().date()
        late = self.add(world, "Late Co", due_on=today - timedelta(days=2), next_step="call back")
        self.add(world, "Fine Co", stage="contacted", due_on=today + timedelta(days=2))
        page = staff(world, "viewer").get("/prospects").text
        for stage in ("Prospect", "Contacted", "Invited", "Applied", "Active", "Dropped"):
            assert f">{stage} <span" in page
        assert f'class="board-card overdue" id="prospect-{late}"' in page and "Overdue since" in page
        assert "Next: call back" in page

    def test_adding_a_prospect_and_moving_its_stage(self, world: World) -> None:
        client = staff(world, "manager")
        added = post(
            client,
            "/prospects",
            "/prospects",
            {"program_id": world.program_id, "company": "Northwind", "email": "ceo@northwind.example", "owner_id": ""},
        )
        assert added.status_code == 303
        with world.factory() as s:
            prospect_id = s.scalars(select(Prospect.id)).one()
        moved = post(client, f"/prospects/{prospect_id}", "/prospects", {"stage": "contacted", "from": "board"})
        assert moved.status_code == 303 and moved.headers["location"] == "/prospects"
        with world.factory() as s:
            assert s.get(Prospect, prospect_id).stage == "contacted"  # type: ignore[union-attr]

    def test_bad_input_is_shown_at_the_field(self, world: World) -> None:
        client = staff(world, "manager")
        response = post(
            client, "/prospects", "/prospects", {"program_id": world.program_id, "company": "N", "email": "not-mail"}
        )
        assert response.status_code == 422 and 'id="f-email-error"' in response.text
        prospect_id = self.add(world, "Northwind")
        bad = post(
            client, f"/prospects/{prospect_id}", f"/prospects/{prospect_id}", {"company": "Northwind", "stage": "won"}
        )
        assert bad.status_code == 422 and "stage must be one of" in bad.text

    def test_convert_sends_the_invitation_and_links_the_partner(self, world: World) -> None:
        prospect_id = self.add(world, "Northwind", email="ceo@northwind.example")
        client = staff(world, "manager")
        done = post(client, f"/prospects/{prospect_id}/convert", f"/prospects/{prospect_id}", {})
        assert done.status_code == 303
        page = client.get(f"/prospects/{prospect_id}").text
        assert "Invitation sent to ceo@northwind.example" in page and "Open partner" in page

    def test_convert_without_an_email_says_what_to_do(self, world: World) -> None:
        prospect_id = self.add(world, "Northwind")
        response = post(staff(world, "manager"), f"/prospects/{prospect_id}/convert", f"/prospects/{prospect_id}", {})
        assert response.status_code == 422 and "add an email address for Northwind" in response.text
