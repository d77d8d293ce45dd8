"""The "mine" filter on the console home's work queue and on the commissions page (partners' owners)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import StaffUser
from partnerpay.commissions.decisions import approve_lines
from partnerpay.partners import admin
from partnerpay.partners.models import Partner
from partnerpay.web.console import queries
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, staff

world = test_pages.world  # a program, Acme (€240.00 pending) and Beta (€100.01 pending), staff logins


def user_id(w: World, role: str) -> str:
    with w.factory() as s:
        found = s.scalar(select(StaffUser.id).where(StaffUser.email == f"{role}@example.com"))
        assert found is not None
        return found


def own(w: World, role: str, *partner_ids: str) -> None:
    """The partners' owner becomes the staff user with this role, through the audited owner service."""
    with w.factory() as s:
        admin.assign_owner(s, actor=SYSTEM, partner_ids=list(partner_ids), owner_id=user_id(w, role), now=w.clock.now())
        s.commit()


def approve_all_and_wait_out_the_hold(w: World) -> None:
    with w.factory() as s:
        approve_lines(s, actor=SYSTEM, ids=[w.acme_line, w.beta_line], now=w.clock.now())
        s.commit()
    w.clock.advance(timedelta(days=31))


class TestDashboard:
    def test_mine_counts_only_my_partners_lines(self, world: World) -> None:
        own(world, "manager", world.acme_id)
        own(world, "finance", world.beta_id)  # another manager's partner: never in my counts
        client = staff(world, "manager")
        everyone = client.get("/").text
        assert "<strong>2</strong> commission lines awaiting approval" in everyone
        assert 'href="/?mine=1"' in everyone and 'href="/" aria-current="page"' in everyone
        mine = client.get("/", params={"mine": "1"}).text
        assert "<strong>1</strong> commission line awaiting approval" in mine
        assert 'href="/?mine=1" aria-current="page"' in mine
        assert "€240.00" in mine and "€100.01" not in mine  # the pending bucket of the program card
        assert f"program_id={world.program_id}&amp;mine=1" in mine  # the queue links keep the filter

    def test_mine_narrows_the_payable_figures(self, world: World) -> None:
        own(world, "manager", world.acme_id)
        own(world, "finance", world.beta_id)
        approve_all_and_wait_out_the_hold(world)
        client = staff(world, "manager")
        assert "€340.01</strong> payable now in 2 lines for 2 partners" in client.get("/").text
        mine = client.get("/", params={"mine": "1"}).text
        assert "€240.00</strong> payable now in 1 line for 1 partner:" in mine
        assert "€340.01" not in mine and "€100.01" not in mine

    def test_mine_with_no_owned_partners_has_nothing_to_decide_on_lines(self, world: World) -> None:
        own(world, "finance", world.acme_id, world.beta_id)
        client = staff(world, "manager")
        mine = client.get("/", params={"mine": "1"}).text
        assert "awaiting approval" not in mine
        assert "Nothing waits for a decision today." in mine
        # the default stays everyone, and unowned-or-not, the other manager sees their own
        assert "<strong>2</strong> commission lines" in client.get("/").text
        assert "<strong>2</strong> commission lines" in staff(world, "finance").get("/?mine=1").text

    def test_unowned_partners_are_nobodys(self, world: World) -> None:
        with world.factory() as s:  # plain session update: no owners at all
            s.execute(update(Partner).values(owner_id=None))
            s.commit()
        assert "awaiting approval" not in staff(world, "viewer").get("/?mine=1").text


class TestCommissions:
    def test_mine_lists_and_totals_only_my_partners_lines(self, world: World) -> None:
        own(world, "manager", world.acme_id)
        own(world, "finance", world.beta_id)
        client = staff(world, "manager")
        everyone = client.get("/commissions").text
        assert world.acme_line in everyone and world.beta_line in everyone
        assert "<strong>2</strong> pending lines" in everyone
        mine = client.get("/commissions", params={"mine": "1"}).text
        assert world.acme_line in mine and world.beta_line not in mine
        assert "<strong>1</strong> pending line" in mine and "€240.00" in mine
        assert 'name="mine" value="1" checked' in mine
        other = staff(world, "finance").get("/commissions", params={"mine": "1", "status": "all"}).text
        assert world.beta_line in other and world.acme_line not in other

    def test_an_error_page_keeps_the_filter(self, world: World) -> None:
        own(world, "finance", world.beta_id)
        client = staff(world, "finance")
        token = csrf_of(client, "/commissions?mine=1")
        page = client.post("/commissions/approve", data={"next": "/commissions?mine=1", "csrf_token": token})
        assert page.status_code == 422
        assert world.beta_line in page.text and world.acme_line not in page.text


def test_partner_owners_names_the_owner_and_leaves_unowned_partners_out(world: World) -> None:
    own(world, "manager", world.acme_id)
    with world.factory() as s:
        owners = queries.partner_owners(s, [world.acme_id, world.beta_id])
    assert owners == {world.acme_id: "manager@example.com"}


def test_each_commission_line_shows_its_partner_owner(world: World) -> None:
    own(world, "manager", world.acme_id)
    page = staff(world, "finance").get("/commissions?status=pending").text

    def row(line_id: str) -> str:
        start = page.index(f'id="line-{line_id}"')
        return page[start : page.index("</tr>", start)]

    acme_row, beta_row = row(world.acme_line), row(world.beta_line)
    assert "owner: manager@example.com" in acme_row
    assert "owner: no owner" in beta_row
