"""The console home lists tracking and deals work: leads to decide (and conflicts), unanswered update requests,
fraud flags to review; "mine" keeps only the partners the staff user owns."""

from __future__ import annotations

from sqlalchemy import select

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import StaffUser
from partnerpay.auth.service import staff_actor
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.deals.service import deal_for_lead
from partnerpay.deals.updates import ask_for_update
from partnerpay.kit.ids import new_id
from partnerpay.partners.admin import assign_owner
from partnerpay.tracking.attribution_models import FraudFlag
from tests.api.test_pages import World, staff
from tests.api.test_pages import world as world


def seed(world: World) -> None:
    now = world.clock.now()
    with world.factory() as s:
        manager = s.scalar(select(StaffUser).where(StaffUser.email == "manager@example.com"))
        assert manager is not None
        me = staff_actor(manager)
        assign_owner(s, actor=SYSTEM, partner_ids=[world.acme_id], owner_id=manager.id, now=now)
        first = register_lead(s, actor=me, program_id=world.program_id, partner_id=world.acme_id,
                              company="Northwind", domain="northwind.example", now=now)  # fmt: skip
        register_lead(s, actor=me, program_id=world.program_id, partner_id=world.beta_id,
                      company="Northwind Traders", domain="northwind.example", now=now)  # fmt: skip
        register_lead(s, actor=me, program_id=world.program_id, partner_id=world.beta_id,
                      company="Globex", domain="globex.example", now=now)  # fmt: skip
        accept_leads(s, actor=me, lead_ids=[first.id], now=now)
        deal = deal_for_lead(s, first.id)
        assert deal is not None
        ask_for_update(s, actor=me, message="How is it going?", deal_id=deal.id, now=now)
        s.add(FraudFlag(id=new_id("flg"), program_id=world.program_id, partner_id=world.beta_id, kind="ip_burst",
                        detail="30 clicks from one address in an hour", status="open", created_at=now))  # fmt: skip
        s.commit()


class TestHomeTrackingQueues:
    def test_everyone_sees_leads_conflicts_update_requests_and_flags(self, world: World) -> None:
        seed(world)
        page = staff(world, "viewer").get("/").text
        assert "2</strong> registered leads to accept or reject (1 in conflict)" in page
        assert "1</strong> update request not answered by partners yet" in page
        assert "1</strong> fraud flag to review" in page

    def test_mine_counts_only_the_managers_partners(self, world: World) -> None:
        seed(world)
        page = staff(world, "manager").get("/?mine=1").text
        # Acme (owned) has no lead waiting and no flag, but its deal's update request is open.
        assert "registered lead" not in page and "fraud flag" not in page
        assert "1</strong> update request not answered by partners yet" in page
